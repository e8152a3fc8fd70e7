"""The built book, as a reader's browser shows it.

Every page in ``_toc.yml`` is opened once in Debian's chromium (through Playwright),
served from 127.0.0.1, and checked for what a static check of the HTML cannot see:
nothing is fetched from the internet (MathJax and its fonts included), every image
loads, glued numbers were pasted, and MathJax typeset the math.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import is_local

#: Every test here needs the built book (see conftest.py), hence slow.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

#: The MathJax bundle the book serves itself (_config.yml: mathjax_path).
MATHJAX_SCRIPT = "_static/tex-mml-chtml.js"
#: How long one page may take to load and typeset (ms).
PAGE_TIMEOUT_MS = 30_000


def toc_docnames(toc_path: Path = REPO / "_toc.yml") -> list[str]:
    """Every page of the book, in reading order: the root, then the chapters' files."""
    from diffred.figures import toc_pages
    return toc_pages(toc_path.parent)


PAGES = toc_docnames()
#: Pages that must show at least one figure and one glued value.
CHAPTERS_WITH_FIGURES = ["chapters/01_setup", "chapters/02_random_subsets", "chapters/09_cost",
                         "chapters/10_rerun", "chapters/11_pretraining", "chapters/12_layers"]
#: Pages that must hold math (others are checked only if they have some).
PAGES_WITH_MATH = ["chapters/index", "chapters/02_random_subsets"]

#: What MyST-NB 1.4 renders for inline glue: {glue:text} -> span.pasted-text,
#: {glue} of a text/plain value -> span.output.text_plain, {glue:math} -> .pasted-math.
GLUE_INLINE_SELECTOR = "span.pasted-text, span.output.text_plain, .pasted-math"
#: The article body of a sphinx-book-theme page.
CONTENT_SELECTOR = "article.bd-article"
#: Text that shows a glue or parse failure left in the page.
FAILURE_MARKERS = ["could not find", "{glue", "found in glue data", "No key '"]
#: A glued value's repr instead of a number: numpy 2 scalars print as np.float64(0.84),
#: torch scalars as tensor(0.84). Glue Python floats/ints (float(x)) or format them.
GLUED_REPR = re.compile(r"\b(?:np\.\w+|numpy\.\w+|tensor|array)\(")
#: JavaScript errors the toolchain itself causes, each with why it is harmless.
KNOWN_JS_ERRORS = {
    # Sphinx 7 writes an inline <script> registered after builder init twice
    # (sphinx-doc/sphinx#13402, fixed in Sphinx 8.2; Jupyter Book 1 needs Sphinx 7).
    # sphinx-thebe's declares a const, so the copy fails; thebe is off in this book.
    "Identifier 'THEBE_JS_URL' has already been declared",
}
#: Inline math MyST's dollarmath would have parsed: $<non-space>...<non-space>$.
RAW_DOLLAR_MATH = re.compile(r"(?<![\\$])\$(?=\S)[^$\n]*?\S\$(?!\d)")
RAW_TEX_DELIMITERS = ("\\(", "\\)", "\\[", "\\]", "$$")


@dataclass
class PageReport:
    """What one visit of a page recorded."""

    url: str
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    js_errors: list[str] = field(default_factory=list)
    state: dict = field(default_factory=dict)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="session")
def book_url(built_book: Path):
    """Base URL of the built book, served by a local HTTP server in a thread."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


_COLLECT_JS = """
([contentSel, glueSel]) => {
  const content = document.querySelector(contentSel) || document.querySelector("main");
  const imgs = [...content.querySelectorAll("img")].map(img => ({
    src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth}));
  const maths = [...content.querySelectorAll(".math")];
  // The prose as a reader sees it: without code, and without typeset math.
  const prose = content.cloneNode(true);
  prose.querySelectorAll("pre, code, script, style, mjx-container, mjx-assistive-mml")
       .forEach(el => el.remove());
  return {
    images: imgs,
    figures: content.querySelectorAll("figure img").length,
    glue: content.querySelectorAll(glueSel).length,
    problems: content.querySelectorAll(".system-message, .problematic").length,
    math: maths.length,
    mathUntypeset: maths.filter(el => !el.querySelector("mjx-container"))
                        .map(el => el.textContent.trim()),
    mjx: content.querySelectorAll("mjx-container").length,
    prose: prose.textContent,
    figs: [...content.querySelectorAll("figure[id]")].map(f => ({
      id: f.id, number: (f.querySelector(".caption-number") || {}).textContent || ""})),
    tools: [...content.querySelectorAll(".diffred-figure-tools")].map(t => ({
      label: t.dataset.figure, number: t.dataset.number,
      links: [...t.querySelectorAll("a.figure-download")].map(a => ({kind: a.textContent.trim(), href: a.href})),
      plain: (t.querySelector(".cite-plain") || {}).textContent || "",
      bibtex: (t.querySelector(".cite-bibtex") || {}).textContent || ""})),
  };
}
"""


@pytest.fixture(scope="session")
def visit(browser_context, book_url):
    """``visit(docname) -> PageReport``: each page is loaded once, then remembered."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    reports: dict[str, PageReport | Exception] = {}

    def _visit(docname: str) -> PageReport:
        if docname not in reports:
            try:
                reports[docname] = _load(docname)
            except Exception as exc:  # remembered, so one broken page costs one timeout
                reports[docname] = exc
        if isinstance(reports[docname], Exception):
            raise reports[docname]
        return reports[docname]

    def _load(docname: str) -> PageReport:
        report = PageReport(url=f"{book_url}{docname}.html")
        page = browser_context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("request", lambda req: report.requests.append(req.url))
        page.on("requestfailed", lambda req: report.failed.append(f"{req.url} ({req.failure})"))
        page.on("response", lambda resp: resp.status >= 400
                and report.failed.append(f"{resp.url} (HTTP {resp.status})"))
        page.on("pageerror", lambda exc: report.js_errors.append(str(exc)))
        try:
            response = page.goto(report.url, wait_until="load")
            assert response is not None and response.ok, f"{report.url}: {response}"
            # Sphinx adds MathJax only to pages with math. It is deferred; its
            # startup.promise resolves once the page is typeset.
            mathjax_failed = any(MATHJAX_SCRIPT in url for url in report.failed)
            if page.locator(f"script[src*='{MATHJAX_SCRIPT}']").count() and not mathjax_failed:
                try:
                    page.wait_for_function("() => window.MathJax && MathJax.startup"
                                           " && MathJax.startup.promise")
                    page.evaluate("() => MathJax.startup.promise"
                                  ".then(() => document.fonts.ready).then(() => true)")
                except PlaywrightTimeout:  # reported by test_math_is_typeset
                    report.js_errors.append("MathJax did not start within "
                                            f"{PAGE_TIMEOUT_MS} ms")
            page.wait_for_load_state("networkidle")
            report.state = page.evaluate(_COLLECT_JS, [CONTENT_SELECTOR, GLUE_INLINE_SELECTOR])
        finally:
            page.close()
        return report

    return _visit


def test_toc_lists_the_expected_pages():
    assert PAGES[0] == "chapters/index"
    assert set(CHAPTERS_WITH_FIGURES) | set(PAGES_WITH_MATH) <= set(PAGES)


@pytest.mark.browser
@pytest.mark.parametrize("docname", PAGES)
def test_nothing_is_fetched_from_the_internet(visit, docname):
    report = visit(docname)
    remote = [url for url in report.requests if not is_local(url)]
    assert not remote, f"{docname} requested remote resources: {remote}"
    assert any(url.endswith(".js") or ".js?" in url for url in report.requests)


@pytest.mark.browser
@pytest.mark.parametrize("docname", PAGES)
def test_every_request_succeeds_without_script_errors(visit, docname):
    report = visit(docname)
    assert not report.failed, f"{docname}: failed requests {report.failed}"
    errors = [e for e in report.js_errors if e not in KNOWN_JS_ERRORS]
    assert not errors, f"{docname}: JavaScript errors {errors}"


@pytest.mark.browser
@pytest.mark.parametrize("docname", PAGES)
def test_every_image_loads(visit, docname):
    images = visit(docname).state["images"]
    broken = [img["src"] for img in images if not (img["complete"] and img["width"] > 0)]
    assert not broken, f"{docname}: images that did not load: {broken}"


@pytest.mark.browser
@pytest.mark.parametrize("docname", CHAPTERS_WITH_FIGURES)
def test_chapter_shows_a_figure(visit, docname):
    assert visit(docname).state["figures"] >= 1, f"{docname} shows no figure"


@pytest.mark.browser
@pytest.mark.parametrize("docname", PAGES)
def test_every_figure_has_downloads_and_a_cite_block(visit, docname):
    """Each numbered figure is followed by its tools block: same label, same number."""
    state = visit(docname).state
    figs = [f for f in state["figs"] if f["id"].startswith("fig-")]
    assert [f["id"] for f in figs] == [t["label"] for t in state["tools"]], \
        f"{docname}: figures {figs} and download blocks {state['tools']} do not pair up"
    for fig, tools in zip(figs, state["tools"]):
        caption_number = re.search(r"(\d+)", fig["number"])
        assert caption_number and caption_number.group(1) == tools["number"], (fig, tools["number"])
        assert [link["kind"] for link in tools["links"]] == ["PNG", "SVG", "CSV"]
        assert f"Figure {tools['number']}:" in tools["plain"] and f"#{fig['id']}" in tools["plain"]
        assert tools["bibtex"].startswith("@misc{") and "@inproceedings{nanda2023diffused" in tools["bibtex"]


@pytest.mark.browser
@pytest.mark.parametrize("docname", CHAPTERS_WITH_FIGURES)
def test_download_links_deliver_real_files(visit, browser_context, docname):
    """Fetch every download link of the page and check the bytes are what they claim."""
    tools = visit(docname).state["tools"]
    assert tools, f"{docname} has no figure downloads"
    for block in tools:
        for link in block["links"]:
            response = browser_context.request.get(link["href"])
            assert response.ok, f"{link['href']}: HTTP {response.status}"
            body = response.body()
            assert len(body) > 100, f"{link['href']} is (nearly) empty"
            if link["kind"] == "PNG":
                assert body.startswith(b"\x89PNG\r\n\x1a\n"), link["href"]
            elif link["kind"] == "SVG":
                assert b"<svg" in body[:2000], link["href"]
            else:
                header, *rows = body.decode().strip().splitlines()
                assert "," in header and rows, f"{link['href']} has no data rows"


@pytest.mark.browser
@pytest.mark.parametrize("docname", PAGES)
def test_glued_values_are_pasted(visit, docname):
    state = visit(docname).state
    leftovers = [marker for marker in FAILURE_MARKERS if marker in state["prose"]]
    assert not leftovers, f"{docname}: glue/parse failure text left in the page: {leftovers}"
    reprs = GLUED_REPR.findall(state["prose"])
    assert not reprs, f"{docname}: a glued value shows as a Python repr: {reprs}"
    assert state["problems"] == 0, f"{docname}: {state['problems']} system messages in page"
    if docname in CHAPTERS_WITH_FIGURES:
        assert state["glue"] >= 1, (
            f"{docname} pastes no glued value (looked for {GLUE_INLINE_SELECTOR!r})")


@pytest.mark.browser
@pytest.mark.parametrize("docname", PAGES)
def test_math_is_typeset(visit, docname):
    state = visit(docname).state
    if docname in PAGES_WITH_MATH:
        assert state["math"] >= 1, f"{docname} holds no math"
    assert not state["mathUntypeset"], f"{docname}: math MathJax left as TeX: " \
                                       f"{state['mathUntypeset']}"
    assert state["mjx"] >= state["math"]
    prose = state["prose"]
    raw = [d for d in RAW_TEX_DELIMITERS if d in prose] + RAW_DOLLAR_MATH.findall(prose)
    assert not raw, f"{docname}: raw TeX delimiters left in the text: {raw}"


@pytest.mark.browser
def test_root_redirects_to_the_first_page(browser_context, book_url):
    page = browser_context.new_page()
    try:
        page.goto(book_url, wait_until="load")
        page.wait_for_url(f"{book_url}{PAGES[0]}.html", timeout=PAGE_TIMEOUT_MS)
    finally:
        page.close()


def test_html_loads_no_remote_scripts_or_styles(built_book):
    """Static check, without a browser: no <script src> or <link href> leaves the book."""
    remote = re.compile(r"<(?:script[^>]*\ssrc|link[^>]*\shref)=\"(?:https?:)?//[^\"]*\"")
    offenders = {}
    for docname in PAGES:
        found = remote.findall((built_book / f"{docname}.html").read_text())
        if found:
            offenders[docname] = found
    assert not offenders
    assert (built_book / "_static" / "tex-mml-chtml.js").is_file()
    assert any((built_book / "_static/output/chtml/fonts/woff-v2").glob("*.woff"))


#: Which chapter owns each of the paper's claims (the ledger pastes from it).
CLAIM_OWNERS = {1: "02_random_subsets", 2: "13_how_random", 3: "02_random_subsets", 4: "03_selectors",
                5: "04_similarity", 6: "05_per_class", 7: "06_architectures", 8: "11_pretraining",
                9: "11_pretraining", 10: "11_pretraining", 11: "12_layers"}
_VERDICTS_JS = """() => Object.fromEntries([...document.querySelectorAll('span.claim-verdict')]
  .map(s => [s.dataset.claim, s.dataset.outcome]))"""


def _page_verdicts(browser_context, url: str) -> dict:
    page = browser_context.new_page()
    try:
        assert page.goto(url, wait_until="load").ok, url
        return {int(k): v for k, v in page.evaluate(_VERDICTS_JS).items()}
    finally:
        page.close()


@pytest.mark.browser
def test_ledger_verdicts_equal_the_chapters(browser_context, book_url):
    """Every claim's verdict on the ledger page is the verdict its chapter page shows."""
    ledger = _page_verdicts(browser_context, f"{book_url}chapters/claims.html")
    assert sorted(ledger) == list(range(1, 12)), f"the ledger shows verdicts for claims {sorted(ledger)}"
    chapters = {}
    for claim, owner in CLAIM_OWNERS.items():
        if owner not in chapters:
            chapters[owner] = _page_verdicts(browser_context, f"{book_url}chapters/{owner}.html")
        assert claim in chapters[owner], f"chapter {owner} shows no verdict for claim {claim}"
        assert ledger[claim] == chapters[owner][claim], (
            f"claim {claim}: the ledger says {ledger[claim]!r}, chapter {owner} says {chapters[owner][claim]!r}")
    assert set(ledger.values()) <= {"holds", "holds partly", "does not hold", "inconclusive"}


def test_ledger_page_pastes_each_claim_from_its_owner():
    text = (REPO / "chapters" / "claims.md").read_text()
    for claim, owner in CLAIM_OWNERS.items():
        for key in ("paper", "ours", "badge"):
            assert f"{owner}.md::claim{claim}_{key}" in text, f"claims.md lacks {owner}.md::claim{claim}_{key}"
