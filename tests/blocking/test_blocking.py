"""Blocking abusive and prank callers: the supervisors' page, roles and CSRF, the Twilio voice
webhook (signed), the Asterisk lookup, counsellors' proposals, the CLI and retention."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from blocking.models import BlockedCall, BlockProposal, NumberBlock
from hotline.audit.models import AuditEntry
from hotline.cli import main
from hotline.db import session_scope
from tests.helpers import create_user, login, wait_for
from tests.twilio.conftest import CALL_SID, CALLER, base_params

PASSWORD = "Mat-khau-dai-du-2026!"
API = {"Authorization": "Bearer test-api-token"}


@pytest.fixture
def supervisor(client):
    create_user("gs1", PASSWORD, "supervisor")
    return login(client, "gs1", PASSWORD)


def _block(client, csrf, number=CALLER, amount="2", unit="d", reason="Gọi quấy rối nhiều lần"):
    return client.post("/blocking", data={"number": number, "amount": amount, "unit": unit, "reason": reason,
                                          "csrf_token": csrf}, follow_redirects=False)


def _blocked_calls(what: str, predicate=bool) -> list[BlockedCall]:
    """The blocked calls once ``predicate(rows)`` holds: the voice path records them after its answer."""
    def rows():
        with session_scope() as db:
            found = db.scalars(select(BlockedCall).order_by(BlockedCall.id)).all()
            db.expunge_all()
        return found if found and predicate(found) else None

    return wait_for(rows, timeout=10, what=what)


def _active_ids() -> list[int]:
    with session_scope() as db:
        return list(db.scalars(select(NumberBlock.id).where(NumberBlock.lifted_at.is_(None))))


def test_supervisor_blocks_sees_masked_number_and_lifts(client, supervisor):
    assert _block(client, supervisor).status_code == 303
    page = client.get("/blocking")
    assert page.status_code == 200 and "0912 *** 678" in page.text and "912345678" not in page.text
    assert "Gọi quấy rối nhiều lần" in page.text and "Gỡ chặn" in page.text
    with session_scope() as db:
        block = db.scalars(select(NumberBlock)).one()
        assert block.number_hash.count(":") == 1 and "912345678" not in block.number_hash
        assert block.expires_at - block.starts_at == timedelta(days=2)
    # the same number twice: a clear conflict
    again = _block(client, supervisor, number="0912 345 678")
    assert again.status_code == 409 and "đang bị chặn" in again.text
    assert client.post(f"/blocking/{block.id}/lift", data={"csrf_token": supervisor},
                       follow_redirects=False).status_code == 303
    assert "Không có số nào bị chặn." in client.get("/blocking").text
    with session_scope() as db:
        actions = set(db.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "number_block")))
    assert actions == {"block.add", "block.lift"}


@pytest.mark.parametrize(("number", "expected"), [
    ("anonymous", "Không thể chặn số ẩn danh"),
    ("", "Không thể chặn số ẩn danh"),
    ("12345", "không phải là số điện thoại hợp lệ"),
    ("113", "Không thể chặn số khẩn cấp"),
])
def test_invalid_or_withheld_numbers_are_refused_with_the_reason(client, supervisor, number, expected):
    response = _block(client, supervisor, number=number)
    assert response.status_code == 422 and expected in response.text
    assert _active_ids() == []


@pytest.mark.parametrize(("amount", "unit"), [("0", "h"), ("13", "m"), ("x", "d"), ("1", "y")])
def test_bad_durations_are_refused(client, supervisor, amount, unit):
    response = _block(client, supervisor, amount=amount, unit=unit)
    assert response.status_code == 422 and ("Thời gian chặn" in response.text or "thời hạn" in response.text)


def test_reason_required(client, supervisor):
    response = _block(client, supervisor, reason="  ")
    assert response.status_code == 422 and "lý do" in response.text


def test_csrf_and_roles(client):
    create_user("tvv1", PASSWORD, "counsellor")
    create_user("gs1", PASSWORD, "supervisor")
    assert client.get("/blocking", follow_redirects=False).status_code == 303  # anonymous: to sign-in
    csrf = login(client, "tvv1", PASSWORD)
    assert client.get("/blocking").status_code == 403
    assert _block(client, csrf).status_code == 403
    assert _active_ids() == []
    client.cookies.clear()
    csrf = login(client, "gs1", PASSWORD)
    assert _block(client, "wrong-token").status_code == 403
    assert _active_ids() == []


# ---------------------------------------------------------------------- Twilio
def test_twilio_voice_blocked_then_normal_after_expiry(client, supervisor, post):
    start = datetime.now(timezone.utc)
    with freeze_time(start):
        assert _block(client, supervisor, amount="3", unit="h").status_code == 303
        answer = post("/webhooks/twilio/voice", base_params())
        assert answer.status_code == 200
        body = answer.text
        assert "<Gather" in body and "113" in body and "115" in body and "111" in body and "<Enqueue" not in body
        assert "/webhooks/twilio/blocked-key" in body
    rows = _blocked_calls("the blocked call recorded")
    assert [(r.provider, r.call_ref) for r in rows] == [("twilio", CALL_SID)]
    with freeze_time(start + timedelta(hours=3, minutes=1)):
        answer = post("/webhooks/twilio/voice", base_params(CallSid="CA" + "9" * 32))
        assert answer.status_code == 200 and "<Enqueue" in answer.text and "<Gather" not in answer.text


def test_twilio_voice_normal_after_lift_and_withheld_never_blocked(client, supervisor, post):
    assert _block(client, supervisor).status_code == 303
    withheld = post("/webhooks/twilio/voice", base_params(From="anonymous", Caller="anonymous",
                                                          CallSid="CA" + "3" * 32))
    assert withheld.status_code == 200 and "<Enqueue" in withheld.text
    assert "<Gather" in post("/webhooks/twilio/voice", base_params()).text
    client.post(f"/blocking/{_active_ids()[0]}/lift", data={"csrf_token": supervisor})
    answer = post("/webhooks/twilio/voice", base_params(CallSid="CA" + "4" * 32))
    assert "<Enqueue" in answer.text and "<Gather" not in answer.text


def test_blocked_caller_key_reaches_the_supervisors_queue(client, supervisor, post):
    _block(client, supervisor)
    post("/webhooks/twilio/voice", base_params())
    path = "/webhooks/twilio/blocked-key?queue=hotline-default"
    answer = post(path, base_params(Digits="5"))
    assert answer.status_code == 200 and "hotline-default-supervisors</Enqueue>" in answer.text
    rows = _blocked_calls("the key press recorded", lambda rows: rows[0].pressed_for_supervisor)
    assert [r.pressed_for_supervisor for r in rows] == [True]
    assert "<Hangup" in post(path, base_params(Digits="")).text
    assert post(path, base_params(Digits="1"), signature="bad").status_code == 403


# ---------------------------------------------------------------------- Asterisk
def test_asterisk_lookup(client, supervisor):
    _block(client, supervisor)
    client.cookies.clear()
    assert client.get("/api/blocking/check", params={"number": "0912345678"}).status_code == 401
    assert client.get("/api/blocking/check", params={"number": "0912345678"},
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/api/blocking/check", params={"number": "0912345678", "call": "1700000000.12"},
                        headers=API)
    assert answer.status_code == 200 and answer.text == "blocked=1"
    assert client.get("/api/blocking/check", params={"number": "0987654321"}, headers=API).text == "blocked=0"
    for withheld in ("anonymous", "", "<unknown>", "garbage"):
        assert client.get("/api/blocking/check", params={"number": withheld}, headers=API).text == "blocked=0"
    assert client.post("/api/blocking/pressed", params={"call": "1700000000.12"}, headers=API).status_code == 200
    rows = _blocked_calls("the key press recorded", lambda rows: rows[0].pressed_for_supervisor)
    assert [(r.provider, r.call_ref, r.pressed_for_supervisor) for r in rows] == [("asterisk", "1700000000.12", True)]


# ---------------------------------------------------------------------- proposals
def _prank_record(client, post) -> int:
    """A call through the Twilio webhook, its record opened and closed as a prank by the counsellor."""
    from hotline.calls.models import Call
    from hotline.records import service as records

    post("/webhooks/twilio/voice", base_params(CallSid="CA" + "7" * 32))
    from hotline.auth.deps import Principal

    with session_scope() as db:
        call = db.scalars(select(Call)).one()
        from hotline.auth.models import User

        user = db.scalars(select(User).where(User.username == "tvv1")).one()
        actor = Principal(id=user.id, username="tvv1", display_name="", role="counsellor",
                          centre_id=user.centre_id, language="vi")
        record = records.open_for_call(db, call_id=call.id, actor=actor)
        records.close_non_counselling(db, record=record, actor=actor, code="nc.prank")
        return record.id


def test_counsellor_proposes_supervisor_accepts_or_refuses(client, post):
    create_user("tvv1", PASSWORD, "counsellor")
    create_user("gs1", PASSWORD, "supervisor")
    record_id = _prank_record(client, post)
    csrf = login(client, "tvv1", PASSWORD)
    page = client.get(f"/records/{record_id}")
    assert page.status_code == 200 and "Đề xuất chặn (quấy rối nhiều lần)" in page.text
    sent = client.post(f"/records/{record_id}/block-proposal", data={"reason": "Quấy rối nhiều lần",
                                                                       "csrf_token": csrf}, follow_redirects=False)
    assert sent.status_code == 303
    assert "giám sát viên sẽ quyết định" in client.get(f"/records/{record_id}").text
    with session_scope() as db:
        proposal = db.scalars(select(BlockProposal)).one()
    assert client.post(f"/blocking/proposals/{proposal.id}/accept", data={"amount": "1", "unit": "w",
                                                                          "csrf_token": csrf}).status_code == 403
    client.cookies.clear()
    csrf = login(client, "gs1", PASSWORD)
    page = client.get("/blocking")
    assert "0912 *** 678" in page.text and "Quấy rối nhiều lần" in page.text
    assert client.post(f"/blocking/proposals/{proposal.id}/accept", data={"amount": "1", "unit": "w",
                                                                          "csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    assert client.post(f"/blocking/proposals/{proposal.id}/refuse",
                       data={"csrf_token": csrf}).status_code == 409
    with session_scope() as db:
        block = db.scalars(select(NumberBlock)).one()
        assert block.proposal_id == proposal.id and block.expires_at - block.starts_at == timedelta(days=7)
    assert client.get("/api/blocking/check", params={"number": CALLER}, headers=API).text == "blocked=1"


def test_a_proposal_needs_a_non_counselling_close(client, post):
    from hotline.calls.models import CallRecord

    create_user("tvv1", PASSWORD, "counsellor")
    record_id = _prank_record(client, post)
    with session_scope() as db:
        db.get(CallRecord, record_id).outcome = "counselled"
    csrf = login(client, "tvv1", PASSWORD)
    sent = client.post(f"/records/{record_id}/block-proposal", data={"reason": "x", "csrf_token": csrf})
    assert sent.status_code == 422 and "không tư vấn" in sent.text
    assert client.post("/records/999999/block-proposal", data={"reason": "x", "csrf_token": csrf}).status_code == 404


# ---------------------------------------------------------------------- CLI and retention
def test_cli_add_list_lift(env, capsys):
    assert main(["block", "add", "0912 345 678", "--for", "12h", "--reason", "prank"]) == 0
    assert "0912 *** 678" in capsys.readouterr().out
    assert main(["block", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["number"] for r in rows] == ["0912 *** 678"]
    assert main(["block", "add", "anonymous", "--for", "1d", "--reason", "x"]) == 2
    assert "Không thể chặn số ẩn danh" in capsys.readouterr().err
    assert main(["block", "add", "0912345679", "--for", "forever", "--reason", "x"]) == 2
    assert "12h, 3d, 2w hoặc 6m" in capsys.readouterr().err
    assert main(["block", "lift", str(rows[0]["id"])]) == 0
    assert main(["block", "lift", str(rows[0]["id"])]) == 2
    assert "đã kết thúc" in capsys.readouterr().err
    assert main(["block", "list"]) == 0
    assert "Không có số nào bị chặn." in capsys.readouterr().out


def test_retention_removes_ended_blocks(env):
    from blocking import service

    assert main(["block", "add", "0912 345 678", "--for", "1h", "--reason", "prank"]) == 0
    now = datetime.now(timezone.utc) + timedelta(days=400)
    kwargs = {"now": now, "notes_cutoff": None, "numbers_cutoff": now - timedelta(days=30)}
    assert service.retain(dry_run=True, **kwargs) == 1
    assert service.retain(dry_run=False, **kwargs) == 1
    with session_scope() as db:
        assert db.scalar(select(func.count()).select_from(NumberBlock)) == 0
