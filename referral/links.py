"""Single-use links for partners without accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hotline.db import utcnow
from hotline.i18n import Text
from hotline.settings import get_settings
from referral import signing
from referral.answers import decide
from referral.base import ReferralError
from referral.models import (
    Link,
    Referral,
)


class LinkProblem(Exception):
    def __init__(self, kind: str, ref: Referral | None = None):
        self.kind, self.ref = kind, ref  # invalid | expired | used
        super().__init__(kind)


def open_link(session: Session, *, token: str, now: datetime | None = None) -> tuple[Link, Referral]:
    now = now or utcnow()
    link_id = signing.link_id_from(get_settings().effective_secret_key, token)
    link = session.get(Link, link_id) if link_id else None
    if link is None:
        raise LinkProblem("invalid")
    ref = session.get(Referral, link.referral_id)
    if ref is None:
        raise LinkProblem("invalid")
    if link.used_at is not None:
        raise LinkProblem("used", ref)
    if link.expires_at <= now or ref.state == "expired":
        raise LinkProblem("expired", ref)
    if link.opened_at is None:
        link.opened_at = now
    return link, ref


def answer_by_link(session: Session, *, token: str, decision: str, note: str,
                   now: datetime | None = None) -> Referral:
    if decision not in ("accepted", "declined"):
        raise ReferralError({"decision": Text("Choose accept or decline.")})
    link, ref = open_link(session, token=token, now=now)
    decide(session, ref=ref, decision=decision, note=note, by="link")
    link.used_at = now or utcnow()
    return ref
