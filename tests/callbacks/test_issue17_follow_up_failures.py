"""Issue #17, bad input, for follow-up calls (the callback items' are in ``test_ami.py`` and
``test_twilio.py``): an ``Originate`` refused by Asterisk (through the AMI listener's real socket) and a
Twilio API error (a real local HTTP server standing in for api.twilio.com) each end the follow-up call
with its reason, shown in Vietnamese on the follow-up's page; the follow-up stays on the list with no
attempt counted, an outcome cannot be recorded for the call that never was, and the next call goes out."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callbacks.models import CallbackAttempt, FollowUp
from hotline.centres import service as centres
from hotline.centres.models import Centre
from hotline.db import session_scope
from hotline.i18n import translator
from hotline.pbx import service as pbx_service
from hotline.pbx import twilio as pbx_twilio
from hotline.settings import reset_settings
from tests.ami.conftest import Rig, wait_for
from tests.callbacks.test_follow_ups import record
from tests.live.conftest import sign_in
from tests.twilio.conftest import LINE
from tests.twilio.test_outbound import TwilioApi

vi = translator("vi")


def _today():
    return datetime.now(timezone.utc).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date()


def _last_attempt(rid: int) -> CallbackAttempt | None:
    with session_scope() as db:
        attempt = db.scalars(select(CallbackAttempt).where(CallbackAttempt.record_id == rid)
                             .order_by(CallbackAttempt.id.desc())).first()
        db.expunge_all()
        return attempt


def _post(client, path: str, token: str, **data: str):
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def _fails_then_stays(client, rid: int, reason: str) -> str:
    """Call; the attempt fails with ``reason``; the follow-up is still to do, nothing counted."""
    token = sign_in(client, "tvv1")
    assert _post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 303
    attempt = wait_for(lambda: (a := _last_attempt(rid)) is not None and a.status == "failed" and a,
                       timeout=40, what="the failed follow-up call")
    assert (attempt.outcome, attempt.reason) == ("failed", reason)
    page = client.get(f"/callbacks/follow-ups/{rid}")
    assert 'id="last-failed"' in page.text and vi(reason) in page.text
    assert 'id="call-button" class="primary">' in page.text  # may be called again at once (not an attempt)
    listed = client.get("/callbacks/follow-ups")
    assert f'data-record="{rid}"' in listed.text and vi("The call could not be placed") in listed.text
    with session_scope() as db:
        fu = db.scalar(select(FollowUp).where(FollowUp.record_id == rid))
        assert (fu.attempts, fu.last_outcome, fu.done_at) == (0, "failed", None)
    refused = _post(client, f"/callbacks/follow-ups/{rid}/outcome", token, outcome="no_answer")
    assert refused.status_code == 409 and vi(reason) in refused.text
    return token


@pytest.fixture
def hours(monkeypatch):
    monkeypatch.setenv("HOTLINE_CALLBACK_HOURS", "00:00-24:00")  # whatever the hour the suite runs at
    reset_settings()


def test_an_originate_refused_by_asterisk_ends_the_follow_up_call_with_its_reason(client, staff, rig: Rig, hours):
    with session_scope() as db:
        centres.add_line(db, centre=db.get(Centre, staff.centre_id), provider="asterisk", kind="number",
                         identifier="+842873001111")
    server = rig.server()
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    rid = record(staff, due=_today())
    server.originate_refusal = "Permission denied"
    token = _fails_then_stays(client, rid, pbx_service.REFUSED_BY_PBX)
    server.originate_refusal = None  # the PBX takes the next one
    assert _post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 303
    wait_for(lambda: (a := _last_attempt(rid)) is not None and a.status == "placed", what="the placed call")
    [_, sent] = [a for a in list(server.actions) if a.get("Action") == "Originate"]
    assert sent["Channel"] == "PJSIP/tvv1" and sent["Exten"] == "0912345678" and sent["CallerID"] == "02873001111"
    assert f"HOTLINE_CALLBACK=fu:{rid}" in sent["Variable"]


@pytest.mark.parametrize(("mode", "reason"), [("refused", pbx_twilio.API_REFUSED), ("down", pbx_twilio.API_FAILED)])
def test_a_twilio_api_error_ends_the_follow_up_call_with_its_reason(client, staff, monkeypatch, hours, mode, reason):
    from tests.twilio.conftest import ACCOUNT_SID

    api = TwilioApi()
    try:
        monkeypatch.setenv("HOTLINE_TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        monkeypatch.setenv("HOTLINE_TWILIO_API_BASE_URL", api.url)
        reset_settings()
        with session_scope() as db:
            centre = db.get(Centre, staff.centre_id)
            centres.add_line(db, centre=centre, provider="twilio", kind="number", identifier=LINE)
            centres.map_agent(db, centre=centre, provider="twilio", identity="client:tvv1", user_id=staff.ids["tvv1"])
        rid = record(staff, due=_today())
        api.mode = mode
        token = _fails_then_stays(client, rid, reason)
        api.mode = "ok"  # Twilio takes the next one, counsellor first
        assert _post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 303
        wait_for(lambda: (a := _last_attempt(rid)) is not None and a.status == "placed", timeout=40,
                 what="the placed call")
        assert [r["form"]["To"] for r in api.requests] == [["client:tvv1"], ["client:tvv1"]]
        assert api.requests[-1]["form"]["StatusCallback"][0].endswith(f"?callback=fu%3A{rid}")
    finally:
        api.stop()
