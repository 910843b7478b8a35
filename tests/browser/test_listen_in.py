"""A supervisor clicks "Nghe" on a call in progress on the wallboard: their own phone is rung into
``ChanSpy`` on that counsellor's channel (the AMI simulator receives the ``Originate`` on its socket);
a counsellor's wallboard is refused and no call is placed."""

from __future__ import annotations

import pytest

from tests.ami.conftest import Rig, wait_for
from tests.browser.conftest import sign_in
from tests.live.conftest import PASSWORD, make_staff
from tests.live.sse_helpers import LiveServer
from tests.live.test_listen_in import SPIED, map_phone, talking_call

pytestmark = pytest.mark.browser


def test_supervisor_listens_in_from_the_wallboard(browser, live_env):
    make_staff(live_env)
    map_phone("gs1", "PJSIP/gs1")
    rig = Rig()
    pbx = rig.server()
    listener = rig.listener(pbx)
    try:
        wait_for(lambda: listener.stats.resyncs >= 1, what="the AMI listener")
        with LiveServer() as server:
            base = server.url
            ctx = browser.new_context(viewport={"width": 1366, "height": 768})
            try:
                board = ctx.new_page()
                sign_in(board, base, "gs1", PASSWORD, "/live/wallboard")
                board.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
                cid = talking_call()
                row = board.locator(f'#wb-progress tr[data-call-id="{cid}"]')
                row.wait_for(timeout=10000)
                row.get_by_role("button", name="Nghe", exact=True).click()
                board.wait_for_function("document.getElementById('wb-spy-status').textContent.length > 0")
                assert "đổ chuông" in board.locator("#wb-spy-status").inner_text()
                sent = wait_for(lambda: [a for a in list(pbx.actions) if a.get("Action") == "Originate"],
                                what="the Originate")
                assert [(o["Channel"], o["Application"], o["Data"]) for o in sent] == [
                    ("PJSIP/gs1", "ChanSpy", f"{SPIED},qESu")]

                # a counsellor has no wallboard and cannot ring anyone into a call
                other = browser.new_context()
                try:
                    page = other.new_page()
                    sign_in(page, base, "tvv1", PASSWORD, "/live")
                    r = page.goto(f"{base}/live/wallboard")
                    assert r is not None and r.status == 403
                    status = page.evaluate(
                        """async (id) => (await fetch('/live/calls/' + id + '/listen', {method: 'POST',
                             headers: {'Content-Type': 'application/json', 'X-CSRF-Token':
                               document.querySelector('meta[name="csrf-token"]').content},
                             body: JSON.stringify({mode: 'barge'})})).status""", cid)
                    assert status == 403
                finally:
                    other.close()
                assert len([a for a in pbx.actions if a.get("Action") == "Originate"]) == 1
            finally:
                ctx.close()
    finally:
        rig.close()
