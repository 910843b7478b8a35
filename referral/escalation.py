"""Escalating unanswered emergency referrals and expiring old ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.db import utcnow
from hotline.i18n import Text
from hotline.settings import get_settings
from referral.base import _event, tell
from referral.models import (
    OPEN_STATES,
    Referral,
)


def suggest_next(session: Session, *, ref: Referral) -> dict[str, Any] | None:
    """The next service of the same type with a free bed (not one this case was already sent to)."""
    from directory.search import Query, search

    already = set(session.scalars(select(Referral.service_id).where(Referral.record_id == ref.record_id))) \
        if ref.record_id else {ref.service_id}
    already.add(ref.service_id)
    _, rows = search(session, Query(service_type=ref.service_type, free_bed=True, limit=30), staff=True)
    candidates = [r for r in rows if r.get("id") not in already and (r.get("beds_free") or 0) > 0]
    if not candidates:
        return None
    candidates.sort(key=lambda r: (not r.get("accepts_referrals"), -(r.get("beds_free") or 0)))
    best = candidates[0]
    phones = best.get("phones") or []
    return {"service_id": best.get("id"), "name": best.get("name"), "organization": best.get("organization", ""),
            "beds_free": best.get("beds_free"), "phone": (phones[0].get("number") if phones else ""),
            "accepts_referrals": bool(best.get("accepts_referrals"))}


def escalate_due(session: Session, *, now: datetime | None = None) -> list[Referral]:
    """Alert supervisors about emergency referrals nobody acknowledged in time (once each)."""
    from hotline import bus

    now = now or utcnow()
    cutoff = now - timedelta(minutes=max(1, get_settings().referral_escalation_minutes))
    due = list(session.scalars(select(Referral).where(
        Referral.urgency == "emergency", Referral.state.in_(OPEN_STATES), Referral.acknowledged_at.is_(None),
        Referral.escalated_at.is_(None), Referral.created_at <= cutoff).order_by(Referral.created_at)))
    for ref in due:
        suggestion = suggest_next(session, ref=ref)
        minutes = int((now - ref.created_at).total_seconds() // 60)
        ref.escalated_at, ref.escalation = now, {"minutes": minutes, "suggestion": suggestion}
        _event(session, ref, "escalated", "system", minutes=minutes, suggestion=suggestion)
        session.flush()
        tell(session, ref, kind="escalation.referral",
             title=Text("Emergency referral %(code)s to %(service)s: no answer for %(minutes)s minutes.",
                        code=ref.code, service=ref.service_name, minutes=minutes))
        bus.publish(f"centre:{ref.centre_id}", {"type": "referral_alert", "alert": {
            "kind": "escalation", "referral_id": ref.id, "record_id": ref.record_id, "code": ref.code, "created_by": ref.created_by,
            "service_name": ref.service_name, "urgency": ref.urgency, "minutes": minutes,
            "suggestion": suggestion}})
    return due


def expire_due(session: Session, *, now: datetime | None = None) -> list[Referral]:
    now = now or utcnow()
    due = list(session.scalars(select(Referral).where(Referral.state.in_(OPEN_STATES), Referral.expires_at <= now)))
    for ref in due:
        ref.state, ref.updated_at = "expired", now
        _event(session, ref, "expired", "system")
    return due
