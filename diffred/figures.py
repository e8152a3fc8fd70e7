"""Figures a reader can download and cite.

Every figure of the book is published through a :class:`FigureBook` (one per chapter):

    book = figures.FigureBook("02_random_subsets", "Reproducing random subsets suffice")
    fig = plots.subset_curves(summary)
    glue("fig_subset_curves", fig, display=False)
    tools = book.publish(fig, summary, "fig-subset-curves", "Accuracy of random subsets")

``publish`` writes ``<label>.png``, ``<label>.svg`` and ``<label>.csv`` (the tidy data the
plotting function drew) and returns an object whose HTML is the download links plus a
"cite this figure" block (plain text and BibTeX) made from ``CITATION.cff`` and the paper's
own BibTeX entry in ``references.bib``. Figures carry the number Sphinx gives them: the
book numbers figures consecutively across its pages in ``_toc.yml`` order, so a page's
first figure is one more than the figure directives on the pages before it, and each
``publish`` call sits beside its ``{glue:figure}`` (the browser tests check that the
numbers agree).

Where the files go: ``$DIFFRED_FIGURE_DIR`` (default ``<project>/_figures/figures``, which
``_config.yml`` lists in ``html_static_path`` so the book serves it as
``_static/figures/``), linked as ``$DIFFRED_FIGURE_URL`` (default ``../_static/figures``,
right for pages in ``chapters/``). ``diffred run`` points both at its results folder.
"""

from __future__ import annotations

import html
import io
import os
import re
from pathlib import Path

import pandas as pd

from .config import PROJECT_ROOT
from .store import atomic_write_bytes, atomic_write_text

FIGURE_DIR_ENV = "DIFFRED_FIGURE_DIR"
FIGURE_URL_ENV = "DIFFRED_FIGURE_URL"
LABEL = re.compile(r"^fig-[a-z0-9]+(-[a-z0-9]+)*$")
PAPER_KEY = "nanda2023diffused"


def figure_dir() -> Path:
    return Path(os.environ.get(FIGURE_DIR_ENV) or PROJECT_ROOT / "_figures" / "figures")


def figure_url() -> str:
    return (os.environ.get(FIGURE_URL_ENV) or "../_static/figures").rstrip("/")


def read_citation(path: Path | None = None) -> dict:
    """The book's ``CITATION.cff`` as a dict (title, authors, version, date, url)."""
    import yaml
    path = Path(path or PROJECT_ROOT / "CITATION.cff")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the cite blocks are built from it")
    cff = yaml.safe_load(path.read_text())
    for key in ("title", "authors", "version", "date-released"):
        if key not in cff:
            raise ValueError(f"{path} lacks the field {key!r}, which the cite blocks need")
    return cff


def bibtex_entry(key: str, path: Path | None = None) -> str:
    """One entry of ``references.bib`` verbatim, by its key."""
    text = Path(path or PROJECT_ROOT / "references.bib").read_text()
    m = re.search(r"@\w+\{" + re.escape(key) + r",.*?\n\}", text, flags=re.S)
    if not m:
        raise ValueError(f"references.bib has no entry {key!r}")
    return m.group(0)


def _author_names(cff: dict) -> list[str]:
    out = []
    for a in cff["authors"]:
        if "family-names" in a:
            out.append(f"{a['family-names']}, {a.get('given-names', '')}".strip(", "))
        else:
            out.append(str(a.get("name", "")))
    return out


def _tidy(data) -> pd.DataFrame:
    """The figure's data as one table: a DataFrame, or a dict of them (a ``source`` column
    says which panel or series each row feeds)."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        frames = [f.assign(source=name) for name, f in data.items() if f is not None]
        if not frames:
            raise ValueError("publish() got no data frames for the figure's CSV")
        return pd.concat(frames, ignore_index=True, sort=False)
    raise TypeError(f"figure data must be a DataFrame or a dict of them, not {type(data).__name__}")


FIGURE_DIRECTIVE = re.compile(r"^```\{(?:glue:figure|figure)\}", re.M)


def toc_pages(root: Path | None = None) -> list[str]:
    """Every page of the book in reading order (``_toc.yml``): the root, then the chapters'
    files, as paths without suffix (``chapters/02_random_subsets``)."""
    import yaml
    toc = yaml.safe_load((Path(root or PROJECT_ROOT) / "_toc.yml").read_text())
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return [str(Path(name).with_suffix("")) for name in names]


def figure_counts(root: Path | None = None) -> list[tuple[str, int]]:
    """Every page of the book (``_toc.yml`` order) with the number of numbered figures it
    holds; this is what Sphinx's book-wide figure numbers follow."""
    root = Path(root or PROJECT_ROOT)
    return [(name, len(FIGURE_DIRECTIVE.findall((root / f"{name}.md").read_text()))
             if (root / f"{name}.md").is_file() else 0) for name in toc_pages(root)]


def figures_before(page: str, root: Path | None = None) -> int:
    """How many numbered figures the book's pages before ``page`` hold (``_toc.yml`` order);
    0 for a page that is not in the book."""
    counts = figure_counts(root)
    stems = [Path(name).name for name, _ in counts]
    if page not in stems:
        return 0
    return sum(n for _, n in counts[: stems.index(page)])


class Published:
    """What :meth:`FigureBook.publish` returns: the file paths, the citation texts, and an
    HTML rendering (download links + a cite block) for the notebook output."""

    def __init__(self, label, number, title, files, url, plain, bibtex):
        self.label, self.number, self.title = label, number, title
        self.files, self.url, self.plain, self.bibtex = files, url, plain, bibtex

    def _repr_html_(self) -> str:
        links = " · ".join(
            f'<a class="figure-download" href="{html.escape(self.url)}/{p.name}" download>{kind}</a>'
            for kind, p in self.files.items())
        e = html.escape
        # Each <pre> sits in its own positioned box: sphinx-copybutton (``copybutton_selector``
        # in _config.yml) puts its copy button in the box's top right corner.
        return (
            f'<div class="diffred-figure-tools" data-figure="{e(self.label)}" data-number="{self.number}">'
            f'<p>Figure {self.number} of the book (<code>{e(self.label)}</code>). Download: {links}</p>'
            f'<details class="cite-figure"><summary>Cite this figure</summary>'
            f'<p>Plain text:</p><div class="cite-block"><pre class="cite-plain">{e(self.plain)}</pre></div>'
            f'<p>BibTeX (the figure, then the paper it reproduces):</p>'
            f'<div class="cite-block"><pre class="cite-bibtex">{e(self.bibtex)}</pre></div></details></div>')

    def __repr__(self) -> str:
        return f"Figure {self.number} ({self.label}): " + ", ".join(str(p) for p in self.files.values())


class FigureBook:
    """Numbers, saves and cites the figures of one chapter (``page`` is its file stem)."""

    def __init__(self, page: str, chapter_title: str, out_dir: Path | None = None, url: str | None = None):
        self.page, self.chapter_title = page, chapter_title
        self.out_dir = Path(out_dir) if out_dir is not None else figure_dir()
        self.url = url if url is not None else figure_url()
        self.labels: list[str] = []
        self.offset = figures_before(page)

    def glue(self, name: str, fig, data, label: str, title: str, reproduces: str | None = None) -> Published:
        """``myst_nb.glue(name, fig)`` for the page's ``{glue:figure}``, then :meth:`publish`."""
        from myst_nb import glue
        glue(name, fig, display=False)
        return self.publish(fig, data, label, title, reproduces)

    def publish(self, fig, data, label: str, title: str, reproduces: str | None = None) -> Published:
        """Save ``fig`` as PNG and SVG and ``data`` as CSV under ``label``; return the
        download links and cite block. ``reproduces`` names the paper's figure or table
        this one regenerates (e.g. ``"Fig. 1"``)."""
        if not LABEL.match(label):
            raise ValueError(f"figure label {label!r} must look like 'fig-some-name' "
                             "(lower case, digits and dashes): it becomes a file name and an anchor")
        if label in self.labels:
            raise ValueError(f"figure label {label!r} is used twice in {self.page}")
        self.labels.append(label)
        number = self.offset + len(self.labels)
        table = _tidy(data)
        if table.empty:
            raise ValueError(f"figure {label}: its data table is empty")
        files = {"PNG": self.out_dir / f"{label}.png", "SVG": self.out_dir / f"{label}.svg",
                 "CSV": self.out_dir / f"{label}.csv"}
        import matplotlib
        for kind in ("PNG", "SVG"):
            buf = io.BytesIO()
            matplotlib.rcParams["svg.hashsalt"] = label  # stable SVG element ids
            # no timestamp in the files: the same figure gives the same bytes
            fig.savefig(buf, format=kind.lower(), dpi=200, bbox_inches="tight",
                        metadata={"Date": None} if kind == "SVG" else {"Software": None})
            atomic_write_bytes(files[kind], lambda fh, b=buf.getvalue(): fh.write(b))
        atomic_write_text(files["CSV"], table.to_csv(index=False))
        plain, bib = self.citation(label, number, title, reproduces)
        return Published(label, number, title, files, self.url, plain, bib)

    def citation(self, label: str, number: int, title: str, reproduces: str | None = None) -> tuple[str, str]:
        """Plain-text and BibTeX citations of figure ``number`` (numbered across the book)
        of this chapter, with the figure's address under the book's URL (``CITATION.cff``)."""
        cff = read_citation()
        authors = _author_names(cff)
        year = str(cff["date-released"])[:4]
        page_url, image_url = figure_urls(cff, self.page, label)
        what = f" It reproduces {reproduces} of Nanda et al. (2023)." if reproduces else \
            " It extends Nanda et al. (2023)."
        image = f" Image: {image_url}." if image_url else ""
        plain = (f"{'; '.join(authors)} ({year}). Figure {number}: {title}. In {cff['title']}, "
                 f"version {cff['version']}: Figure {number} of the book, in chapter "
                 f"\"{self.chapter_title}\". {page_url}.{image}{what}")
        key = f"diffred{year}_{self.page.split('_')[0]}_{label.removeprefix('fig-').replace('-', '_')}"
        note = f"Figure {number} of the book, in chapter ``{self.chapter_title}''"
        if reproduces:
            note += f"; reproduces {reproduces} of \\cite{{{PAPER_KEY}}}"
        bib = "\n".join([
            f"@misc{{{key},",
            f"  title        = {{{{Figure {number}: {title}}}}},",
            f"  author       = {{{' and '.join('{' + a + '}' if ',' not in a else a for a in authors)}}},",
            f"  howpublished = {{{cff['title']}, version {cff['version']}}},",
            f"  year         = {{{year}}},",
            f"  url          = {{{page_url}}},",
            f"  note         = {{{note}}}",
            "}",
        ])
        return plain, bib + "\n\n" + bibtex_entry(PAPER_KEY)


def book_url(cff: dict | None = None) -> str | None:
    """The address the book is published at: ``url:`` in ``CITATION.cff`` (the one setting
    every cite block and the README's publishing recipe use), with no trailing slash."""
    url = (cff if cff is not None else read_citation()).get("url")
    return str(url).rstrip("/") if url else None


def figure_urls(cff: dict, page: str, label: str) -> tuple[str, str | None]:
    """The figure's address on its page, and its PNG's, both absolute under the book's URL.
    Without a ``url:`` the page address is relative to the book's root and there is no PNG
    address; a run with its own figure folder (``$DIFFRED_FIGURE_URL``, as ``diffred run``
    sets) gets no PNG address either, since its files are not the book's."""
    base = book_url(cff)
    where = f"chapters/{page}.html#{label}"
    if not base:
        return where, None
    image = None if os.environ.get(FIGURE_URL_ENV) else f"{base}/_static/figures/{label}.png"
    return f"{base}/{where}", image


def glue_all(values: dict) -> None:
    """``myst_nb.glue(key, value, display=False)`` for every entry of an analysis's
    ``quotes``: the chapter's one glue call."""
    from myst_nb import glue
    for key, value in values.items():
        if hasattr(value, "item") and getattr(value, "shape", None) == ():
            value = value.item()  # a numpy scalar: its repr ('np.float64(0.9)') cannot be formatted
        glue(key, value, display=False)
