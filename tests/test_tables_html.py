"""The built book's tables as a reader sees them: every table goes through
``diffred.tables.show`` (no raw pandas table, column name, NaN or True/False), and in a real
browser a phone (400 px) shows every number of every table inside the screen, while at
1280 px a wide table stays inside the page column (it scrolls in its own box)."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup
from test_book_html import CONTENT_SELECTOR, PAGES, book_url  # noqa: F401  (book_url: a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

#: What a raw pandas value or name looks like in a cell or a header.
RAW_CELLS = {"NaN", "nan", "None", "True", "False", "<NA>", "NaT"}
RAW_NAME = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")
#: Built-in models and zoo models are named by their identifiers (what `-p model=` takes).
IDENTIFIER = re.compile(r"^(efficientnet_lite\d(_random)?|cnn_\w+|vit_\w+|mlp_\w+|tf_\w+)$")
PAGES_WITH_TABLES = ["chapters/claims", "chapters/01_setup", "chapters/02_random_subsets",
                     "chapters/06_architectures", "chapters/09_cost", "chapters/11_pretraining", "chapters/13_how_random"]

_BOXES_JS = """
(contentSel) => {
  const content = document.querySelector(contentSel);
  const right = content.getBoundingClientRect().right;
  const cells = [...content.querySelectorAll("table.diffred-table td, section#the-claims-ledger table td")].map(td => {
    const r = td.getBoundingClientRect();
    return {text: td.textContent, left: r.left, right: r.right, width: r.width};
  });
  const boxes = [...content.querySelectorAll("div.diffred-table-scroll")].map(d => d.getBoundingClientRect().right);
  return {viewport: window.innerWidth, content_right: right, cells, boxes};
}
"""


def _tables(built_book, docname):
    soup = BeautifulSoup((built_book / f"{docname}.html").read_text(), "html.parser")
    return soup.select(f"{CONTENT_SELECTOR} table")


@pytest.mark.parametrize("docname", PAGES)
def test_tables_are_the_books_not_raw_pandas(built_book, docname):
    found = _tables(built_book, docname)
    raw = [t for t in found if "dataframe" in (t.get("class") or [])]
    assert not raw, f"{docname}: {len(raw)} table(s) shown as raw pandas HTML (use diffred.tables.show)"
    for t in found:
        if "diffred-table" not in (t.get("class") or []):
            continue
        heads = [th.get_text(" ", strip=True) for th in t.select("th")]
        named = [h for h in heads if any(not IDENTIFIER.match(word) for word in RAW_NAME.findall(h))]
        assert not named, f"{docname}: raw column names in a header: {named}"
        cells = [td.get_text(strip=True) for td in t.select("td")]
        assert not RAW_CELLS & set(cells), f"{docname}: raw values {RAW_CELLS & set(cells)} in a table"
        labelled = [td.get("data-label") for td in t.select("td")]
        assert all(labelled), f"{docname}: a cell without its header (data-label) for the phone layout"


def _boxes(browser_context, book_url, docname, width):  # noqa: F811
    """Where the page's book tables and their cells lie, at a window ``width`` px wide."""
    page = browser_context.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    try:
        page.goto(f"{book_url}{docname}.html", wait_until="load")
        return page.evaluate(_BOXES_JS, CONTENT_SELECTOR)
    finally:
        page.close()


@pytest.mark.parametrize("docname", PAGES_WITH_TABLES)
def test_a_phone_shows_every_number(browser_context, book_url, docname):  # noqa: F811
    got = _boxes(browser_context, book_url, docname, 400)
    assert got["cells"], f"{docname}: no book table found"
    off = [c["text"] for c in got["cells"] if c["right"] > got["viewport"] + 1 or c["left"] < -1 or c["width"] <= 0]
    assert not off, f"{docname}: at 400 px, {len(off)} cells lie outside the screen, e.g. {off[:5]}"


@pytest.mark.parametrize("docname", PAGES_WITH_TABLES)
def test_wide_tables_stay_in_the_page_column(browser_context, book_url, docname):  # noqa: F811
    got = _boxes(browser_context, book_url, docname, 1280)
    wide = [r for r in got["boxes"] if r > got["content_right"] + 1]
    assert not wide, f"{docname}: {len(wide)} table box(es) reach past the page column"
