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
        yield b
        b.close()


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
