"""Click a figure to see it full size (``_css/diffred.js``), in a real browser: the overlay
shows the figure's 200-dpi PNG at its own size, larger than the page shows it, and Escape
closes it."""

from __future__ import annotations

import pytest
from test_book_html import CONTENT_SELECTOR, book_url  # noqa: F401  (book_url: a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.mark.parametrize("width", [1280, 400])
def test_clicking_a_figure_opens_it_full_size(browser_context, book_url, width):  # noqa: F811
    page = browser_context.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    try:
        page.goto(f"{book_url}chapters/02_random_subsets.html", wait_until="load")
        figure = page.locator(f"{CONTENT_SELECTOR} img.diffred-zoomable").first
        figure.scroll_into_view_if_needed()
        shown = figure.bounding_box()["width"]
        figure.click()
        big = page.locator("div.diffred-lightbox img")
        big.wait_for(state="visible")
        page.wait_for_function("() => document.querySelector('div.diffred-lightbox img').complete")
        natural = page.evaluate("() => document.querySelector('div.diffred-lightbox img').naturalWidth")
        src = big.get_attribute("src")
        assert src.endswith(".png") and "/figures/fig-" in src, src
        assert natural > shown, f"the full-size figure ({natural} px) is no larger than the page's ({shown} px)"
        page.keyboard.press("Escape")
        assert page.locator("div.diffred-lightbox").count() == 0
    finally:
        page.close()


def test_every_figure_can_be_enlarged(browser_context, book_url):  # noqa: F811
    page = browser_context.new_page()
    try:
        page.goto(f"{book_url}chapters/13_how_random.html", wait_until="load")
        tools = page.locator("div.diffred-figure-tools").count()
        zoomable = page.locator("img.diffred-zoomable").count()
    finally:
        page.close()
    assert tools and zoomable == tools, f"{zoomable} of {tools} figures can be enlarged"
