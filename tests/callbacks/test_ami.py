"""A callback through the AMI listener's real socket (the simulator answers the ``Originate``): the
counsellor's phone first with the hotline number shown and ``HOTLINE_CALLBACK=cb:<item>``; a refused or
failed ``Originate`` ends the attempt with its reason and the item is back on the list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from callbacks import service
from callbacks.models import CallbackAttempt, CallbackItem
from hotline.centres import service as centres
from hotline.centres.models import Centre
from hotline.db import session_scope
from hotline.settings import reset_settings
from tests.ami.conftest import Rig, wait_for
from tests.callbacks.conftest import missed
from tests.live.conftest import sign_in


@pytest.fixture
def ready(staff, rig: Rig, monkeypatch):
    """Any hour is a callback hour here; centre A has a hotline number; a listener is connected."""
    monkeypatch.setenv("HOTLINE_CALLBACK_HOURS", "00:00-24:00")
    reset_settings()
    with session_scope() as db:
        centres.add_line(db, centre=db.get(Centre, staff.centre_id), provider="asterisk", kind="number",
                         identifier="+842873001111")
    server = rig.server()
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    missed("0912345678", datetime.now(timezone.utc) - timedelta(minutes=5))
    with session_scope() as db:
        service.build(db)
        item_id = db.scalar(select(CallbackItem.id))
    return server, item_id


def _attempt(item_id: int) -> CallbackAttempt:
    with session_scope() as db:
        attempt = db.scalars(select(CallbackAttempt).where(CallbackAttempt.item_id == item_id)
                             .order_by(CallbackAttempt.id.desc())).first()
        db.expunge_all()
        return attempt


def _claim_and_call(client, item_id: int) -> None:
    token = sign_in(client, "tvv1")
    assert client.post(f"/callbacks/{item_id}/claim", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.post(f"/callbacks/{item_id}/call", data={"csrf_token": token}, follow_redirects=False).status_code == 303


def test_callback_is_originated_and_placed(client, ready):
    server, item_id = ready
    _claim_and_call(client, item_id)
    attempt = wait_for(lambda: (a := _attempt(item_id)).status == "placed" and a, what="the placed call")
    [sent] = [a for a in list(server.actions) if a.get("Action") == "Originate"]
    assert sent["Channel"] == "PJSIP/tvv1" and sent["Exten"] == "0912345678" and sent["CallerID"] == "02873001111"
    assert f"HOTLINE_CALLBACK=cb:{item_id}" in sent["Variable"]
    assert attempt.call_uid
    assert client.get(f"/callbacks/{item_id}/status").json()["status"] == "placed"
    page = client.get(f"/callbacks/{item_id}")
    assert 'id="outcome-form"' in page.text


@pytest.mark.parametrize(("refusal", "code", "words"), [
    (None, "5", "máy bận"),
    (None, "0", "không liên lạc được"),
    ("Permission denied", None, "từ chối"),
])
def test_a_failed_originate_puts_the_item_back_with_the_reason(client, ready, refusal, code, words):
    server, item_id = ready
    if refusal:
        server.originate_refusal = refusal
    else:
        server.originate_reasons["PJSIP/tvv1"] = code
    _claim_and_call(client, item_id)
    attempt = wait_for(lambda: (a := _attempt(item_id)).status == "failed" and a, what="the failed call")
    assert attempt.outcome == "failed" and attempt.reason
    with session_scope() as db:
        item = db.get(CallbackItem, item_id)
        assert (item.status, item.claimed_by_id, item.attempts) == ("open", None, 0)
    page = client.get("/callbacks")
    assert f'data-item="{item_id}"' in page.text and words in page.text
