"""The built book's downloads, as a reader's browser gets them: every executed chapter offers
its notebook (``.ipynb``, with outputs) in the page's download menu, the sources page links
the project's files, and no page shows where the build machine keeps its files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_book_html import CONTENT_SELECTOR, PAGES, book_url  # noqa: F401  (book_url: a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]
#: Text that shows a machine path (the build's temporary, home, project or package folders).
MACHINE_MARKERS = ["/tmp/", "/root/", "/work/", "site-packages"]
#: Pages built from Markdown only (nothing executed, so no notebook to offer).
PLAIN_PAGES = {"chapters/index", "chapters/claims", "chapters/sources", "chapters/execution"}
EXECUTED_PAGES = [p for p in PAGES if p not in PLAIN_PAGES]
#: Files the book names and must publish (linked from the sources page).
PUBLISHED = ["README.md", "CITATION.cff", "references.bib", "SOURCE.md", "cnn_ce_s1.md"]


def _cache_spellings() -> list[str]:
    root = os.environ.get("DIFFRED_CACHE") or str(REPO / ".cache")
    return sorted({root, str(Path(root).resolve())})


@pytest.fixture(scope="module")
def page_of(browser_context, book_url):  # noqa: F811
    """``page_of(docname) -> (page text, download links)``, each page loaded once."""
    seen = {}

    def _load(docname):
        if docname not in seen:
            page = browser_context.new_page()
            try:
                page.goto(f"{book_url}{docname}.html", wait_until="load")
                text = page.locator("body").inner_text()
                links = page.eval_on_selector_all(
                    ".dropdown-download-buttons a, a.reference.download",
                    "els => els.map(a => ({href: a.href, text: a.textContent.trim()}))")
            finally:
                page.close()
            seen[docname] = (text, links)
        return seen[docname]

    return _load


@pytest.mark.parametrize("docname", EXECUTED_PAGES)
def test_executed_notebook_downloads(page_of, browser_context, docname):
    _, links = page_of(docname)
    notebooks = [a["href"] for a in links if a["href"].endswith(".ipynb")]
    assert len(notebooks) == 1, f"{docname}: .ipynb links in the download menu: {notebooks}"
    response = browser_context.request.get(notebooks[0])
    assert response.ok, f"{notebooks[0]}: HTTP {response.status}"
    nb = json.loads(response.text())
    assert nb["nbformat"] == 4 and nb["cells"]
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert outputs, f"{docname}: the downloaded notebook holds no outputs"
    leaked = [m for m in MACHINE_MARKERS + _cache_spellings() if m in response.text()]
    assert not leaked, f"{docname}: the notebook shows machine paths {leaked}"


@pytest.mark.parametrize("docname", PAGES)
def test_no_machine_path_on_any_page(page_of, docname):
    text, _ = page_of(docname)
    leaked = [m for m in MACHINE_MARKERS + _cache_spellings() if m in text]
    assert not leaked, f"{docname} shows machine paths {leaked}"


def test_sources_page_publishes_the_named_files(page_of, browser_context):
    _, links = page_of("chapters/sources")
    by_name = {a["text"]: a["href"] for a in links}
    missing = [name for name in PUBLISHED if name not in by_name]
    assert not missing, f"the sources page does not link {missing}"
    for name in PUBLISHED:
        response = browser_context.request.get(by_name[name])
        assert response.ok and response.body(), f"{name}: HTTP {response.status}"
