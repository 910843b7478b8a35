"""Referral hand-offs: consent first, minimal data, delivered reliably, acknowledged, escalated.

Plain keyword-only functions over a session.  Other domains read referrals through
``states_for_records`` and ``counts_by_state`` only.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.audit import service as audit
from hotline.calls.models import CallRecord
from hotline.centres.models import Centre
from hotline import errors
from hotline.db import utcnow
from hotline.errors import Invalid
from hotline.i18n import N_, Text, current_language, translate_value, translator
from hotline.records import service as records
from hotline.settings import get_settings
from hotline.taxonomy import get_taxonomies
from hotline.text import fold
from referral import signing
from referral.models import (FINAL_STATES, OPEN_STATES, STATES, URGENCIES, AckNonce, Delivery, Event, Link,
                             PartnerMember, Referral)


# ---------------------------------------------------------------------- reading (other domains)
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

    def __init__(self, errors: dict[str, Text | str]):
        self.messages = dict(errors)
        super().__init__("; ".join(f"{k}: {translate_value(v, 'en')}" for k, v in self.messages.items()))

    @property
    def errors(self) -> dict[str, str]:
        return self.translated(current_language.get())

    def translated(self, lang: str) -> dict[str, str]:
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


# ---------------------------------------------------------------------- consent
def is_child(record: CallRecord) -> bool:
    return record.caller_age_group == "under_16"


def consent_state(record: CallRecord) -> dict[str, Any]:
    """What was recorded: whether a referral may go ahead without an override, and why not."""
    scope = dict(record.consent_referral_scope or {})
    child = is_child(record)
    given = bool(record.consent_referral) and (not child or bool(record.child_consent and record.representative_consent))
    missing: Text | str
    if given:
        missing = ""
    elif not record.consent_referral:
        missing = Text("The caller's consent to referral is not recorded.")
    else:
        missing = Text("The caller is under 16: both the child and the legal representative must consent.")
    return {"given": given, "missing": missing, "to": scope.get("to") or "", "data": scope.get("data") or "",
            "child": child, "imminent": record.risk == "imminent",
            "override_possible": child or record.risk == "imminent"}


def _words(text: str) -> str:
    return " " + " ".join(fold(text or "").lower().replace(",", " ").replace(";", " ").split()) + " "


def _within_to(scope_to: str, target: dict[str, Any]) -> bool:
    """Whether a service fits the recorded "refer to": its name, organisation, or type named."""
    if not scope_to.strip():
        return True
    hay = _words(scope_to)
    if any(f" {w} " in hay for w in ANY_WORDS):
        return True
    from directory.service import service_types

    t = service_types().get(target.get("service_type") or "")
    names = [target.get("name") or "", target.get("organization") or "", target.get("service_type") or ""]
    if t is not None:
        names += [getattr(t, "vi", ""), getattr(t, "en", ""), *list(getattr(t, "words", ()) or ())]
    for n in names:
        w = _words(n).strip()
        if w and f" {w} " in hay:
            return True
    return False


def _extra_allowed(scope_data: str, extra: str) -> bool:
    hay = _words(scope_data)
    if any(f" {w} " in hay for w in ANY_WORDS):
        return True
    return any(f" {w} " in hay for w in EXTRAS[extra][2])


def check_consent(record: CallRecord, *, actor: Any, req: ReferralRequest, targets: list[dict[str, Any]]) -> bool:
    """Raise ``ReferralError`` unless the referral is covered by the recorded consent (and its scope),
    or a supervisor overrides for a child or imminent danger with a written reason.
    Returns True when the referral goes ahead on an override."""
    c = consent_state(record)
    if not c["given"]:
        if not c["override_possible"]:
            raise ReferralError({"consent": Text("%(missing)s Ask the caller and record the consent on the call "
                                                 "record first.", missing=c["missing"])})
        if actor.role not in OVERRIDE_ROLES:
            raise ReferralError({"consent": Text("%(missing)s For a child or imminent danger a supervisor may refer "
                                                 "with a written reason.", missing=c["missing"])})
        if len(req.override_reason) < REASON_MIN:
            raise ReferralError({"override_reason": Text("Write why you refer without consent (at least %(min)d "
                                                         "characters).", min=REASON_MIN)})
        return True
    errors: dict[str, Text] = {}
    outside = [t["name"] for t in targets if not _within_to(c["to"], t)]
    if outside:
        errors["service_ids"] = Text("Outside what the caller agreed to (\"%(scope)s\"): %(services)s. Change the "
                                     "consent on the record if the caller agrees, or choose another service.",
                                     scope=c["to"], services=", ".join(outside))
    refused = [x for x in req.extras if not _extra_allowed(c["data"], x)]
    if refused:
        errors["extras"] = Text("The caller did not agree to share: %(items)s (recorded: \"%(scope)s\"). Untick "
                                "them, or record the caller's wider consent first.",
                                items=[{"vi": EXTRAS[x][0], "en": EXTRAS[x][1]} for x in refused], scope=c["data"] or "-")
    if errors:
        raise ReferralError(errors)
    return False


# ---------------------------------------------------------------------- content
def _label(scheme: str, code: str | None, lang: str) -> str:
    if not code:
        return ""
    return get_taxonomies().label(scheme, code, lang)


def new_code() -> str:
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "HL-" + "".join(secrets.choice(alphabet) for _ in range(8))


def build_content(session: Session, record: CallRecord, req: ReferralRequest, *, code: str) -> dict[str, Any]:
    """Exactly what the partner receives about the case (minimal unless ticked)."""
    centre = session.get(Centre, record.centre_id)
    method = record.callback_safe_method if record.consent_callback else None
    content: dict[str, Any] = {
        "code": code,
        "centre": centre.name if centre else "",
        "issue": {"code": record.primary_issue or "", "vi": _label("issue", record.primary_issue, "vi"),
                  "en": _label("issue", record.primary_issue, "en")},
        "urgency": req.urgency,
        "ask": req.ask,
        "contact": {
            "method": method or "none",
            "vi": _label("contact_method", method, "vi") if method else "Không liên hệ trực tiếp người gọi; liên hệ trung tâm",
            "en": _label("contact_method", method, "en") if method else "Do not contact the caller directly; contact the centre",
            "safe_time": (record.callback_safe_time or "") if method else "",
        },
    }
    extra: dict[str, Any] = {}
    if "caller_name" in req.extras:
        extra["caller_name"] = req.caller_name
    if "age_group" in req.extras:
        extra["age_group"] = {"code": record.caller_age_group, "vi": _label("age_group", record.caller_age_group, "vi"),
                              "en": _label("age_group", record.caller_age_group, "en")}
    if "province" in req.extras:
        extra["province_code"] = record.province_code or ""
        extra["commune_code"] = record.commune_code or ""
    if "notes" in req.extras:
        extra["notes"] = record.notes or ""
    if extra:
        content["extra"] = extra
    return content


def _target(session: Session, service_id: str) -> dict[str, Any]:
    from directory import service as directory

    try:
        t = directory.referral_target(session, service_id)
        svc = directory.get(session, service_id=service_id)
    except LookupError:
        raise ReferralError({"service_ids": Text("No directory service %(id)r.", id=service_id)}) from None
    t = dict(t)
    t.update({"organization_id": svc.organization_id, "organization": svc.organization.name,
              "service_type": svc.service_type, "beds_free": svc.beds_free})
    problem: Text | str = ""
    if not t["accepts"]:
        problem = Text("this service does not take referrals through hotline")
    elif t["method"] == "webhook" and not t["webhook_url"]:
        problem = Text("the directory has no webhook URL")
    elif t["method"] == "webhook" and not t["webhook_secret"]:
        problem = Text("the directory has no webhook secret")
    elif t["method"] == "email" and not t["email"]:
        problem = Text("the directory has no referral e-mail")
    elif t["method"] == "sms" and not t["sms"]:
        problem = Text("the directory has no referral SMS number")
    elif t["method"] not in ("webhook", "email", "sms"):
        problem = Text("no referral method chosen in the directory")
    t["problem"] = problem
    return t


def _targets(session: Session, req: ReferralRequest) -> list[dict[str, Any]]:
    targets = [_target(session, sid) for sid in req.service_ids]
    bad = [Text("service %(service)s: %(problem)s", service=t["name"], problem=t["problem"]) for t in targets if t["problem"]]
    if bad:
        raise ReferralError({"service_ids": Text("%(problems)s. Fix the directory entry or choose another service.",
                                                 problems=bad)})
    return targets


def _record_for(session: Session, *, record_id: int, actor: Any) -> CallRecord:
    if actor.role not in CREATE_ROLES:
        raise NotAllowed(Text("You may not refer this record."), record_id)
    try:
        return records.get_record(session, record_id=record_id, actor=actor, for_edit=True)
    except records.NotFound:
        raise NotFound(Text("No such record, or you may not see it."), record_id) from None
    except records.NotAllowed:
        raise NotAllowed(Text("You may not refer this record."), record_id) from None


def preview(session: Session, *, record_id: int, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    """What each partner would receive; raises ``ReferralError`` exactly as ``create`` would."""
    record = _record_for(session, record_id=record_id, actor=actor)
    req = parse_request(data)
    targets = _targets(session, req)
    override = check_consent(record, actor=actor, req=req, targets=targets)
    content = build_content(session, record, req, code="HL-XXXXXXXX")
    items = [{"service": t, "payload": partner_payload(content=content, public_id="…", delivery_id="…",
                                                        created_at=utcnow(), expires_at=_expiry(utcnow()),
                                                        respond_url=f"{_base()}/r/…")} for t in targets]
    return {"record": record, "request": req, "override": override, "content": content, "items": items}


def _base() -> str:
    return get_settings().public_base_url.rstrip("/")


def _expiry(now: datetime) -> datetime:
    return now + timedelta(hours=max(1, get_settings().referral_link_hours))


def _event(session: Session, ref: Referral, action: str, actor: str, **detail: Any) -> None:
    ev = Event(referral_id=ref.id, at=utcnow(), action=action, state=ref.state, actor=actor[:255], detail=detail)
    session.add(ev)


def create(session: Session, *, record_id: int, actor: Any, data: dict[str, Any],
           request: Any = None) -> list[Referral]:
    """Create one referral per chosen service and queue its delivery (after the commit)."""
    record = _record_for(session, record_id=record_id, actor=actor)
    req = parse_request(data)
    targets = _targets(session, req)
    override = check_consent(record, actor=actor, req=req, targets=targets)
    now = utcnow()
    made: list[Referral] = []
    for t in targets:
        code = new_code()
        content = build_content(session, record, req, code=code)
        ref = Referral(public_id=uuid.uuid4().hex, code=code, record_id=record.id, centre_id=record.centre_id,
                       service_id=t["service_id"], service_name=t["name"], service_type=t["service_type"],
                       organization_id=t["organization_id"], organization_name=t["organization"],
                       method=t["method"], state="queued", urgency=req.urgency, ask=req.ask, extras=req.extras,
                       content=content, override_reason=req.override_reason if override else None,
                       created_by=actor.id or None, created_at=now, updated_at=now, expires_at=_expiry(now))
        session.add(ref)
        session.flush()
        target = {"webhook": t["webhook_url"], "email": t["email"], "sms": t["sms"]}[t["method"]]
        session.add(Delivery(delivery_id=uuid.uuid4().hex, referral_id=ref.id, method=t["method"], target=target,
                             status="pending", created_at=now))
        session.add(Link(id=secrets.token_urlsafe(16), referral_id=ref.id, created_at=now, expires_at=ref.expires_at))
        _event(session, ref, "created", actor.username, urgency=req.urgency, extras=req.extras,
               override=bool(override))
        audit.record(session, actor=actor, action="referral.create", object_type="referral", object_id=ref.id,
                     request=request, detail={"record_id": record.id, "service_id": t["service_id"],
                                              "extras": req.extras, "urgency": req.urgency})
        if override:
            audit.record(session, actor=actor, action="referral.consent_override", object_type="referral",
                         object_id=ref.id, request=request,
                         detail={"record_id": record.id, "reason": req.override_reason,
                                 "child": is_child(record), "risk": record.risk})
        made.append(ref)
    session.flush()
    return made


# ---------------------------------------------------------------------- what partners receive
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


# ---------------------------------------------------------------------- delivery bookkeeping
def claim(session: Session, *, delivery_id: str, now: datetime | None = None) -> dict[str, Any] | None:
    """Take a delivery for one try, atomically (two workers never send the same try twice), and
    return what the try needs: ``{delivery pk, method, target, attempts, referral fields, payload}``.
    None when there is nothing to send (already sent, dead, cancelled, or another worker has it).
    Few round trips on purpose: it runs once per job."""
    from sqlalchemy import or_, update

    now = now or utcnow()
    stale = now - timedelta(minutes=5)
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
    state, content, public_id, created_at, expires_at, service_id, link_id = ref
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
    if moved.rowcount:
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


# ---------------------------------------------------------------------- staff reading
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


def staff_payload(session: Session, ref: Referral) -> dict[str, Any]:
    """What the partner received, as staff may see it: without the partner's single-use respond link
    (whoever holds it can answer in the partner's name)."""
    payload = payload_for(session, ref)
    payload.pop("respond_url", None)
    return payload


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


# ---------------------------------------------------------------------- the partner's answer
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


# --------------------------------------------------------- single-use links (partners without accounts)
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


# ---------------------------------------------------------------------- partner users
def partner_org(session: Session, *, user_id: int) -> str | None:
    m = session.get(PartnerMember, user_id)
    return m.organization_id if m else None


def link_partner(session: Session, *, user_id: int, organization_id: str, by: str) -> PartnerMember:
    from directory.models import Organization  # the organisation must exist in the directory

    from hotline.auth.models import User

    user = session.get(User, user_id)
    if user is None or user.role != "partner":
        raise ReferralError({"username": Text("Only an account with the partner role can be linked.")})
    if session.get(Organization, organization_id) is None:
        raise ReferralError({"organization_id": Text("No organisation %(id)r in the directory.",
                                                     id=organization_id)})
    m = session.get(PartnerMember, user_id)
    if m is None:
        m = PartnerMember(user_id=user_id, organization_id=organization_id, created_at=utcnow(), created_by=by)
        session.add(m)
    else:
        m.organization_id, m.created_by, m.created_at = organization_id, by, utcnow()
    session.flush()
    return m


def unlink_partner(session: Session, *, user_id: int) -> bool:
    m = session.get(PartnerMember, user_id)
    if m is None:
        return False
    session.delete(m)
    return True


def partner_members(session: Session) -> list[tuple[PartnerMember, str, str]]:
    from directory.models import Organization

    from hotline.auth.models import User

    rows = session.execute(select(PartnerMember, User.username, Organization.name)
                           .join(User, User.id == PartnerMember.user_id)
                           .outerjoin(Organization, Organization.id == PartnerMember.organization_id)
                           .order_by(User.username)).all()
    return [(m, u, o or "") for m, u, o in rows]


def list_for_partner(session: Session, *, user_id: int, limit: int = 200) -> list[Referral]:
    org = partner_org(session, user_id=user_id)
    if org is None:
        return []
    return list(session.scalars(select(Referral).where(Referral.organization_id == org)
                                .order_by(Referral.created_at.desc()).limit(limit)))


def get_for_partner(session: Session, *, public_id: str, user_id: int) -> Referral:
    org = partner_org(session, user_id=user_id)
    ref = session.scalar(select(Referral).where(Referral.public_id == public_id))
    if ref is None or org is None or ref.organization_id != org:
        # never say whether another organisation's referral exists
        raise NotFound(Text("No such referral for your organisation."), public_id)
    return ref


# ---------------------------------------------------------------------- webhook acknowledgements
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
    return session.execute(delete(AckNonce).where(AckNonce.received_at < cutoff)).rowcount or 0


# ---------------------------------------------------------------------- escalation and expiry
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


def digest_text(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ---------------------------------------------------------------------- retention
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
