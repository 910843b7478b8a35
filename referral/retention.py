"""Retention: removing referral free text past its period (a step declared in hotline.domains)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from hotline.calls.models import CallRecord
from referral.models import (
    Referral,
)

PURGED_TEXT = "[đã xoá khi hết thời hạn lưu trữ / removed at the end of the retention period]"


def _purge_content(content: dict[str, Any]) -> dict[str, Any]:
    out = dict(content)
    out["ask"] = PURGED_TEXT
    contact = dict(out.get("contact") or {})
    if contact.get("safe_time"):
        contact["safe_time"] = PURGED_TEXT
    out["contact"] = contact
    if out.get("extra"):
        out["extra"] = {k: PURGED_TEXT for k in out["extra"]}
    return out


def retain(*, now: datetime, notes_cutoff: datetime | None, numbers_cutoff: datetime | None,
           dry_run: bool, batch_size: int = 200) -> int:
    """Retention step (registered with ``hotline.security``): the free text of referrals made
    before ``notes_cutoff`` (what was asked, the safe time, shared extras, notes, reasons) is
    replaced, except for referrals of a call record under legal hold.  Codes, states and times stay
    for the statistics."""
    from sqlalchemy import or_

    from hotline.db import session_scope

    if notes_cutoff is None:
        return 0
    due = (select(Referral.id).outerjoin(CallRecord, CallRecord.id == Referral.record_id)
           .where(Referral.created_at < notes_cutoff, Referral.purged_at.is_(None),
                  or_(CallRecord.id.is_(None), CallRecord.legal_hold.is_(False)))
           .order_by(Referral.id))
    if dry_run:
        with session_scope() as db:
            return db.scalar(select(func.count()).select_from(due.subquery())) or 0
    changed = 0
    while True:
        with session_scope() as db:
            ids = list(db.scalars(due.limit(batch_size)))
            if not ids:
                return changed
            for ref in db.scalars(select(Referral).where(Referral.id.in_(ids))):
                ref.content = _purge_content(ref.content or {})
                ref.ask = PURGED_TEXT
                ref.purged_at = now
                if ref.decision_note:
                    ref.decision_note = PURGED_TEXT
                if ref.override_reason:
                    ref.override_reason = PURGED_TEXT
                for ev in ref.events:
                    if any(k in (ev.detail or {}) for k in ("note", "reason")):
                        ev.detail = {k: (PURGED_TEXT if k in ("note", "reason") else v) for k, v in ev.detail.items()}
            changed += len(ids)
