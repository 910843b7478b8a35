"""The callback rules of #17 in Chromium over a real server: a supervisor sets the centre's callback hours
and the counsellor's list says "not before" (the call button disabled with the reason); an "unsafe"
outcome marks the number, which the counsellor then sees on the pop of the caller's next call and on its
record, where a supervisor lifts the mark; a follow-up whose attempts are used up stays on the list and
its assignee chooses to try again."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from callbacks import service
from callbacks.models import FollowUp
from hotline.calls.models import CallRecord
from hotline.centres import service as centres
from hotline.centres.models import Centre
from hotline.db import session_scope
from hotline.settings import reset_settings
from tests.browser.conftest import assert_fits, sign_in
from tests.callbacks.conftest import missed
from tests.live.conftest import PASSWORD, call_id, feed_call, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def _setup(live_env, monkeypatch, hours: str | None = None):
    if hours:
        monkeypatch.setenv("HOTLINE_CALLBACK_HOURS", hours)
        reset_settings()
    staff = make_staff(live_env)
    with session_scope() as db:
        centres.add_line(db, centre=db.get(Centre, staff.centre_id), provider="asterisk", kind="number",
                         identifier="+842873001111")
    return staff


def _missed_and_built(caller: str = "0912345678") -> None:
    missed(caller, datetime.now(timezone.utc) - timedelta(minutes=12))
    with session_scope() as db:
        service.build(db)


def test_a_supervisor_sets_the_centres_hours_and_the_counsellor_sees_not_before(browser, live_env, monkeypatch):
    _setup(live_env, monkeypatch)
    _missed_and_built()
    now = datetime.now(HANOI)
    start = (now + timedelta(hours=2)).replace(minute=0)  # a window that does not hold the present moment
    window = f"{start:%H:%M}-{start + timedelta(hours=1):%H:%M}"
    with LiveServer() as server:
        sup_ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        ctx = browser.new_context(viewport={"width": 390, "height": 844})  # a counsellor's phone
        try:
            sup = sup_ctx.new_page()
            sign_in(sup, server.url, "gs1", PASSWORD, "/callbacks")
            sup.get_by_role("link", name="Cài đặt gọi lại").click()
            sup.wait_for_url(f"{server.url}/callbacks/settings")
            assert "mặc định: 07:30-21:00" in sup.locator("#hours-in-force").inner_text()
            sup.fill("#hours", "9h-17h")
            sup.get_by_role("button", name="Lưu").click()
            assert "GG:PP-GG:PP" in sup.locator("#hours-error").inner_text()
            sup.fill("#hours", window)
            sup.get_by_role("button", name="Lưu").click()
            sup.wait_for_url(re.compile(r".*/callbacks/settings\?centre=\d+$"))
            assert sup.locator("#hours-in-force").inner_text() == f"Khung giờ của trung tâm này: {window}."

            page = ctx.new_page()
            sign_in(page, server.url, "tvv1", PASSWORD, "/callbacks")
            row = page.locator("#callbacks tbody tr")
            assert f"Không trước {start:%H:%M}" in row.locator(".not-before").inner_text()
            assert "Chỉ gọi lại trong khung giờ" in page.locator("#outside-hours").inner_text()
            assert_fits(page)
            row.get_by_role("button", name="Nhận gọi lại").click()
            page.wait_for_url(f"{server.url}/callbacks/*")
            assert page.locator("#call-button").is_disabled()
            assert f"cuộc gọi này có thể thực hiện từ {start:%H:%M}" in page.locator("#why-not").inner_text()

            # the supervisor opens the whole day: the counsellor may call at once
            sup.fill("#hours", "00:00-24:00")
            sup.get_by_role("button", name="Lưu").click()
            sup.wait_for_url(re.compile(r".*/callbacks/settings\?centre=\d+$"))
            page.reload()
            assert page.locator("#call-button").is_enabled() and page.locator("#why-not").count() == 0
        finally:
            ctx.close()
            sup_ctx.close()


def test_an_unsafe_outcome_is_shown_on_the_next_pop_and_a_supervisor_lifts_it(browser, live_env, monkeypatch):
    _setup(live_env, monkeypatch, hours="00:00-24:00")  # whatever the hour the suite runs at
    _missed_and_built()
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        sup_ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = ctx.new_page()
            sign_in(page, server.url, "tvv1", PASSWORD, "/callbacks")
            page.locator("#callbacks tbody tr").get_by_role("button", name="Nhận gọi lại").click()
            page.wait_for_url(f"{server.url}/callbacks/*")
            page.locator("#call-button").click()
            page.get_by_role("button", name="Không an toàn: người khác nghe máy").click()
            page.wait_for_url(f"{server.url}/callbacks")
            page.locator("#no-callbacks").wait_for()

            # the same caller rings again and tvv1 answers: the pop says not to call back
            page.goto(f"{server.url}/live")
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
            again = call_id(feed_call(agent="PJSIP/tvv1", caller="+84912345678", answered=True))
            card = page.locator(f'#call-card[data-call-id="{again}"]')
            card.wait_for(timeout=10000)
            flag = card.locator('#cc-flags [data-flag="do_not_call_back"]')
            flag.wait_for(timeout=5000)
            assert flag.inner_text() == "Không gọi lại (không an toàn)"
            card.locator("#cc-history summary").click()
            mark = card.locator('.pop-history [data-mark="do_not_call_back"]')
            mark.wait_for(timeout=5000)
            assert "người khác đã nghe máy khi gọi lại số này" in mark.inner_text()
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
            page.keyboard.press("Alt+r")  # the record of this call
            page.wait_for_url(re.compile(r".*/records/\d+$"))
            record_url = page.url
            panel = page.locator("#do-not-call-panel")
            assert "Không gọi lại (không an toàn)" in panel.inner_text() and panel.locator("form").count() == 0

            sup = sup_ctx.new_page()
            sign_in(sup, server.url, "gs1", PASSWORD, record_url.removeprefix(server.url))
            sup_panel = sup.locator("#do-not-call-panel")
            sup_panel.locator('input[name="reason"]').fill("Người gọi xin được gọi lại vào số này")
            sup_panel.get_by_role("button", name="Gỡ đánh dấu").click()
            sup.wait_for_url(record_url)
            assert sup.locator("#do-not-call-panel").count() == 0
            page.reload()
            assert page.locator("#do-not-call-panel").count() == 0
            assert page.locator('#cc-flags [data-flag="do_not_call_back"]').count() == 0
        finally:
            ctx.close()
            sup_ctx.close()


def test_a_follow_up_with_its_attempts_used_up_waits_for_its_assignee(browser, live_env, monkeypatch):
    staff = _setup(live_env, monkeypatch, hours="00:00-24:00")
    today = datetime.now(HANOI).date()
    earlier = call_id(feed_call(agent="PJSIP/tvv1", caller="0912345678", answered=True, ended=True,
                                at=datetime.now(timezone.utc) - timedelta(days=3)))
    with session_scope() as db:
        record = CallRecord(call_id=earlier, centre_id=staff.centre_id, counsellor_id=staff.ids["tvv1"],
                            state="completed", follow_up_needed=True, follow_up_date=today, consent_callback=True,
                            callback_safe_time="sau 18 giờ")
        db.add(record)
        db.flush()
        # three tries today, none answered (as the follow-up's outcomes left it)
        db.add(FollowUp(record_id=record.id, centre_id=staff.centre_id, assignee_id=staff.ids["tvv1"], due=today,
                        attempts=3, last_outcome="no_answer"))
        record_id = record.id
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 390, "height": 844})
        try:
            page = ctx.new_page()
            sign_in(page, server.url, "tvv1", PASSWORD, "/callbacks/follow-ups")
            row = page.locator(f'tr[data-record="{record_id}"]')
            assert "Đã hết số lần gọi: người được giao quyết định" in row.inner_text()
            row.get_by_role("link", name="Mở").click()
            page.wait_for_url(f"{server.url}/callbacks/follow-ups/{record_id}")
            assert page.locator("#call-button").is_disabled()
            assert "Đã gọi 3 lần mà chưa liên lạc được" in page.locator("#why-not").inner_text()
            assert_fits(page)
            page.get_by_role("button", name="Gọi thêm (3 lần nữa)").click()
            page.wait_for_url(f"{server.url}/callbacks/follow-ups/{record_id}")
            assert page.locator("#retry-form").count() == 0 and page.locator("#call-button").is_enabled()
            page.locator("#call-button").click()
            page.locator("#attempt-state").wait_for()
            assert page.locator("#outcome-form").count() == 1
        finally:
            ctx.close()
