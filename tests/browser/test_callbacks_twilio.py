"""#17 on Twilio, in Chromium over a real server: the counsellor presses "Gọi lại", Twilio's REST API (a local
stand-in) accepts the call and the page says it is connected; then Twilio's signed status callback says the
counsellor's phone did not answer.  The page, still watching, reloads by itself: the reason in Vietnamese,
the item back on the list, no attempt used up."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from hotline.centres import service as centres
from hotline.centres.models import Centre
from hotline.db import session_scope
from hotline.i18n import translator
from hotline.pbx import service as pbx
from hotline.settings import reset_settings
from tests.browser.conftest import sign_in
from tests.callbacks.conftest import missed
from tests.live.conftest import PASSWORD, make_staff
from tests.twilio.conftest import ACCOUNT_SID, LINE, sign
from tests.twilio.test_outbound import CALL_SID, TwilioApi

pytestmark = pytest.mark.browser


def test_an_unanswered_twilio_callback_comes_back_to_the_page_with_its_reason(browser, live_env, monkeypatch):
    from callbacks import service
    from callbacks.models import CallbackAttempt, CallbackItem

    api = TwilioApi()
    monkeypatch.setenv("HOTLINE_TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("HOTLINE_TWILIO_API_BASE_URL", api.url)
    monkeypatch.setenv("HOTLINE_CALLBACK_HOURS", "00:00-24:00")
    reset_settings()
    staff = make_staff(live_env)
    with session_scope() as db:
        centre = db.get(Centre, staff.centre_id)
        centres.add_line(db, centre=centre, provider="twilio", kind="number", identifier=LINE)
        centres.map_agent(db, centre=centre, provider="twilio", identity="client:tvv1", user_id=staff.ids["tvv1"])
    missed("0912345678", datetime.now(timezone.utc) - timedelta(minutes=12))
    with session_scope() as db:
        service.build(db)
    from tests.live.sse_helpers import LiveServer

    try:
        with LiveServer() as server:
            base = server.url
            ctx = browser.new_context(viewport={"width": 1366, "height": 768})
            try:
                page = ctx.new_page()
                sign_in(page, base, "tvv1", PASSWORD, "/callbacks")
                page.locator("#callbacks tbody tr").get_by_role("button", name="Nhận gọi lại").click()
                page.wait_for_url(f"{base}/callbacks/*")
                page.locator("#call-button").click()
                page.locator('#attempt-state[data-status="placed"]').wait_for(timeout=20000)
                assert "Cuộc gọi đã được nối" in page.locator("#attempt-state").inner_text()
                with session_scope() as db:
                    attempt = db.scalars(select(CallbackAttempt)).one()
                    command_id, ref = attempt.command_id, attempt.ref
                path = f"/webhooks/twilio/outbound/{command_id}/status?{urlencode({'callback': ref})}"
                form = {"AccountSid": ACCOUNT_SID, "CallSid": CALL_SID, "From": LINE, "To": "client:tvv1",
                        "Direction": "outbound-api", "ApiVersion": "2010-04-01", "CallStatus": "no-answer"}
                r = httpx.post(base + path, data=form, headers={"X-Twilio-Signature": sign(path, form)})
                assert r.status_code == 200, r.text
                # the page polls while the call is placed and reloads when it fails
                failed = page.locator("#last-failed")
                failed.wait_for(timeout=15000)
                assert translator("vi")(pbx.NO_ANSWER) in failed.inner_text()
                assert page.locator("#attempt-state").count() == 0
                page.goto(f"{base}/callbacks")
                row = page.locator("#callbacks tbody tr")
                assert row.count() == 1 and translator("vi")(pbx.NO_ANSWER) in row.inner_text()
                with session_scope() as db:
                    item = db.scalars(select(CallbackItem)).one()
                    assert (item.status, item.attempts) == ("open", 0)
            finally:
                ctx.close()
    finally:
        api.stop()
