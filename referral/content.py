"""Building a referral: its minimal content, its targets in the directory, preview and create."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy.orm import Session

from hotline.audit import service as audit
from hotline.calls.models import CallRecord
from hotline.centres.models import Centre
from hotline.db import utcnow
from hotline.i18n import Text
from hotline.records import places
from hotline.records import service as records
from hotline.taxonomy import get_taxonomies
from referral.base import (
    CREATE_ROLES,
    NotAllowed,
    NotFound,
    ReferralError,
    ReferralRequest,
    _base,
    _event,
    _expiry,
    parse_request,
)
from referral.consent import check_consent, is_child
from referral.delivery import partner_payload
from referral.models import (
    Delivery,
    Link,
    PartnerMember,
    Referral,
)


def _label(scheme: str, code: str | None, lang: str) -> str:
    if not code:
        return ""
    return get_taxonomies().label(scheme, code, lang)


def place_label(extra: dict[str, Any] | None) -> str:
    """"Xã Nghĩa Hành, Quảng Ngãi": the caller's commune and province by name, never a code (the
    names are kept in the content since #13; older referrals kept only the codes)."""
    if not extra:
        return ""
    province = extra.get("province_name") or places.province_name(extra.get("province_code") or None)
    commune = extra.get("commune_name") or places.commune_name(extra.get("commune_code") or None)
    return ", ".join(p for p in (commune, province) if p)


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
        extra["province_name"] = places.province_name(record.province_code)
        extra["commune_name"] = places.commune_name(record.commune_code)
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
        _tell_partner_accounts(session, ref)
    session.flush()
    return made


def _tell_partner_accounts(session: Session, ref: Referral) -> None:
    """The organisation's partner accounts find the new referral in their inbox (whatever the delivery
    channel: an e-mail may be missed, the inbox is there at the next sign-in)."""
    from sqlalchemy import select

    from hotline.notifications import service as notifications

    members = list(session.scalars(select(PartnerMember.user_id).where(
        PartnerMember.organization_id == ref.organization_id)))
    if members:
        notifications.notify(session, user_ids=members, kind="referral.new", link=f"/partner/referrals/{ref.public_id}",
                             title=Text("New referral %(code)s for %(service)s: open it to accept or decline.",
                                        code=ref.code, service=ref.service_name))
