"""The partner's answer (accept / decline) and the first opening."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hotline.db import utcnow
from hotline.i18n import Text
from referral.base import ReferralError, _event, tell
from referral.models import (
    OPEN_STATES,
    Referral,
)


def decide(session: Session, *, ref: Referral, decision: str, note: str, by: str) -> Referral:
    """Accept or decline (with a reason), or acknowledge receipt ("received")."""
    note = (note or "").strip()[:2000]
    if decision not in ("accepted", "declined", "received"):
        raise ReferralError({"decision": Text("Choose accept or decline.")})
    if ref.state not in OPEN_STATES:
        raise ReferralError({"state": Text("This referral is already %(state)s; it cannot change any more.",
                                           state=ref.state)})
    if decision == "declined" and not note:
        raise ReferralError({"note": Text("Say why you decline, so the centre can look elsewhere.")})
    now = utcnow()
    ref.acknowledged_at = ref.acknowledged_at or now
    if ref.delivered_at is None:
        ref.delivered_at = now
    if decision == "received":
        if ref.state != "delivered":
            ref.state = "delivered"
    else:
        ref.state, ref.decided_at, ref.decided_by, ref.decision_note = decision, now, by[:255], note
    ref.updated_at = now
    _event(session, ref, decision, by, note=note[:500])
    if decision == "accepted":
        tell(session, ref, kind="referral.accepted",
             title=Text("%(service)s accepted referral %(code)s.", service=ref.service_name, code=ref.code))
    elif decision == "declined":
        tell(session, ref, kind="referral.declined",
             title=Text("%(service)s declined referral %(code)s.", service=ref.service_name, code=ref.code))
    from hotline import bus

    bus.publish(f"centre:{ref.centre_id}", {"type": "referral_alert", "alert": {
        "kind": decision, "referral_id": ref.id, "record_id": ref.record_id, "code": ref.code, "created_by": ref.created_by,
        "service_name": ref.service_name, "urgency": ref.urgency}})
    return ref


def mark_opened(session: Session, *, ref: Referral, by: str) -> None:
    """The partner looked at it: delivered, whatever the channel."""
    if ref.state in ("queued", "sent"):
        now = utcnow()
        ref.state, ref.updated_at = "delivered", now
        ref.delivered_at = ref.delivered_at or now
        _event(session, ref, "opened", by)
