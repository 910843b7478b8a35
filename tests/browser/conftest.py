"""Debian's Chromium driven by Playwright against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

CHROMIUM = os.environ.get("HOTLINE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield _HarnessBrowser(b)
        b.close()


class _HarnessBrowser:
    """Playwright's ``wait_for_function`` evaluates its predicate with ``eval``, which the
    application's Content-Security-Policy (rightly) forbids: test contexts bypass the CSP unless a
    test asks to run under it (``new_context(bypass_csp=False)``, as tests/browser/test_second_factor.py does)."""

    def __init__(self, browser: object) -> None:
        self._browser = browser

    def new_context(self, **kwargs: object) -> object:
        kwargs.setdefault("bypass_csp", True)
        return self._browser.new_context(**kwargs)  # type: ignore[attr-defined]

    def new_page(self, **kwargs: object) -> object:
        kwargs.setdefault("bypass_csp", True)
        return self._browser.new_page(**kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._browser, name)


@pytest.fixture
def live_env(sqlite_env, monkeypatch):  # type: ignore[no-untyped-def]
    """Plain-HTTP cookies for the loopback server (Secure cookies need TLS)."""
    from hotline.settings import get_settings, reset_settings

    monkeypatch.setenv("HOTLINE_PUBLIC_BASE_URL", "http://127.0.0.1")
    reset_settings()
    return get_settings()


def sign_in(page, base: str, username: str, password: str, next_path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login?next={next_path}")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"].primary')
    page.wait_for_url(f"{base}{next_path}*")
