"""Caller flags in the browser: ticked on the record form (autosaved like every field), shown on
the record after a reload, and on the pop of the next call from the same number."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import sign_in
from tests.live.conftest import PASSWORD, call_id, feed_call, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser


def test_a_flag_ticked_on_one_call_is_on_the_pop_of_the_next(browser, live_env):
    make_staff(live_env)
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = ctx.new_page()
            sign_in(page, server.url, "tvv1", PASSWORD, "/live")
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
            first = call_id(feed_call(agent="PJSIP/tvv1", caller="0912 111 222", answered=True))
            page.locator(f'#call-card[data-call-id="{first}"]').wait_for(timeout=10000)
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")  # scripts ran
            page.keyboard.press("Alt+r")  # the record of this counsellor's call
            page.wait_for_url(re.compile(r".*/records/\d+$"))
            page.check('input[name="flags"][value="safety_risk"]')
            page.check('input[name="flags"][value="needs_interpreter"]')
            page.wait_for_function("(document.body.dataset.savedVersion || '0') > '1'")
            page.uncheck('input[name="flags"][value="needs_interpreter"]')
            page.wait_for_function("(document.body.dataset.savedVersion || '0') > '2'")
            page.reload()
            assert page.locator('input[name="flags"][value="safety_risk"]').is_checked()
            assert not page.locator('input[name="flags"][value="needs_interpreter"]').is_checked()
            assert page.locator('#record-flags [data-flag="safety_risk"]').inner_text() == \
                "Nguy cơ mất an toàn / nguy hiểm tại nhà"

            page.goto(f"{server.url}/live")
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
            # the next call from the same number, answered: its card carries the caller's flags
            second = call_id(feed_call(agent="PJSIP/tvv1", caller="+84912111222", answered=True))
            pop = page.locator(f'#call-card[data-call-id="{second}"]')
            pop.wait_for(timeout=10000)
            flag = pop.locator('#cc-flags [data-flag="safety_risk"]')
            flag.wait_for(timeout=5000)
            assert flag.inner_text() == "Nguy cơ mất an toàn / nguy hiểm tại nhà"
            assert pop.locator('[data-flag="needs_interpreter"]').count() == 0
        finally:
            ctx.close()
