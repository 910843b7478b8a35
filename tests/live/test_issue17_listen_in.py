"""Issue #17 point 6 says listen-in, whisper and barge are on Asterisk: on a call through Twilio the
wallboard offers no listen-in, and a request for one is refused with the reason (in Vietnamese), sends
nothing to any PBX and audits nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from hotline.audit.models import AuditEntry
from hotline.db import session_scope
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.spool import submit
from hotline.pbx.models import PbxCommand
from tests.live.conftest import call_id, sign_in
from tests.live.test_listen_in import map_phone

JSON = {"Accept": "application/json"}
SID = "CA" + "5" * 32


def twilio_call_in_progress() -> int:
    t = datetime.now(timezone.utc) - timedelta(seconds=30)
    events = [CallEvent(Kind.STARTED, "twilio", SID, t, channel=SID, caller="+84912345678", dialed="+842873001111"),
              CallEvent(Kind.QUEUED, "twilio", SID, t + timedelta(seconds=1), queue="hotline-default"),
              CallEvent(Kind.OFFERED, "twilio", SID, t + timedelta(seconds=2), agent="client:tvv1"),
              CallEvent(Kind.ANSWERED, "twilio", SID, t + timedelta(seconds=4), agent="client:tvv1", wait_seconds=3)]
    submit([RawIn("twilio", f"{SID}-{i}", t, f"test {SID} {i}", event_type="test", events=[e])
            for i, e in enumerate(events)])
    return call_id(SID)


@pytest.mark.parametrize("mode", ["listen", "whisper", "barge"])
def test_listen_in_on_a_twilio_call_is_refused_with_the_reason(client, staff, mode):
    map_phone("gs1", "PJSIP/gs1")  # the supervisor has an Asterisk phone: the call's provider is the reason
    cid = twilio_call_in_progress()
    token = sign_in(client, "gs1")
    board = client.get("/live/wallboard.json", headers=JSON).json()
    assert [p["spy"] for p in board["in_progress"] if p["id"] == cid] == [False]
    r = client.post(f"/live/calls/{cid}/listen", json={"mode": mode}, headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 422, r.text
    assert "Chỉ nghe được các cuộc gọi qua Asterisk" in r.json()["detail"]
    with session_scope() as db:
        assert db.scalar(select(func.count()).select_from(PbxCommand)) == 0
        assert db.scalar(select(func.count()).select_from(AuditEntry)
                         .where(AuditEntry.action == "call.listen_in")) == 0
