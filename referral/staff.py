"""Staff reading and cancelling referrals (who may see which)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.audit import service as audit
from hotline.calls.models import CallRecord
from hotline.db import utcnow
from hotline.i18n import Text
from hotline.records import service as records
from referral.base import NotAllowed, NotFound, ReferralError, _event
from referral.models import (
    FINAL_STATES,
    Referral,
)


def _staff_can_view(actor: Any, ref: Referral) -> bool:
    if actor.role == "administrator":
        return True
    return actor.role in ("counsellor", "supervisor") and ref.centre_id == actor.centre_id


def _record_visible(session: Session, actor: Any, ref: Referral) -> bool:
    """A referral shows the caller's name and the record's notes: it follows the record's visibility
    (a counsellor may not read another counsellor's draft through its referral, #14)."""
    if ref.record_id is None:
        return True
    record = session.get(CallRecord, ref.record_id)
    return record is None or records.can_view(actor, record)


def get_for_staff(session: Session, *, referral_id: int, actor: Any, for_edit: bool = False) -> Referral:
    ref = session.get(Referral, referral_id)
    if ref is None or not _staff_can_view(actor, ref) or not _record_visible(session, actor, ref):
        raise NotFound(Text("No such referral, or you may not see it."), referral_id)
    if for_edit and ref.record_id is not None:
        record = session.get(CallRecord, ref.record_id)
        if record is not None and not records.can_edit(actor, record):
            raise NotAllowed(Text("You may not change this referral."), referral_id)
    return ref


def for_record(session: Session, *, record_id: int) -> list[Referral]:
    return list(session.scalars(select(Referral).where(Referral.record_id == record_id)
                                .order_by(Referral.created_at, Referral.id)))


def list_for_staff(session: Session, *, actor: Any, state: str | None = None, limit: int = 200) -> list[Referral]:
    q = select(Referral).order_by(Referral.created_at.desc(), Referral.id.desc()).limit(limit)
    if actor.role != "administrator":
        if actor.role not in ("counsellor", "supervisor"):
            return []
        q = q.where(Referral.centre_id == actor.centre_id)
    if state:
        q = q.where(Referral.state == state)
    return [ref for ref in session.scalars(q) if _record_visible(session, actor, ref)]


def cancel(session: Session, *, referral_id: int, actor: Any, reason: str, request: Any = None) -> Referral:
    ref = get_for_staff(session, referral_id=referral_id, actor=actor, for_edit=True)
    reason = (reason or "").strip()
    if ref.state in FINAL_STATES:
        raise ReferralError({"state": Text("This referral is already closed.")})
    if len(reason) < 3:
        raise ReferralError({"reason": Text("Write why the referral is cancelled.")})
    ref.state, ref.decision_note, ref.updated_at = "cancelled", reason[:2000], utcnow()
    if ref.delivery is not None and ref.delivery.status in ("pending", "retrying"):
        ref.delivery.status, ref.delivery.last_error = "dead", "cancelled before delivery"
    _event(session, ref, "cancelled", actor.username, reason=reason[:500])
    audit.record(session, actor=actor, action="referral.cancel", object_type="referral", object_id=ref.id,
                 request=request, detail={"reason": reason[:500]})
    return ref
