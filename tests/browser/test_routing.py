"""#17 points 4, 5: an administrator sets a line's hours and overflow centre on the Lines page; a
caller of that line overflows to the other centre, whose supervisor sees the call on the wallboard
(marked as overflow) and its record, recorded by the other centre's counsellor who answered."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import select

from hotline.calls.models import Call, CallRecord
from hotline.centres.models import Line
from hotline.centres.service import add_line, create_centre, ensure_default_centre, get_centre, map_agent
from hotline.db import session_scope
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.spool import submit
from hotline.settings import get_settings
from tests.browser.conftest import sign_in
from tests.helpers import create_user
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser
PASSWORD = "Mat-khau-dai-du-2026!"


def _overflowed_call(key: str) -> None:
    """What the AMI listener hands the ingestor for the `overflow` capture: the line's queue times
    out, the caller joins the overflow centre's queue and its counsellor answers."""
    t = datetime.now(timezone.utc) - timedelta(seconds=20)
    events = [CallEvent(Kind.STARTED, "asterisk", key, t, channel=key, caller="0906666777", dialed="18001234"),
              CallEvent(Kind.QUEUED, "asterisk", key, t + timedelta(seconds=1), queue="hotline"),
              CallEvent(Kind.OFFERED, "asterisk", key, t + timedelta(seconds=1), agent="PJSIP/tvv1"),
              CallEvent(Kind.ABANDONED, "asterisk", key, t + timedelta(seconds=9), reason="left_queue", wait_seconds=8),
              CallEvent(Kind.QUEUE_RESULT, "asterisk", key, t + timedelta(seconds=9), reason="TIMEOUT"),
              CallEvent(Kind.QUEUED, "asterisk", key, t + timedelta(seconds=9), queue="hotline-hcm"),
              CallEvent(Kind.OFFERED, "asterisk", key, t + timedelta(seconds=9), agent="PJSIP/hcm1"),
              CallEvent(Kind.ANSWERED, "asterisk", key, t + timedelta(seconds=11), agent="PJSIP/hcm1", wait_seconds=2)]
    submit([RawIn("asterisk", f"{key}-{i}", t, f"test {key} {i}", event_type="test", events=[e])
            for i, e in enumerate(events)])


def test_admin_sets_overflow_and_the_other_centre_sees_the_call(browser, live_env):
    settings = get_settings()
    with session_scope() as db:
        home = ensure_default_centre(db, code=settings.default_centre_code, name="Trung tâm Quảng Nam",
                                     timezone=settings.default_timezone)
        hcm = create_centre(db, code="hcm", name="Trung tâm TP. Hồ Chí Minh")
        line_id = add_line(db, centre=home, provider="asterisk", kind="queue", identifier="hotline",
                           label="Đường dây Quảng Nam").id
        add_line(db, centre=hcm, provider="asterisk", kind="queue", identifier="hotline-hcm")
    create_user("admin", PASSWORD, "administrator")
    create_user("minh", PASSWORD, "supervisor", centre_code="hcm")
    hoa = create_user("hoa", PASSWORD, "counsellor", centre_code="hcm", display_name="Hoa")
    with session_scope() as db:
        map_agent(db, centre=get_centre(db, "hcm"), provider="asterisk", identity="PJSIP/hcm1", user_id=hoa)
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 900})
        errors: list[str] = []
        try:
            page = ctx.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            sign_in(page, server.url, "admin", PASSWORD, "/admin/lines")
            row = page.locator('#lines tr[data-line="hotline"]')
            assert "Luôn mở cửa" in row.inner_text()
            row.get_by_role("link", name="Cài đặt").click()
            page.wait_for_url(f"{server.url}/admin/lines/{line_id}")
            page.select_option('select[name="overflow_centre"]', "hcm")
            page.fill('input[name="overflow_wait"]', "30")
            page.uncheck('input[name="always_open"]')
            for day in ("MO", "TU", "WE", "TH", "FR"):
                page.fill(f"#hours_{day}", "07:30-11:30, 13:30-17:00")
            page.fill("#hours_SA", "08:00-12:00")
            page.fill('textarea[name="closed_dates"]', "01/01/2027")
            page.check('input[name="closed_message"][value="callback"]')
            page.click('#line-form button[type="submit"]')
            page.wait_for_url(f"{server.url}/admin/lines/{line_id}?saved=1")
            assert page.locator("p.notice").inner_text() == "Đã lưu cài đặt."
            page.goto(f"{server.url}/admin/lines")
            listed = page.locator('#lines tr[data-line="hotline"]').inner_text()
            assert "Trung tâm TP. Hồ Chí Minh" in listed and "07:30-11:30, 13:30-17:00" in listed
            with session_scope() as db:
                line = db.get(Line, line_id)
                assert line.overflow_centre_id == hcm.id and line.hours["SA"] == [["08:00", "12:00"]]
            # the dialplan's lookup now names the overflow queue (when open) or the closed message
            answer = httpx.get(f"{server.url}/api/lines/route", params={"queue": "hotline", "call": "1.1"},
                               headers={"Authorization": f"Bearer {settings.api_token}"}).text
            assert answer in ("route=open&queue=hotline&wait=30&overflow=hotline-hcm",
                              "route=closed&message=hotline/closed&callback=1")
            ctx.clear_cookies()

            # a caller of the line overflows to hcm and hoa answers
            _overflowed_call("overflow-browser-1")
            with session_scope() as db:
                # (the lookup above, when the line was closed, recorded its own out-of-hours call "1.1")
                call = db.scalars(select(Call).where(Call.provider_key == "overflow-browser-1")).one()
                assert (call.centre_id, call.overflow_centre_id, call.counsellor_id) == (home.id, hcm.id, hoa)
            # hoa's live screen opens the call's record (the record is the line's centre's)
            sign_in(page, server.url, "hoa", PASSWORD, "/live")
            with session_scope() as db:
                record = db.scalars(select(CallRecord).where(CallRecord.call_id == call.id)).one()
                assert (record.centre_id, record.overflow_centre_id, record.counsellor_id) == (home.id, hcm.id, hoa)
            ctx.clear_cookies()

            # hcm's supervisor: the wallboard shows it in progress, marked, and the record opens
            sign_in(page, server.url, "minh", PASSWORD, "/live/wallboard")
            talking = page.locator(f'#wb-progress tr[data-call-id="{call.id}"]')
            talking.wait_for(timeout=10000)
            assert talking.get_attribute("data-overflow") == "in"
            assert "chuyển tiếp từ trung tâm khác" in talking.inner_text() and "Hoa" in talking.inner_text()
            page.goto(f"{server.url}/records/{record.id}")
            assert page.locator("h1").count() and page.url.endswith(f"/records/{record.id}")
            assert "0906" in page.content()
            assert not [e for e in errors if "Content Security Policy" in e]
        finally:
            ctx.close()
