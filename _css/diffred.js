/* diffred: click a figure to see it full size (_config.yml: html_js_files).
 *
 * Every figure of the book has its tools below it (diffred.figures.Published): a
 * div.diffred-figure-tools whose data-figure is the figure's label (the <figure>'s id)
 * and whose PNG link is the 200-dpi file. Clicking the figure's image opens that file in
 * an overlay at its own size (scroll or pinch to move about); a click, Escape or the close
 * button closes it. Nothing is fetched from outside the book. */
(function () {
  "use strict";

  function close(overlay) {
    overlay.remove();
    document.removeEventListener("keydown", overlay._onKey);
  }

  function open(src, alt) {
    const overlay = document.createElement("div");
    overlay.className = "diffred-lightbox";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", "figure at full size");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "diffred-lightbox-close";
    button.textContent = "Close \u00d7";
    const img = document.createElement("img");
    img.src = src;
    img.alt = alt || "figure at full size";
    overlay.append(button, img);
    overlay.addEventListener("click", () => close(overlay));
    overlay._onKey = (e) => { if (e.key === "Escape") close(overlay); };
    document.addEventListener("keydown", overlay._onKey);
    document.body.append(overlay);
    button.focus();
  }

  function wire() {
    document.querySelectorAll("div.diffred-figure-tools[data-figure]").forEach((tools) => {
      const png = [...tools.querySelectorAll("a.figure-download")].find((a) => a.textContent.trim() === "PNG");
      const figure = document.getElementById(tools.dataset.figure);
      const img = figure && figure.querySelector("img");
      if (!png || !img) return;
      img.classList.add("diffred-zoomable");
      img.title = "Click to see the figure at full size";
      img.addEventListener("click", (e) => { e.preventDefault(); open(png.href, img.alt); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
