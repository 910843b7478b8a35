"""The supervisor's first day in Chromium: wallboard → today's provisional daily log (XLSX marked
provisional) → the next day, with the server's clock frozen and moved past the centre's midnight
→ build → sign-off → XLSX and the printable page → the periodic report for the month. Run at
1366×768 and at 390×844; the screenshots go to docs/screenshots/."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from freezegun import freeze_time
from openpyxl import load_workbook

from tests.browser.conftest import sign_in
from tests.live.conftest import PASSWORD, make_staff
from tests.live.sse_helpers import LiveServer

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "mobile": {"width": 390, "height": 844}}
DAY = "2026-11-23"
URL = f"/daily-log/default/{DAY}"


def _the_day(live_env):
    from hotline.centres.models import Centre
    from hotline.db import session_scope
    from tests.daily_log.conftest import add_call

    staff = make_staff(live_env)
    with session_scope() as db:
        db.get(Centre, staff.centre_id).created_at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for hour in (2, 5, 9):  # 09:00, 12:00 and 16:00 in Hồ Chí Minh City
        add_call(staff.centre_id, datetime(2026, 11, 23, hour, tzinfo=timezone.utc),
                 counsellor_id=staff.ids["tvv1"], record={"issues": ("dv.physical",)})
    add_call(staff.centre_id, datetime(2026, 11, 23, 10, tzinfo=timezone.utc), status="abandoned", wait=50, talk=None)


def _xlsx(page, selector: str):
    with page.expect_download() as info:
        page.click(selector)
    return load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()))


@pytest.mark.parametrize("size", ["desktop", "mobile"])
def test_supervisor_first_day(browser, live_env, size):
    _the_day(live_env)
    suffix = "" if size == "desktop" else "-mobile"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with LiveServer() as server:
        httpx.get(server.url + "/login")  # every router is built before the clock is frozen
        with freeze_time("2026-11-23 16:30:00", tick=True, real_asyncio=True) as clock:  # 23:30 local
            ctx = browser.new_context(viewport=VIEWPORTS[size], locale="vi-VN", accept_downloads=True)
            page = ctx.new_page()
            sign_in(page, server.url, "gs1", PASSWORD, "/live/wallboard")
            assert page.locator("#wb-service [data-metric=abandoned_rate]").inner_text() == "25 %"
            assert page.locator('#wb-warnings [data-warning="abandoned"]').is_visible()

            page.click("#wb-daily-log")
            page.wait_for_url(f"{server.url}{URL}")
            assert page.locator("#dl-provisional").is_visible()
            assert page.locator(".dl-state").get_attribute("data-state") == "provisional"
            assert page.locator("#dl-build").count() == 0 and page.locator("#dl-sign-off").count() == 0
            wb = _xlsx(page, f'a[href="{URL}/export.xlsx"]')
            assert str(wb.worksheets[0]["A2"].value).startswith("TẠM TÍNH")
            page.screenshot(path=str(SHOTS / f"daily-log-provisional{suffix}.png"), full_page=True)

            clock.move_to("2026-11-23 17:05:00")  # 00:05 on the 24th at the centre: the 23rd has ended
            page.reload()
            assert page.locator("#dl-provisional").count() == 0
            page.click("#dl-build")
            page.wait_for_url(f"{server.url}{URL}?done=built")
            assert page.locator(".dl-state").first.get_attribute("data-state") == "built"
            page.click("#dl-sign-off")
            page.wait_for_url(f"{server.url}{URL}?done=signed")
            assert page.locator(".dl-state").first.get_attribute("data-state") == "signed_off"
            page.screenshot(path=str(SHOTS / f"daily-log{suffix}.png"), full_page=True)

            wb = _xlsx(page, f'a[href="{URL}/export.xlsx"]')
            header = [str(c.value or "") for c in wb.worksheets[0]["A"][:4]]
            assert not any(h.startswith(("TẠM TÍNH", "CHƯA")) for h in header), header
            page.click(f'a[href="{URL}/print"]')
            page.wait_for_url(f"{server.url}{URL}/print")
            assert page.locator("#dl-provisional").count() == 0 and page.locator("#dl-unsigned").count() == 0
            assert "gs1".upper() in page.content() or "GS1" in page.content()

            # the periodic report for the month so far, from the daily log's list of days
            page.goto(f"{server.url}/daily-log")
            page.click('main a[href^="/reports"]')
            page.wait_for_url(f"{server.url}/reports*")
            page.fill('#report-form input[name="from"]', "01/11/2026")
            page.fill('#report-form input[name="to"]', "23/11/2026")
            page.click('#report-form button[type="submit"]')
            page.locator("#report").wait_for()
            totals = page.locator("#report-totals").inner_text()
            assert re.search(r"Cuộc gọi đến\s+4\b", totals), totals
            assert page.locator("#report svg").count() >= 3  # the charts, drawn by the server
            fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert fits, "the report is wider than the window"
            page.evaluate("""() => {  // the report's top just below the (sticky on a wide screen) top bar
                const bar = getComputedStyle(document.querySelector('.topbar')).position === 'sticky'
                    ? document.querySelector('.topbar').offsetHeight : 0;
                window.scrollTo(0, document.getElementById('report').getBoundingClientRect().top + window.scrollY - bar - 8);
            }""")
            page.screenshot(path=str(SHOTS / f"report{suffix}.png"))
            ctx.close()
