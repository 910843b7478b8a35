"""What other domains read about referrals (states of records, counts by state)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.i18n import N_, translator
from referral.models import (
    STATES,
    Referral,
)


def states_for_records(session: Session, *, record_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The referrals of each call record, oldest first: ``{record_id: [{id, service_name, state,
    urgency, created_at}, …]}``.  Records without referrals are absent from the result."""
    ids = sorted({int(i) for i in record_ids})
    out: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = session.execute(
            select(Referral.id, Referral.record_id, Referral.service_name, Referral.state, Referral.urgency,
                   Referral.created_at)
            .where(Referral.record_id.in_(chunk))
            .order_by(Referral.created_at, Referral.id)
        ).all()
        for rid, record_id, name, state, urgency, created_at in rows:
            if record_id is None:
                continue
            out.setdefault(record_id, []).append({"id": rid, "service_name": name, "state": state,
                                                  "urgency": urgency, "created_at": created_at})
    return out


STATE_LABELS = {"queued": N_("Queued"), "sent": N_("Sent"), "delivered": N_("Delivered"),
                "accepted": N_("Accepted"), "declined": N_("Declined"), "expired": N_("Expired"),
                "cancelled": N_("Cancelled"), "failed": N_("Delivery failed")}


def state_labels(lang: str) -> dict[str, str]:
    """Each referral state's name in a language (for the daily log and reports too)."""
    _ = translator(lang)
    return {state: _(label) for state, label in STATE_LABELS.items()}


def counts_by_state(session: Session, *, centre_id: int | None, since: datetime,
                    until: datetime) -> dict[str, int]:
    """How many referrals created in ``[since, until)`` are in each state now (every state listed,
    zeros included); ``centre_id=None`` counts every centre."""
    q = (select(Referral.state, func.count(Referral.id))
         .where(Referral.created_at >= since, Referral.created_at < until)
         .group_by(Referral.state))
    if centre_id is not None:
        q = q.where(Referral.centre_id == centre_id)
    counts = {state: 0 for state in STATES}
    for state, n in session.execute(q).all():
        counts[state] = counts.get(state, 0) + int(n)
    return counts
