"""The published book: ``make archive`` (what ``make publish`` runs after ``make book``) packs
the built site into ``diffred-book-<version>.tar.gz``; unpacked, it must work served from
any sub-path of a web server and opened straight from disk.

The archive of the session's smoke-scale book (conftest.py: ``built_book``) is unpacked
under ``<root>/some/sub/path/`` and served on 127.0.0.1 from ``<root>``, so that every page
lives at ``http://127.0.0.1:PORT/some/sub/path/diffred-book-<version>/...``: a link written
relative to the server's root, not to the page, would 404 there. Debian's chromium (through
Playwright) opens every page, and every request off the loopback is aborted and reported.
The tests that need the built book are marked slow; the cite-block checks at the end are not.
"""

from __future__ import annotations

import functools
import hashlib
import re
import subprocess
import tarfile
import threading
import tomllib
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import is_local
import yaml

from diffred.figures import toc_pages

REPO = Path(__file__).resolve().parents[1]
VERSION = yaml.safe_load((REPO / "CITATION.cff").read_text())["version"]
TOP = f"diffred-book-{VERSION}"
SUB_PATH = "some/sub/path"
PAGES = toc_pages(REPO)
#: Pages to open from disk (file://): the root page, one with figures and math, the sources.
DISK_PAGES = ["chapters/index", "chapters/02_random_subsets", "chapters/sources"]
PAGE_TIMEOUT_MS = 30_000
#: A URL that a sub-path breaks: root-relative (``/x``), not protocol-relative (``//host``).
ROOT_RELATIVE = re.compile(r"""(?:href|src)\s*=\s*["']/(?!/)[^"']*["']""")


def make_archive(html: Path, out: Path) -> Path:
    proc = subprocess.run(["make", "--no-print-directory", "-s", "archive", f"HTML={html}", f"PUBLISH_DIR={out}"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"make archive failed:\n{proc.stdout}{proc.stderr}"
    return out / f"{TOP}.tar.gz"


@pytest.fixture(scope="module")
def archive(built_book, tmp_path_factory) -> Path:
    return make_archive(built_book, tmp_path_factory.mktemp("publish"))


@pytest.fixture(scope="module")
def site_root(archive, tmp_path_factory) -> Path:
    """The server's root folder; the book is unpacked under SUB_PATH in it."""
    root = tmp_path_factory.mktemp("www")
    (root / SUB_PATH).mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(root / SUB_PATH, filter="data")
    return root


@pytest.mark.slow
def test_archive_is_versioned_and_holds_the_site(archive, built_book):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["version"] == VERSION, "pyproject.toml and CITATION.cff give different versions"
    assert archive.is_file() and archive.name == f"{TOP}.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert all(n == TOP or n.startswith(TOP + "/") for n in names), "members outside the top folder"
    for page in ["index", *PAGES]:
        assert f"{TOP}/{page}.html" in names, f"{page}.html is not in the archive"
    built = {str(p.relative_to(built_book)) for p in built_book.rglob("*") if p.is_file()}
    packed = {n.removeprefix(TOP + "/") for n in names}
    assert built - {".buildinfo"} <= packed


@pytest.mark.slow
def test_archive_is_reproducible(archive, built_book, tmp_path):
    again = make_archive(built_book, tmp_path)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(archive.read_bytes()).hexdigest()


@pytest.mark.slow
def test_no_link_is_relative_to_the_server_root(site_root):
    offenders = {}
    for page in (site_root / SUB_PATH / TOP).rglob("*.html"):
        found = ROOT_RELATIVE.findall(page.read_text(errors="replace"))
        if found:
            offenders[str(page.relative_to(site_root))] = found[:5]
    assert not offenders, f"links that break under a sub-path: {offenders}"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="module")
def base_url(site_root):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site_root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{SUB_PATH}/{TOP}/"
    server.shutdown()
    server.server_close()


_STATE_JS = """
() => {
  const content = document.querySelector("article.bd-article") || document.body;
  const sheets = [...document.styleSheets].map(s => s.href || "").filter(Boolean);
  const pre = document.querySelector("div.cite-block pre");
  return {
    sheets: sheets,
    diffredCss: sheets.some(h => h.includes("/_static/diffred.css")),
    citeWraps: pre ? getComputedStyle(pre).whiteSpace : null,
    copyButtons: content.querySelectorAll("div.cite-block button.copybtn").length,
    citeBlocks: content.querySelectorAll("div.cite-block pre").length,
    math: content.querySelectorAll(".math").length,
    mjx: content.querySelectorAll("mjx-container").length,
    images: [...content.querySelectorAll("img")].filter(i => !(i.complete && i.naturalWidth > 0))
                                                 .map(i => i.getAttribute("src")),
    downloads: [...content.querySelectorAll("a.figure-download, a.download")].map(a => a.href),
  };
}
"""


def _open(browser_context, url: str) -> dict:
    """Open ``url``; what it requested, what failed, its script errors and its state."""
    page = browser_context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    seen = {"requests": [], "failed": [], "errors": []}
    page.on("request", lambda req: seen["requests"].append(req.url))
    page.on("requestfailed", lambda req: seen["failed"].append(f"{req.url} ({req.failure})"))
    page.on("response", lambda resp: resp.status >= 400 and seen["failed"].append(f"{resp.url} (HTTP {resp.status})"))
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    try:
        page.goto(url, wait_until="load")
        if page.locator("script[src*='tex-mml-chtml.js']").count():
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("() => MathJax.startup.promise.then(() => document.fonts.ready).then(() => true)")
        page.wait_for_load_state("networkidle")
        seen["state"] = page.evaluate(_STATE_JS)
    finally:
        page.close()
    return seen


def _check_page(seen: dict, where: str) -> None:
    remote = [u for u in seen["requests"] if not is_local(u)]
    assert not remote, f"{where}: requests that leave this machine: {remote}"
    assert not seen["failed"], f"{where}: failed requests: {seen['failed']}"
    assert not seen["errors"], f"{where}: script errors: {seen['errors']}"
    state = seen["state"]
    assert state["diffredCss"] and any("/_static/styles/" in s for s in state["sheets"]), \
        f"{where}: the theme's or the book's style sheet did not load: {state['sheets']}"
    assert not state["images"], f"{where}: images that did not load: {state['images']}"
    assert state["mjx"] >= state["math"], f"{where}: math left untypeset"
    if state["citeBlocks"]:
        assert state["citeWraps"] == "pre-wrap", f"{where}: cite blocks do not wrap"
        assert state["copyButtons"] == state["citeBlocks"], f"{where}: a cite block has no copy button"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("docname", PAGES)
def test_every_page_works_under_a_sub_path(browser_context, base_url, docname):
    seen = _open(browser_context, f"{base_url}{docname}.html")
    _check_page(seen, docname)
    for href in seen["state"]["downloads"]:
        response = browser_context.request.get(href)
        assert response.ok, f"{docname}: download {href}: HTTP {response.status}"
        assert len(response.body()) > 0, f"{docname}: download {href} is empty"


@pytest.mark.slow
@pytest.mark.browser
def test_the_root_redirects_under_a_sub_path(browser_context, base_url):
    page = browser_context.new_page()
    try:
        page.goto(base_url, wait_until="load")
        page.wait_for_url(f"{base_url}{PAGES[0]}.html", timeout=PAGE_TIMEOUT_MS)
    finally:
        page.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("docname", DISK_PAGES)
def test_pages_work_opened_from_disk(browser_context, site_root, docname):
    path = site_root / SUB_PATH / TOP / f"{docname}.html"
    seen = _open(browser_context, path.as_uri())
    _check_page(seen, f"file://{docname}")
    missing = [h for h in seen["state"]["downloads"]
               if h.startswith("file:") and not Path(urlsplit(h).path).is_file()]
    assert not missing, f"{docname}: downloads missing from the unpacked archive: {missing}"


@pytest.mark.slow
@pytest.mark.browser
def test_sources_page_publishes_every_named_file(browser_context, base_url):
    seen = _open(browser_context, f"{base_url}chapters/sources.html")
    names = {Path(urlsplit(h).path).name for h in seen["state"]["downloads"]}
    expected = {"README.md", "CITATION.cff", "references.bib", "SOURCE.md", "requirements.lock"}
    expected |= {p.name for p in (REPO / "data" / "models").glob("*.md")}
    expected |= {p.name for p in (REPO / "data" / "models").glob("*.json")}
    assert expected <= names, f"not published on the Sources page: {sorted(expected - names)}"


def test_cite_block_gives_absolute_urls_and_book_wide_numbers(tmp_path, monkeypatch):
    """The book's URL comes from CITATION.cff's url:, the number is the book's."""
    import matplotlib.pyplot as plt
    import pandas as pd
    from diffred import figures
    monkeypatch.delenv(figures.FIGURE_URL_ENV, raising=False)
    base = figures.book_url()
    assert base and base.startswith("https://") and not base.endswith("/")
    book = figures.FigureBook("02_random_subsets", "Random subsets", out_dir=tmp_path, url="x")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    pub = book.publish(fig, pd.DataFrame({"x": [0, 1]}), "fig-any", "A title")
    plt.close(fig)
    n = pub.number
    assert n == figures.figures_before("02_random_subsets") + 1
    assert f"{base}/chapters/02_random_subsets.html#fig-any" in pub.plain
    assert f"{base}/_static/figures/fig-any.png" in pub.plain
    assert f"Figure {n} of the book, in chapter" in pub.plain and "of the chapter" not in pub.plain
    assert f"url          = {{{base}/chapters/02_random_subsets.html#fig-any}}" in pub.bibtex
    assert f"note         = {{Figure {n} of the book, in chapter" in pub.bibtex
    html = pub._repr_html_()
    assert html.count('<div class="cite-block"><pre class="cite-') == 2
    assert f"Figure {n} of the book" in html


def test_a_rerun_cites_no_image_of_the_book(tmp_path, monkeypatch):
    from diffred import figures
    monkeypatch.setenv(figures.FIGURE_URL_ENV, "figures")
    cff = figures.read_citation()
    page, image = figures.figure_urls(cff, "02_random_subsets", "fig-x")
    assert page.startswith("https://") and image is None
    page, image = figures.figure_urls({k: v for k, v in cff.items() if k != "url"}, "02_random_subsets", "fig-x")
    assert page == "chapters/02_random_subsets.html#fig-x" and image is None


def test_config_serves_the_css_and_copies_cite_blocks_without_thebe():
    config = yaml.safe_load((REPO / "_config.yml").read_text())["sphinx"]["config"]
    assert "_css" in config["html_static_path"] and (REPO / "_css" / "diffred.css").is_file()
    assert config["html_css_files"] == ["diffred.css"]
    assert "div.cite-block pre" in config["copybutton_selector"]
    assert "sphinx_thebe" not in config["extensions"] and "sphinx_copybutton" in config["extensions"]
