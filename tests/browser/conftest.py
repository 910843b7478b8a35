"""Debian's Chromium driven by Playwright against a real uvicorn server on 127.0.0.1.

The `browser` and `live_env` fixtures live in tests/conftest.py: one Playwright per test process,
whichever package's browser tests run in it (a second sync Playwright in the same process fails)."""

from __future__ import annotations


def sign_in(page, base: str, username: str, password: str, next_path: str) -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"].primary')
    page.wait_for_url(f"{base}{next_path}*")


def assert_fits(page) -> None:
    """Nothing on the page is wider than the window (no sideways scrolling on a phone); a part that
    scrolls sideways on its own (the top bar's links, a wide table's box) is fine."""
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => {
        if (e.getBoundingClientRect().right <= window.innerWidth + 1) return false;
        for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
          if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX)) return false;
        }
        return true;
      }).slice(0, 6).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide: {wide}"
