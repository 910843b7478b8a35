"""Retention: a referral's free text goes when the record's notes would, unless under legal hold."""

from __future__ import annotations

from datetime import timedelta

from hotline.db import session_scope, utcnow


def test_old_referral_text_is_removed_except_under_legal_hold(world):
    from hotline.auth.deps import Principal
    from hotline.calls.models import CallRecord
    from hotline.security.service import run_retention
    from referral import service
    from referral.models import Referral

    world.record(consent_referral_scope={"to": "bất kỳ", "data": "ghi chú"})
    p = Principal(id=world.uid("lan"), username="lan", display_name="", role="counsellor", centre_id=1, language="vi")
    with session_scope() as db:
        [old] = service.create(db, record_id=world.record_id, actor=p, data={
            "service_ids": ["t-shelter-b"], "urgency": "urgent", "ask": "Đón chị ở chợ", "extras": ["notes"]})
        [new] = service.create(db, record_id=world.record_id, actor=p, data={
            "service_ids": ["t-legal"], "urgency": "urgent", "ask": "Tư vấn ly hôn"})
        old.created_at = utcnow() - timedelta(days=800)
        service.decide(db, ref=old, decision="declined", note="Hết chỗ cho chị ấy", by="test")
        old_id, new_id = old.id, new.id
    # Free text is encrypted at rest: the database never holds it in clear.
    from sqlalchemy import text

    with session_scope() as db:
        raw = db.execute(text("SELECT content, ask FROM referral_referrals WHERE id = :i"), {"i": new_id}).first()
        raw_events = " ".join(r[0] for r in db.execute(text("SELECT detail FROM referral_events")))
    assert raw[0].startswith("enc1:") and raw[1].startswith("enc1:") and "ly hôn" not in raw[0] + raw[1]
    assert "Hết chỗ" not in raw_events
    assert run_retention(dry_run=True).domains["referrals"] == 1
    report = run_retention()
    assert report.domains["referrals"] == 1
    with session_scope() as db:
        o, n = db.get(Referral, old_id), db.get(Referral, new_id)
        assert o.ask == service.PURGED_TEXT and o.content["ask"] == service.PURGED_TEXT
        assert o.content["extra"]["notes"] == service.PURGED_TEXT and o.decision_note == service.PURGED_TEXT
        assert "Hết chỗ" not in str([e.detail for e in o.events])
        assert o.state == "declined" and o.content["code"] == o.code  # statistics keep their codes
        assert n.ask == "Tư vấn ly hôn"
    # Under legal hold nothing is removed.
    with session_scope() as db:
        [held] = service.create(db, record_id=world.record_id, actor=p, data={
            "service_ids": ["t-shelter-a"], "urgency": "urgent", "ask": "Giữ lại"})
        held.created_at = utcnow() - timedelta(days=800)
        db.get(CallRecord, world.record_id).legal_hold = True
        held_id = held.id
    assert run_retention().domains["referrals"] == 0
    with session_scope() as db:
        assert db.get(Referral, held_id).ask == "Giữ lại"
