"""The strip of other incoming calls: compact, dismissable, abandoned calls leave it, and Alt+R
opens the counsellor's own call's record, not the newest pop."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from tests.browser.conftest import sign_in
from tests.live.conftest import PASSWORD, call_id, feed_call, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser


def _abandon(key: str) -> None:
    from hotline.ingest.events import CallEvent, Kind, RawIn
    from hotline.ingest.spool import submit

    now = datetime.now(timezone.utc)
    submit([RawIn("asterisk", f"{key}-gone", now, "gone", event_type="test",
                  events=[CallEvent(Kind.ABANDONED, "asterisk", key, now, queue="hotline", wait_seconds=20)])])


def test_strip_dismiss_abandon_and_alt_r_opens_your_own_call(browser, live_env):
    make_staff(live_env)
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = ctx.new_page()
            sign_in(page, server.url, "tvv1", PASSWORD, "/live")
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
            mine = call_id(feed_call(agent="PJSIP/tvv1", caller="0912345678", answered=True))
            page.locator(f'#call-card[data-call-id="{mine}"]').wait_for(timeout=10000)
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
            form_top = page.locator("#record-form").bounding_box()["y"]
            # two more calls ring for this counsellor: compact pops in the strip, the page does not move
            k1 = feed_call(agent="PJSIP/tvv1", caller="0987000111")
            k2 = feed_call(agent="PJSIP/tvv1", caller="0987000222")
            first, second = call_id(k1), call_id(k2)
            page.locator(f'.pop[data-call-id="{second}"]').wait_for(timeout=5000)
            page.locator(f'.pop[data-call-id="{first}"]').wait_for(timeout=5000)
            assert page.locator("#record-form").bounding_box()["y"] == form_top
            # the first caller hangs up while waiting: it leaves the strip
            _abandon(k1)
            page.locator(f'.pop[data-call-id="{first}"]').wait_for(state="detached", timeout=5000)
            # dismiss the other by its button
            page.locator(f'.pop[data-call-id="{second}"] .pop-dismiss').click()
            assert page.locator(f'.pop[data-call-id="{second}"]').count() == 0
            # one more rings; Alt+R still opens the record of the call being worked on
            third = call_id(feed_call(agent="PJSIP/tvv1", caller="0987000333"))
            page.locator(f'.pop[data-call-id="{third}"]').wait_for(timeout=5000)
            page.keyboard.press("Alt+r")
            page.wait_for_url(re.compile(r".*/records/\d+$"))
            assert page.locator("#call-card").get_attribute("data-call-id") == str(mine)
            # Alt+X dismisses the newest pop of the strip on the record page too
            fourth = call_id(feed_call(agent="PJSIP/tvv1", caller="0987000444"))
            page.locator(f'.pop[data-call-id="{fourth}"]').wait_for(timeout=5000)
            page.keyboard.press("Alt+x")
            assert page.locator(f'.pop[data-call-id="{fourth}"]').count() == 0
        finally:
            ctx.close()
