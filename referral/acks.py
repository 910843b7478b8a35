"""Signed webhook acknowledgements from partners, and their replay nonces."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.db import rowcount, utcnow
from referral import signing
from referral.answers import decide
from referral.base import ReferralError
from referral.models import (
    AckNonce,
    Referral,
)


def acknowledge_signed(session: Session, *, body: bytes, timestamp: str, signature: str,
                       now: float | None = None) -> Referral:
    """A partner's signed API call: {"referral_id", "status": received|accepted|declined, "note"}.

    Refuses (``signing.BadSignature``) a wrong, stale or replayed signature."""
    import json

    try:
        data = json.loads(body or b"{}")
        public_id = str(data["referral_id"])
        status = str(data.get("status") or "received")
    except (ValueError, KeyError, TypeError):
        raise ReferralError({"body": 'The body must be JSON with "referral_id" and "status" '
                                     '(received, accepted or declined).'}) from None
    ref = session.scalar(select(Referral).where(Referral.public_id == public_id))
    from directory import service as directory

    secret = ""
    if ref is not None:
        try:
            secret = directory.referral_target(session, ref.service_id)["webhook_secret"]
        except LookupError:
            secret = ""
    # An unknown referral_id is checked against a random secret: it is refused exactly like a wrong
    # signature, so the answer does not tell whether a referral exists (#14 finding 8).
    signing.verify(secret or secrets.token_urlsafe(32), timestamp, body, signature, now=now)
    assert ref is not None  # a random secret never verifies
    digest = signing.digest(signature.strip())
    if session.get(AckNonce, digest) is not None:
        raise signing.BadSignature("this acknowledgement was already received (replay)")
    session.add(AckNonce(digest=digest, received_at=utcnow()))
    session.flush()
    return decide(session, ref=ref, decision=status, note=str(data.get("note") or ""), by=f"webhook:{ref.service_id}")


def purge_nonces(session: Session, *, now: datetime | None = None) -> int:
    from sqlalchemy import delete

    cutoff = (now or utcnow()) - timedelta(seconds=signing.TOLERANCE * 2)
    return rowcount(session.execute(delete(AckNonce).where(AckNonce.received_at < cutoff)))
