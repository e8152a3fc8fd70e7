"""Screenshots of every page of a built book, as a reader's browser shows it.

    .venv/bin/python scripts/screenshots.py _build/html /tmp/shots [--pages chapters/02_random_subsets ...]

Serves the HTML folder on 127.0.0.1, opens each page of ``_toc.yml`` (or the named pages)
in Debian's chromium at 1280 px and at 400 px, waits for MathJax, and writes full-page PNGs
``<out>/<page>-1280.png`` and ``<out>/<page>-400.png``. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import CHROMIUM, CHROMIUM_ARGS, is_local  # noqa: E402

WIDTHS = (1280, 400)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


def shoot(html: Path, out: Path, pages: list[str]) -> list[Path]:
    from playwright.sync_api import sync_playwright
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    written = []
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for width in WIDTHS:
            context = browser.new_context(viewport={"width": width, "height": 900})
            context.route("**/*", lambda r: r.continue_() if is_local(r.request.url) else r.abort())
            for docname in pages:
                page = context.new_page()
                page.goto(f"{base}{docname}.html", wait_until="load")
                page.wait_for_timeout(1500)  # MathJax typesets after load
                path = out / f"{docname.replace('/', '_')}-{width}.png"
                page.screenshot(path=str(path), full_page=True)
                written.append(path)
                page.close()
            context.close()
        browser.close()
    server.shutdown()
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path, help="a built book's HTML folder, e.g. _build/html")
    ap.add_argument("out", type=Path, help="folder for the PNGs")
    ap.add_argument("--pages", nargs="*", help="docnames (default: every page of _toc.yml)")
    args = ap.parse_args()
    from diffred.figures import toc_pages
    for path in shoot(args.html, args.out, args.pages or toc_pages(REPO)):
        print(path)


if __name__ == "__main__":
    main()
