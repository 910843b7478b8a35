"""A counsellor calls back a missed caller, in Chromium over a real server and the AMI simulator's socket:
the strip on the live screen shows the missed call, /callbacks lists it, the counsellor claims it, reads
the discreet script, presses "Gọi lại" (the simulator receives the Originate and answers it), records
"reached", and the item leaves the list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hotline.centres import service as centres
from hotline.centres.models import Centre
from hotline.db import session_scope
from hotline.settings import reset_settings
from tests.ami.conftest import Rig, wait_for
from tests.browser.conftest import sign_in
from tests.callbacks.conftest import missed
from tests.live.conftest import PASSWORD, make_staff

pytestmark = pytest.mark.browser


def test_counsellor_calls_back_a_missed_caller(browser, live_env, monkeypatch):
    from callbacks import service

    monkeypatch.setenv("HOTLINE_CALLBACK_HOURS", "00:00-24:00")  # whatever the hour the suite runs at
    reset_settings()
    staff = make_staff(live_env)
    with session_scope() as db:
        centres.add_line(db, centre=db.get(Centre, staff.centre_id), provider="asterisk", kind="number",
                         identifier="+842873001111")
    missed("0912345678", datetime.now(timezone.utc) - timedelta(minutes=12))
    with session_scope() as db:
        service.build(db)
    rig = Rig()
    pbx = rig.server()
    listener = rig.listener(pbx)
    try:
        wait_for(lambda: listener.stats.resyncs >= 1, what="the AMI listener")
        from tests.live.sse_helpers import LiveServer

        with LiveServer() as server:
            base = server.url
            ctx = browser.new_context(viewport={"width": 1366, "height": 768})
            try:
                page = ctx.new_page()
                sign_in(page, base, "tvv1", PASSWORD, "/live")
                strip = page.locator("#callback-strip")
                strip.wait_for()
                assert "0912 *** 678" in strip.inner_text() and page.locator("#callback-strip-count").inner_text() == "1"
                strip.locator("h2 a[href='/callbacks']").click()
                page.wait_for_url(f"{base}/callbacks")
                row = page.locator("#callbacks tbody tr")
                assert row.count() == 1 and "0912 *** 678" in row.inner_text()
                row.get_by_role("button", name="Nhận gọi lại").click()
                page.wait_for_url(f"{base}/callbacks/*")
                script = page.locator("#discreet-script")
                assert "Đừng nêu tên đường dây" in script.inner_text()
                page.locator("#call-button").click()
                # the simulator answers the Originate; the page sees the call placed and offers the outcomes
                page.locator('#attempt-state[data-status="placed"]').wait_for(timeout=15000)
                [sent] = [a for a in list(pbx.actions) if a.get("Action") == "Originate"]
                assert sent["Channel"] == "PJSIP/tvv1" and sent["Exten"] == "0912345678"
                assert "Cuộc gọi đã được nối" in page.locator("#attempt-state").inner_text()
                page.get_by_role("button", name="Đã liên lạc được").click()
                page.wait_for_url(f"{base}/callbacks")
                page.locator("#no-callbacks").wait_for()
                page.goto(f"{base}/live")
                assert page.locator("#callback-strip-count").inner_text() == "0"
                assert page.evaluate("document.documentElement.scrollWidth") <= 1366
            finally:
                ctx.close()
    finally:
        rig.close()
