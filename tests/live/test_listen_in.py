"""Supervisors listen in, whisper or barge from the wallboard: over HTTP to the AMI simulator's
socket (an ``Originate`` of the supervisor's own phone into ``ChanSpy`` on the counsellor's channel),
audited; never without a supervisor role, never on another centre's call."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from hotline.audit.models import AuditEntry
from hotline.centres import service as centres
from hotline.centres.models import Centre
from hotline.db import session_scope
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.spool import submit
from hotline.pbx.models import PbxCommand
from tests.ami.conftest import Rig, wait_for
from tests.live.conftest import call_id, feed_call, sign_in

JSON = {"Accept": "application/json"}
SPIED = "1764900000.77"  # the Uniqueid of the counsellor's channel in the call


def map_phone(username: str, identity: str) -> None:
    from hotline.auth.models import User

    with session_scope() as db:
        user = db.scalar(select(User).where(User.username == username))
        centre = db.get(Centre, user.centre_id)
        centres.map_agent(db, centre=centre, provider="asterisk", identity=identity, user_id=user.id)


def talking_call(*, part: bool = True) -> int:
    """A call answered by tvv1, with (or without) the counsellor's part in the caller's bridge."""
    key = feed_call(agent="PJSIP/tvv1", answered=True)
    if part:
        t = datetime.now(timezone.utc)
        submit([RawIn("asterisk", f"{key}-part", t, f"test {key} part", event_type="test", events=[
            CallEvent(Kind.PART_STARTED, "asterisk", key, t, channel=f"{SPIED}/bridge-1", agent="PJSIP/tvv1",
                      creates=False)])])
    return call_id(key)


def _originates(server) -> list[dict[str, str]]:
    return [a for a in list(server.actions) if a.get("Action") == "Originate"]


@pytest.fixture
def pbx(staff):
    rig = Rig()
    server = rig.server()
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the listener")
    yield server
    rig.close()


@pytest.mark.parametrize(("mode", "options"), [("listen", "qESu"), ("whisper", "qESwu"), ("barge", "qESBu")])
def test_a_supervisor_listens_in_through_chanspy_on_the_counsellors_channel(client, staff, pbx, mode, options):
    map_phone("gs1", "PJSIP/gs1")
    cid = talking_call()
    token = sign_in(client, "gs1")
    board = client.get("/live/wallboard.json", headers=JSON).json()
    assert [p["spy"] for p in board["in_progress"] if p["id"] == cid] == [True]
    r = client.post(f"/live/calls/{cid}/listen", json={"mode": mode}, headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 202, r.text
    command_id = r.json()["id"]
    sent = wait_for(lambda: _originates(pbx), what="the Originate")
    assert len(sent) == 1
    o = sent[0]
    assert o["ActionID"] == f"hotline-pbx-{command_id}"
    assert o["Channel"] == "PJSIP/gs1"  # the supervisor's own phone rings first
    assert (o["Application"], o["Data"]) == ("ChanSpy", f"{SPIED},{options}")
    assert "Context" not in o and "Exten" not in o
    wait_for(lambda: _status(command_id) == "placed", what="the supervisor answered")
    with session_scope() as db:
        [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "call.listen_in"))
        assert (entry.actor_username, entry.object_id) == ("gs1", str(cid))
        assert entry.detail["mode"] == mode and entry.detail["device"] == "PJSIP/gs1"


def _status(command_id: int) -> str:
    with session_scope() as db:
        return db.get(PbxCommand, command_id).status


def test_without_a_part_the_counsellors_device_is_spied_and_a_refusal_is_shown(client, staff, pbx):
    map_phone("gs1", "PJSIP/gs1")
    cid = talking_call(part=False)
    token = sign_in(client, "gs1")
    pbx.originate_reasons["PJSIP/gs1"] = "3"  # the supervisor does not answer their phone
    r = client.post(f"/live/calls/{cid}/listen", data={"mode": "listen", "csrf_token": token}, headers=JSON)
    assert r.status_code == 202, r.text
    o = wait_for(lambda: _originates(pbx), what="the Originate")[0]
    assert o["Data"] == "PJSIP/tvv1-,qES"  # that device's channels (a prefix), never another's
    wait_for(lambda: _status(r.json()["id"]) == "failed", what="no answer")


def test_never_without_a_supervisor_role_nor_on_another_centres_call(client, staff, pbx):
    map_phone("gs1", "PJSIP/gs1")
    map_phone("gs_other", "PJSIP/gs9")
    cid = talking_call()
    token = sign_in(client, "tvv1")
    r = client.post(f"/live/calls/{cid}/listen", json={"mode": "listen"}, headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 403
    token = sign_in(client, "gs_other")
    r = client.post(f"/live/calls/{cid}/listen", json={"mode": "listen"}, headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 404
    token = sign_in(client, "gs1")
    r = client.post(f"/live/calls/{cid}/listen", json={"mode": "listen"}, headers=JSON)  # no CSRF token
    assert r.status_code == 403
    r = client.post(f"/live/calls/{cid}/listen", json={"mode": "shout"}, headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 422
    waiting = call_id(feed_call(agent=None, at=datetime.now(timezone.utc) - timedelta(seconds=5)))
    r = client.post(f"/live/calls/{waiting}/listen", json={"mode": "listen"}, headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 422, r.text
    assert _originates(pbx) == []
    with session_scope() as db:
        assert db.scalar(select(PbxCommand.id)) is None


def test_a_supervisor_without_a_phone_is_told_what_to_do(client, staff, pbx):
    cid = talking_call()
    token = sign_in(client, "gs1")
    r = client.post(f"/live/calls/{cid}/listen", json={"mode": "listen"}, headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 422
    assert "máy lẻ" in r.json()["detail"]  # Vietnamese first: map an extension to the account
