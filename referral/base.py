"""Referral rules shared by every concern: limits, roles, errors, the parsed request, events."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hotline import errors
from hotline.calls.models import CallRecord
from hotline.db import utcnow
from hotline.errors import Invalid
from hotline.i18n import Text, current_language, translate_value
from hotline.settings import get_settings
from referral.models import (
    URGENCIES,
    Event,
    Referral,
)

# ====================================================================== creating referrals
ASK_MAX = 1000


NAME_MAX = 120


REASON_MIN = 10


MAX_SERVICES = 10


OVERRIDE_ROLES = ("supervisor", "administrator")


CREATE_ROLES = ("counsellor", "supervisor", "administrator")


# Optional content, each shared only when ticked and within what the caller agreed to share;
# the words are looked for (diacritics folded) in the consent's "information that may be shared".
EXTRAS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "caller_name": ("Tên người gọi", "Caller's name", ("ten", "name", "ho ten")),
    "age_group": ("Nhóm tuổi", "Age group", ("tuoi", "age")),
    "province": ("Tỉnh / xã", "Province / commune", ("tinh", "dia chi", "noi o", "province", "address",
                                                      "location", "xa")),
    "notes": ("Ghi chú của tư vấn viên", "Counsellor's notes", ("ghi chu", "note", "chi tiet", "details")),
}


ANY_WORDS = ("tat ca", "bat ky", "moi", "all", "any", "everything")


class ReferralError(Invalid):
    """Bad input: ``messages`` maps a field to a ``Text`` saying what is wrong and what to do;
    ``translated(lang)`` gives them in a reader's language, ``errors`` in the current one."""

    def __init__(self, errors: Mapping[str, Text | str]):
        self.messages = dict(errors)
        super().__init__("; ".join(f"{k}: {translate_value(v, 'en')}" for k, v in self.messages.items()))

    @property
    def errors(self) -> dict[str, str]:
        return self.translated(current_language.get())

    def translated(self, lang: str | None = None) -> dict[str, str]:
        lang = lang or current_language.get()
        return {k: str(translate_value(v, lang)) for k, v in self.messages.items()}

    def __str__(self) -> str:
        return "; ".join(self.errors.values())


class NotAllowed(errors.NotAllowed):
    pass


class NotFound(errors.NotFound):
    pass


@dataclass
class ReferralRequest:
    service_ids: list[str]
    urgency: str = "routine"
    ask: str = ""
    extras: list[str] = field(default_factory=list)
    caller_name: str = ""
    override_reason: str = ""


def retry_intervals() -> list[int]:
    raw = get_settings().referral_retry_seconds
    try:
        values = [max(0, int(x)) for x in str(raw).replace(" ", "").split(",") if x]
    except ValueError:
        values = [10, 30, 90, 270, 810]
    return values


def max_attempts() -> int:
    return 1 + len(retry_intervals())


def default_urgency(record: CallRecord) -> str:
    return {"imminent": "emergency", "high": "urgent"}.get(record.risk or "", "routine")


def parse_request(data: dict[str, Any]) -> ReferralRequest:
    """Typed, validated input (form or JSON); raises ``ReferralError`` naming each bad field."""
    errors: dict[str, Text] = {}
    raw_ids = data.get("service_ids") or []
    if isinstance(raw_ids, str):
        raw_ids = [raw_ids]
    ids = list(dict.fromkeys(str(x).strip() for x in raw_ids if str(x).strip()))
    if not ids:
        errors["service_ids"] = Text("Choose at least one service to refer to.")
    elif len(ids) > MAX_SERVICES:
        errors["service_ids"] = Text("At most %(max)d services at once.", max=MAX_SERVICES)
    urgency = str(data.get("urgency") or "routine").strip()
    if urgency not in URGENCIES:
        errors["urgency"] = Text("Urgency must be routine, urgent or emergency.")
    ask = str(data.get("ask") or "").replace("\r\n", "\n").strip()
    if not ask:
        errors["ask"] = Text("Say what the partner is asked to do (e.g. take her in tonight).")
    elif len(ask) > ASK_MAX:
        errors["ask"] = Text("%(length)d characters, at most %(max)d.", length=len(ask), max=ASK_MAX)
    raw_extras = data.get("extras") or []
    if isinstance(raw_extras, str):
        raw_extras = [raw_extras]
    extras = [str(x) for x in raw_extras if str(x)]
    unknown = [x for x in extras if x not in EXTRAS]
    if unknown:
        errors["extras"] = Text("Unknown items: %(unknown)s; choose from %(choices)s.",
                                unknown=", ".join(unknown), choices=", ".join(EXTRAS))
    name = str(data.get("caller_name") or "").strip()
    if len(name) > NAME_MAX:
        errors["caller_name"] = Text("At most %(max)d characters.", max=NAME_MAX)
    if "caller_name" in extras and not name:
        errors["caller_name"] = Text("You ticked the name but did not type it.")
    reason = str(data.get("override_reason") or "").strip()
    if errors:
        raise ReferralError(errors)
    return ReferralRequest(service_ids=ids, urgency=urgency, ask=ask, extras=list(dict.fromkeys(extras)),
                   caller_name=name if "caller_name" in extras else "", override_reason=reason)


def _base() -> str:
    return get_settings().public_base_url.rstrip("/")


def _expiry(now: datetime) -> datetime:
    return now + timedelta(hours=max(1, get_settings().referral_link_hours))


def _event(session: Session, ref: Referral, action: str, actor: str, **detail: Any) -> None:
    ev = Event(referral_id=ref.id, at=utcnow(), action=action, state=ref.state, actor=actor[:255], detail=detail)
    session.add(ev)


def tell(session: Session, ref: Referral, *, kind: str, title: Text, creator: bool = True) -> int:
    """A lasting notification about ``ref`` (``hotline.notifications``): to the counsellor who made it
    (unless ``creator`` is False) and to the centre's supervisors, linking to the referral's page.
    The live screens' ``referral_alert`` is the instant hint; this is what stays until read."""
    from hotline.notifications import service as notifications

    return notifications.notify(session, user_ids=[ref.created_by] if creator and ref.created_by else None,
                                centre_id=ref.centre_id, roles=("supervisor",), kind=kind, title=title,
                                link=f"/referrals/{ref.id}")


def digest_text(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
