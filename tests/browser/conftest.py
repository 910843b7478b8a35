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
