"""What partners receive and the bookkeeping of each delivery try (claim, sent, failed, retry)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.audit import service as audit
from hotline.db import rowcount, utcnow
from hotline.i18n import Text
from hotline.settings import get_settings
from referral import signing
from referral.base import ReferralError, _base, _event, max_attempts, tell
from referral.models import (
    OPEN_STATES,
    Delivery,
    Event,
    Link,
    Referral,
)
from referral.staff import get_for_staff


def link_url(link: Link) -> str:
    return f"{_base()}/r/{signing.link_token(get_settings().effective_secret_key, link.id)}"


def link_for(session: Session, ref: Referral) -> Link | None:
    return session.scalar(select(Link).where(Link.referral_id == ref.id).order_by(Link.created_at.desc()).limit(1))


def partner_payload(*, content: dict[str, Any], public_id: str, delivery_id: str, created_at: datetime,
                    expires_at: datetime, respond_url: str) -> dict[str, Any]:
    return {
        "type": "referral",
        "delivery_id": delivery_id,
        "referral_id": public_id,
        "created_at": created_at.isoformat(),
        "expires_at": expires_at.isoformat(),
        "respond_url": respond_url,
        "acknowledge_url": f"{_base()}/api/referrals/ack",
        "referral": content,
    }


def payload_for(session: Session, ref: Referral) -> dict[str, Any]:
    """The same bytes on every try of one delivery (only the signature's timestamp changes)."""
    link = link_for(session, ref)
    assert ref.delivery is not None
    return partner_payload(content=ref.content, public_id=ref.public_id, delivery_id=ref.delivery.delivery_id,
                           created_at=ref.created_at, expires_at=ref.expires_at,
                           respond_url=link_url(link) if link else "")


# A try still "sending" after this long died with its worker (SIGKILL, power cut): it may be tried
# again, with the same delivery id (the partner's idempotency key). The sweep requeues such tries.
CLAIM_STALE = timedelta(minutes=5)


def claim(session: Session, *, delivery_id: str, now: datetime | None = None) -> dict[str, Any] | None:
    """Take a delivery for one try, atomically (two workers never send the same try twice), and
    return what the try needs: ``{delivery pk, method, target, attempts, referral fields, payload}``.
    None when there is nothing to send (already sent, dead, cancelled, or another worker has it).
    Few round trips on purpose: it runs once per job."""
    from sqlalchemy import or_, update

    now = now or utcnow()
    stale = now - CLAIM_STALE
    row = session.execute(
        update(Delivery)
        .where(Delivery.delivery_id == delivery_id,
               or_(Delivery.status.in_(("pending", "retrying")),
                   (Delivery.status == "sending") & (Delivery.claimed_at < stale)))
        .values(status="sending", claimed_at=now, attempts=Delivery.attempts + 1)
        .returning(Delivery.id, Delivery.referral_id, Delivery.method, Delivery.target, Delivery.attempts)
        .execution_options(synchronize_session=False)).first()
    if row is None:
        session.commit()
        return None
    pk, referral_id, method, target, attempts = row
    ref = session.execute(
        select(Referral.state, Referral.content, Referral.public_id, Referral.created_at, Referral.expires_at,
               Referral.service_id, Link.id)
        .outerjoin(Link, Link.referral_id == Referral.id).where(Referral.id == referral_id)
        .order_by(Link.created_at.desc()).limit(1)).first()
    if ref is None or ref[0] == "cancelled":
        session.execute(update(Delivery).where(Delivery.id == pk)
                        .values(status="dead", last_error="cancelled before delivery"))
        session.commit()
        return None
    if ref[0] in ("accepted", "declined", "expired"):  # the partner already answered (by link or account): stop
        session.execute(update(Delivery).where(Delivery.id == pk)
                        .values(status="sent", last_error="", attempts=Delivery.attempts - 1))
        session.commit()
        return None
    fields: Any = ref  # one row of the select above
    state, content, public_id, created_at, expires_at, service_id, link_id = fields
    respond_url = ""
    if link_id:
        respond_url = f"{_base()}/r/{signing.link_token(get_settings().effective_secret_key, link_id)}"
    payload = partner_payload(content=content, public_id=public_id, delivery_id=delivery_id, created_at=created_at,
                              expires_at=expires_at, respond_url=respond_url)
    session.commit()
    return {"pk": pk, "referral_id": referral_id, "method": method, "target": target, "attempts": attempts,
            "service_id": service_id, "payload": payload}


def mark_sent(session: Session, *, claimed: dict[str, Any], provider_ref: str = "") -> None:
    """The try succeeded: a webhook that answered 2xx has the referral (delivered); e-mail and
    SMS are only handed over (sent).  Three statements, one transaction."""
    from sqlalchemy import insert, update

    now = utcnow()
    session.execute(update(Delivery).where(Delivery.id == claimed["pk"])
                    .values(status="sent", sent_at=now, last_error="", provider_ref=provider_ref[:128]))
    new_state = "delivered" if claimed["method"] == "webhook" else "sent"
    values: dict[str, Any] = {"state": new_state, "sent_at": now, "updated_at": now}
    if new_state == "delivered":
        values["delivered_at"] = now
    moved = session.execute(update(Referral).where(Referral.id == claimed["referral_id"],
                                                   Referral.state.in_(("queued", "failed"))).values(**values))
    if rowcount(moved):
        session.execute(insert(Event).values(referral_id=claimed["referral_id"], at=now, action=new_state,
                                             state=new_state, actor="system",
                                             detail={"method": claimed["method"], "attempt": claimed["attempts"]}))


def mark_failed(session: Session, *, delivery: Delivery, reason: str) -> bool:
    """Record a failed try; True when it was the last (the delivery is dead-lettered)."""
    now = utcnow()
    delivery.last_error = reason[:2000]
    ref = delivery.referral
    if delivery.attempts >= max_attempts():
        delivery.status, delivery.dead_at = "dead", now
        if ref.state in OPEN_STATES:
            ref.state, ref.failure_reason, ref.updated_at = "failed", reason[:2000], now
        _event(session, ref, "dead_letter", "system", reason=reason[:500], attempts=delivery.attempts)
        tell(session, ref, kind="referral.failed",
             title=Text("Referral %(code)s to %(service)s could not be delivered; open it to see why and what to do.",
                        code=ref.code, service=ref.service_name))
        _publish_failed(ref)
        return True
    delivery.status = "retrying"
    _event(session, ref, "retry", "system", reason=reason[:500], attempt=delivery.attempts)
    return False


def _publish_failed(ref: Referral) -> None:
    from hotline import bus

    bus.publish(f"centre:{ref.centre_id}", {"type": "referral_alert", "alert": {
        "kind": "failed", "referral_id": ref.id, "record_id": ref.record_id, "code": ref.code, "created_by": ref.created_by,
        "service_name": ref.service_name, "urgency": ref.urgency, "reason": ref.failure_reason[:300]}})


def retry_delivery(session: Session, *, referral_id: int, actor: Any, request: Any = None) -> Referral:
    """Try a dead-lettered delivery again, with the same delivery id (a receiver that got it dedupes)."""
    ref = get_for_staff(session, referral_id=referral_id, actor=actor, for_edit=True)
    d = ref.delivery
    if d is None or d.status != "dead":
        raise ReferralError({"state": Text("Only a failed delivery can be tried again.")})
    d.status, d.attempts, d.dead_at = "pending", 0, None
    ref.state, ref.failure_reason, ref.updated_at = "queued", "", utcnow()
    _event(session, ref, "requeued", actor.username)
    audit.record(session, actor=actor, action="referral.retry", object_type="referral", object_id=ref.id,
                 request=request)
    return ref


def staff_payload(session: Session, ref: Referral) -> dict[str, Any]:
    """What the partner received, as staff may see it: without the partner's single-use respond link
    (whoever holds it can answer in the partner's name)."""
    payload = payload_for(session, ref)
    payload.pop("respond_url", None)
    return payload
