"""A supervisor blocks a number on /blocking and lifts it, in the browser."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in
from tests.helpers import create_user
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser
PASSWORD = "Mat-khau-dai-du-2026!"


def test_supervisor_blocks_and_lifts(browser, live_env):
    create_user("gs1", PASSWORD, "supervisor")
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = ctx.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            sign_in(page, server.url, "gs1", PASSWORD, "/blocking")
            assert page.locator("#no-blocks").inner_text() == "Không có số nào bị chặn."
            page.fill('input[name="number"]', "abc")
            page.fill('#block-form input[name="amount"]', "6")
            page.select_option('#block-form select[name="unit"]', "h")
            page.fill('input[name="reason"]', "Gọi quấy rối nhiều lần")
            page.click('#block-form button[type="submit"]')
            assert "không phải là số điện thoại hợp lệ" in page.content()
            page.goto(f"{server.url}/blocking")
            page.fill('input[name="number"]', "0912 345 678")
            page.fill('#block-form input[name="amount"]', "6")
            page.select_option('#block-form select[name="unit"]', "h")
            page.fill('input[name="reason"]', "Gọi quấy rối nhiều lần")
            page.click('#block-form button[type="submit"]')
            page.wait_for_url(f"{server.url}/blocking")
            row = page.locator("#blocks tbody tr")
            assert row.count() == 1 and "0912 *** 678" in row.inner_text()
            row.locator("button", has_text="Gỡ chặn").click()
            page.locator("#no-blocks").wait_for(timeout=10000)
            assert not [e for e in errors if "Content Security Policy" in e]
        finally:
            ctx.close()
