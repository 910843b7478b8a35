"""The directory in Debian's Chromium: an administrator edits a service offered at several places,
and a counsellor searches "open at" a given time and is told what is not there before the fallbacks."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import sign_in
from tests.directory.test_partner_package import PARTNER, _service_id
from tests.helpers import create_user
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser


def _import() -> None:
    from hotline.cli import main

    assert main(["--log-format", "console", "directory", "import", str(PARTNER)]) == 0


def test_an_administrator_edits_a_service_with_several_locations(browser, live_env):
    _import()
    create_user("admin", "a-long-password-2", "administrator")
    sid = _service_id("Trung tâm Công tác xã hội Quảng Ngãi")
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = ctx.new_page()
            sign_in(page, server.url, "admin", "a-long-password-2", f"/directory/admin/{sid}/edit")
            blocks = page.locator("fieldset.dir-location")
            assert blocks.count() == 2  # the second place, and a blank one to add another
            second = blocks.nth(0)
            assert second.locator('input[name="loc-0-hours"]').input_value() == "Sa,Su 08:00-12:00"
            second.locator('input[name="loc-0-phones"]').fill("0912 777 888")
            new = blocks.nth(1)
            new.locator('input[name="loc-1-name"]').fill("Điểm tư vấn Gia Lai")
            new.locator('input[name="loc-1-province"]').fill("Gia Lai")
            new.locator('input[name="loc-1-address"]').fill("12 Trần Hưng Đạo")
            new.locator('input[name="loc-1-phones"]').fill("0912 777 999")
            new.locator('input[name="loc-1-hours"]').fill("T7 08:00-11:00")
            page.click('form.stacked button[type="submit"]')
            page.wait_for_selector("p.notice")
            assert "Đã lưu" in page.locator("p.notice").inner_text()
            page.reload()
            blocks = page.locator("fieldset.dir-location")
            assert blocks.count() == 3
            assert blocks.nth(0).locator('input[name="loc-0-phones"]').input_value() == "0912 777 888"
            assert blocks.nth(1).locator('input[name="loc-1-name"]').input_value() == "Điểm tư vấn Gia Lai"
            assert blocks.nth(1).locator('input[name="loc-1-hours"]').input_value() == "Sa 08:00-11:00"
            # A typo in one place's hours: refused, the place named, what was typed kept.
            blocks.nth(1).locator('input[name="loc-1-hours"]').fill("T7 8h-11h")
            page.click('form.stacked button[type="submit"]')
            page.wait_for_selector("ul.form-errors")
            assert "T7 8h-11h" in page.locator("ul.form-errors").inner_text()
            assert page.locator('input[name="loc-1-hours"]').input_value() == "T7 8h-11h"
        finally:
            ctx.close()


def test_a_counsellor_searches_open_at_and_is_told_what_is_missing(browser, live_env):
    _import()
    create_user("lan", "a-long-password-1", "counsellor")
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = ctx.new_page()
            sign_in(page, server.url, "lan", "a-long-password-1", "/directory")
            page.fill('input[name="q"]', "trợ giúp pháp lý đà nẵng")
            page.fill('input[name="open_at"]', "2026-12-08 10:00")
            page.click('form.dir-search button[type="submit"]')
            page.wait_for_selector(".dir-notice")
            notices = page.locator(".dir-notice").all_inner_texts()
            assert notices[0] == "Không có dịch vụ trợ giúp pháp lý ở Thành phố Đà Nẵng."
            assert "Mở cửa lúc 10:00 08/12/2026." in page.locator(".dir-interp").inner_text()
            items = page.locator("li.dir-item")  # only what is open then
            assert items.count() >= 2
            first = items.nth(0).inner_text()
            assert re.search(r"Gợi ý thay thế: Trợ giúp pháp lý · ~\d+ km", first)
            assert "legal_aid" not in page.locator("#directory-results").inner_text()
            texts = items.all_inner_texts()
            hue = next(t for t in texts if "số 16, Huế" in t)
            assert "Lúc đó mở cửa" in hue  # Tuesday 10:00, weekday hours
            assert not any("số 27, Gia Lai" in t for t in texts)  # fortnightly afternoons only
            assert all("Lúc đó mở cửa" in t for t in texts)
        finally:
            ctx.close()
