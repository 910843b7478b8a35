"""The sign-off lock on call records (hotline.records): a locked record's change needs a reason,
is kept in the history with the reason and is audited; without a reason nothing changes."""

from __future__ import annotations

from sqlalchemy import select

from hotline.audit.models import AuditEntry
from hotline.calls.models import CallRecord
from hotline.db import session_scope, utcnow
from hotline.records.models import CallRecordRevision
from tests.daily_log.conftest import add_call, sign_in, utc

JSON = {"Accept": "application/json"}


def _locked_record(staff) -> int:
    _, rid = add_call(staff.centre_id, utc(2026, 11, 20, 3), counsellor_id=staff.ids["tvv1"],
                      record={"issues": ("dv.physical",)})
    with session_scope() as db:
        rec = db.get(CallRecord, rid)
        rec.locked_at = utcnow()
    return rid


def test_edit_of_a_locked_record_is_refused_without_a_reason(client, staff):
    rid = _locked_record(staff)
    token = sign_in(client, "gs1")
    page = client.get(f"/records/{rid}")
    assert 'name="lock_reason"' in page.text
    r = client.put(f"/records/{rid}", json={"version": 1, "fields": {"risk": "high"}},
                   headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 422
    assert "lock_reason" in r.json()["errors"] and "ký duyệt" in r.json()["detail"]
    with session_scope() as db:
        rec = db.get(CallRecord, rid)
        assert (rec.risk, rec.version) == (None, 1)
    # the HTML form says the same, next to the field, and keeps what was typed
    r = client.post(f"/records/{rid}", data={"csrf_token": token, "version": "1", "risk": "high",
                                             "caller_role": "survivor", "outcome": "resolved",
                                             "primary_issue": "dv.physical", "issues": "dv.physical",
                                             "service_level": "2", "consent_record": "on",
                                             "consent_statistics": "on", "action": "save"})
    assert r.status_code == 422 and 'id="err-lock_reason"' in r.text


def test_edit_with_a_reason_is_kept_audited_and_flagged(client, staff):
    rid = _locked_record(staff)
    token = sign_in(client, "gs1")
    r = client.put(f"/records/{rid}", json={"version": 1, "fields": {"risk": "high", "lock_reason": "gọi lại bổ sung"}},
                   headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    with session_scope() as db:
        rev = db.scalar(select(CallRecordRevision).where(CallRecordRevision.record_id == rid))
        assert rev.action == "edited_after_sign_off"
        assert rev.changes["risk"] == [None, "high"] and rev.changes["lock_reason"] == [None, "gọi lại bổ sung"]
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "record.edit_after_sign_off"))
        assert entry.object_id == str(rid) and entry.detail["reason"] == "gọi lại bổ sung"
        assert entry.detail["fields"] == ["risk"] and entry.actor_username == "gs1"
    hist = client.get(f"/records/{rid}/history")
    assert "gọi lại bổ sung" in hist.text and "edited_after_sign_off" in hist.text
    # an unlocked record's form has no reason field
    _, other = add_call(staff.centre_id, utc(2026, 11, 21, 3), counsellor_id=staff.ids["tvv1"], record={})
    assert 'name="lock_reason"' not in client.get(f"/records/{other}").text
