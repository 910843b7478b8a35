"""#14 findings 1, 4 and 5, through HTTP: caller history stays inside the centre (unless centres share
it by setting), references follow the record's edit rights and sign-off lock, and a counsellor
cannot take over another counsellor's call."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from hotline.audit.models import AuditEntry
from hotline.calls.models import CallRecord
from hotline.centres import service as centres
from hotline.centres.models import Centre
from hotline.db import session_scope, utcnow
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.spool import submit
from hotline.records.models import CallRecordRevision
from hotline.settings import reset_settings
from tests.live.conftest import call_id, feed_call, sign_in

JSON = {"Accept": "application/json"}


def _feed_other_centre(caller: str) -> int:
    """A call on the other centre's line (queue ``other-q``), nobody answering yet."""
    from hotline.centres.models import Line

    with session_scope() as db:
        other = db.scalar(select(Centre).where(Centre.code == "other"))
        if db.scalar(select(Line.id).where(Line.identifier == "other-q")) is None:
            centres.add_line(db, centre=other, provider="asterisk", kind="queue", identifier="other-q",
                             label="Đường dây tỉnh khác")
    key = f"sec-other-{datetime.now().timestamp()}"
    t = datetime.now(timezone.utc)
    events = [CallEvent(Kind.STARTED, "asterisk", key, t, channel=key, caller=caller, dialed="1900"),
              CallEvent(Kind.QUEUED, "asterisk", key, t + timedelta(seconds=1), queue="other-q")]
    submit([RawIn("asterisk", f"{key}-{i}", t, f"test {key} {i}", event_type="test", events=[e])
            for i, e in enumerate(events)])
    return call_id(key)


def _open(client, token: str, cid: int):
    return client.post(f"/records/for-call/{cid}", headers={**JSON, "X-CSRF-Token": token})


def test_caller_history_does_not_cross_centres_unless_they_share_it(client, staff, monkeypatch):
    token = sign_in(client, "tvv1")
    earlier = call_id(feed_call(caller="0912 345 678", at=datetime.now(timezone.utc) - timedelta(days=2), ended=True))
    rec = _open(client, token, earlier).json()
    r = client.put(f"/records/{rec['id']}", json={"version": rec["version"], "fields": {
        "flags": ["perpetrator_known_to_call"], "notes": "Người chồng gọi lại dọa"}},
        headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    now = _feed_other_centre("+84912345678")
    with session_scope() as db:
        from hotline.calls.models import Call

        assert db.get(Call, now).centre_id == staff.other_centre_id

    sign_in(client, "gs_other")
    assert client.get(f"/records/{rec['id']}").status_code == 404  # the record itself is out of reach
    pop = client.get(f"/live/calls/{now}/pop")
    assert pop.status_code == 200
    assert "perpetrator_known_to_call" not in pop.text and f"/records/{rec['id']}" not in pop.text

    # A regional line serving both provinces: the centres share caller history by an explicit setting.
    monkeypatch.setenv("HOTLINE_CALLER_HISTORY_SHARED_CENTRES", "default,other")
    reset_settings()
    assert 'data-flag="perpetrator_known_to_call"' in client.get(f"/live/calls/{now}/pop").text


def _locked_record(client, staff) -> tuple[int, int]:
    token = sign_in(client, "tvv1")
    rec = _open(client, token, call_id(feed_call(ended=True))).json()
    with session_scope() as db:
        db.get(CallRecord, rec["id"]).locked_at = utcnow() - timedelta(minutes=1)
    return rec["id"], rec["version"]


def _give(client, token: str, rid: int, **extra):
    body = {"kind": "legal", "ref_id": "art-1", "label": "Điều 3 Luật PCBLGĐ 2022", **extra}
    return client.post(f"/records/{rid}/references", json=body, headers={**JSON, "X-CSRF-Token": token})


def test_references_need_edit_rights_a_reason_on_a_locked_record_and_leave_a_revision_and_audit(client, staff):
    rid, version = _locked_record(client, staff)
    # Another counsellor of the centre, and one of another centre: no edit rights.
    for name in ("tvv2", "tvv_other", "gs_other"):
        r = _give(client, sign_in(client, name), rid)
        assert r.status_code in (403, 404), (name, r.status_code)
    # The record's counsellor: the day is signed off, so a reason is needed.
    token = sign_in(client, "tvv1")
    r = _give(client, token, rid)
    assert r.status_code == 422 and "lock_reason" in r.text
    with session_scope() as db:
        assert db.get(CallRecord, rid).references_given == []
    r = _give(client, token, rid, lock_reason="Quên ghi lúc gọi")
    assert r.status_code == 200, r.text
    with session_scope() as db:
        record = db.get(CallRecord, rid)
        assert [x["ref_id"] for x in record.references_given] == ["art-1"] and record.version == version + 1
        revision = db.scalar(select(CallRecordRevision).where(CallRecordRevision.record_id == rid))
        assert revision.action == "edited_after_sign_off"
        assert revision.changes["lock_reason"] == [None, "Quên ghi lúc gọi"] and "references_given" in revision.changes
        actions = set(db.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(rid))))
        assert {"record.reference_add", "record.edit_after_sign_off"} <= actions


def test_a_counsellor_cannot_take_over_another_counsellors_call(client, staff):
    cid = call_id(feed_call(agent="PJSIP/tvv1", answered=True))
    r = _open(client, sign_in(client, "tvv2"), cid)
    assert r.status_code == 403, r.text
    r = _open(client, sign_in(client, "tvv1"), cid)
    assert r.status_code == 200
    with session_scope() as db:
        assert db.get(CallRecord, r.json()["id"]).counsellor_id == staff.ids["tvv1"]
    # The centre's supervisor may open it, as before.
    assert _open(client, sign_in(client, "gs1"), cid).status_code == 200
