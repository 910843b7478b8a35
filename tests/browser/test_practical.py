"""Issue #5, item 9: keyboard shortcuts shown in a help list, usable at 1366×768, every asset
served by the hotline itself, pages light enough for a slow provincial connection."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import sign_in
from tests.live.conftest import PASSWORD, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser

# Everything a page needs (HTML, CSS, scripts, fragments) in bytes, uncompressed; the record page is the heaviest.
PAGE_BUDGET = 120_000


def _watch(page, base: str) -> dict[str, list]:
    seen: dict[str, list] = {"foreign": []}
    host = urlsplit(base).netloc
    page.on("request", lambda r: seen["foreign"].append(r.url)
            if urlsplit(r.url).netloc != host and not r.url.startswith(("data:", "blob:")) else None)
    return seen


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"the page scrolls sideways at 1366×768 ({width}px wide)"


def test_live_screen_and_record_page_shortcuts_help_and_weight(browser, live_env):
    make_staff(live_env)
    with LiveServer() as server:
        base = server.url
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = ctx.new_page()
            seen = _watch(page, base)
            sign_in(page, base, "tvv1", PASSWORD, "/live")
            _fits(page)
            help_box = page.locator("#shortcuts-help")
            assert help_box.is_hidden()
            page.keyboard.press("?")
            help_box.wait_for(state="visible")
            listed = help_box.inner_text()
            assert "Alt+R" in listed and "Alt+A" in listed and "Phím tắt" in listed
            page.keyboard.press("Escape")
            help_box.wait_for(state="hidden")
            page.click("#shortcuts-button")
            help_box.wait_for(state="visible")
            page.keyboard.press("Escape")

            # presence by keyboard: Alt+W goes away, Alt+A comes back
            page.keyboard.press("Alt+w")
            page.wait_for_selector('button.presence-away[aria-pressed="true"]')
            page.keyboard.press("Alt+a")
            page.wait_for_selector('button.presence-available[aria-pressed="true"]')

            # a new record by keyboard, then the record form's own shortcuts
            page.keyboard.press("Alt+n")
            page.wait_for_url(re.compile(r".*/records/new$"))
            page.click('button[type="submit"].primary')
            page.wait_for_url(re.compile(r".*/records/\d+$"))
            _fits(page)
            page.keyboard.press("?")
            help_box.wait_for(state="visible")
            listed = help_box.inner_text()
            for key in ("Ctrl+S", "Ctrl+Enter", "Alt+D", "Alt+L", "Alt+G", "Alt+R", "Alt+N"):
                assert key in listed, key
            page.keyboard.press("Escape")
            page.keyboard.press("Alt+g")  # the notes (Alt+N means "new record" on every page)
            assert page.evaluate("document.activeElement.id") == "notes"
            page.keyboard.type("?")  # typing a question mark in a field does not open the help
            assert help_box.is_hidden() and page.locator("#notes").input_value() == "?"
            page.keyboard.press("Alt+d")
            assert page.evaluate("document.activeElement.closest('#directory-panel') !== null")
            page.keyboard.press("Alt+l")
            assert page.evaluate("document.activeElement.closest('#legal-panel') !== null")
            page.keyboard.press("Control+s")
            page.wait_for_function("(document.body.dataset.savedVersion || '0') > '1'")

            assert seen["foreign"] == [], "assets from elsewhere: " + ", ".join(seen["foreign"])
            page.reload()
            page.wait_for_load_state("load")
            weight = page.evaluate("""() => performance.getEntriesByType('navigation').concat(
                performance.getEntriesByType('resource')).map(e => [e.name, e.decodedBodySize, e.encodedBodySize])""")
            total = sum(size for _, size, _ in weight)
            sent = sum(size for _, _, size in weight)
            print(f"record page: {total} bytes in {len(weight)} requests, {sent} bytes over the wire")
            assert 0 < total < PAGE_BUDGET, f"the record page weighs {total} bytes: {weight}"
            # compressed on the wire: the page itself (issue lists, labels) shrinks several times
            document = weight[0]
            assert document[2] * 3 < document[1], f"the record page is not compressed: {document}"
        finally:
            ctx.close()


def test_wallboard_fits_a_laptop_and_loads_nothing_from_elsewhere(browser, live_env):
    make_staff(live_env)
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = ctx.new_page()
            seen = _watch(page, server.url)
            sign_in(page, server.url, "gs1", PASSWORD, "/live/wallboard")
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
            _fits(page)
            assert page.locator("#wb-totals").is_visible()
            assert seen["foreign"] == []
        finally:
            ctx.close()
