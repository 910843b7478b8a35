"""Referral pages and API.

Staff (counsellor, supervisor, administrator):
* ``GET /records/{id}/referrals/new``: choose services (directory search), urgency, what is asked,
  optional extra data; ``POST /records/{id}/referrals`` with ``action=preview`` shows exactly what
  each partner receives, ``action=send`` creates the referrals and queues their delivery.
* ``GET /referrals``, ``GET /referrals/{id}``; ``POST /referrals/{id}/cancel``, ``/retry``.
* ``GET/POST /referrals/admin/partners``: administrators link partner accounts to organisations.
Partners:
* ``GET /partner``, ``GET/POST /partner/referrals/{public_id}``: signed-in partner users, own
  organisation only.
* ``GET/POST /r/{token}``: the single-use signed link for partners without accounts.
* ``POST /api/referrals/ack``: a webhook partner's signed acknowledgement (see PARTNERS.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from hotline.audit import service as audit
from hotline.auth.deps import Principal, csrf_protect, request_language, require_roles, resolve_principal, wants_json
from hotline.db import session_scope
from hotline.i18n import N_, Text, translator
from hotline.settings import get_settings
from hotline.taxonomy import get_taxonomies
from hotline.web import add_template_dir, render, template_context, templates
from referral import jobs, service, signing
from referral.models import STATES, URGENCIES, Referral

add_template_dir(Path(__file__).parent / "templates")
log = logging.getLogger(__name__)
router = APIRouter()
staff = require_roles("counsellor", "supervisor", "administrator")
partners = require_roles("partner")
admins = require_roles("administrator")


async def staff_write(request: Request, principal: Principal = Depends(staff)) -> Principal:
    await csrf_protect(request)
    return principal


async def partner_write(request: Request, principal: Principal = Depends(partners)) -> Principal:
    await csrf_protect(request)
    return principal


async def admin_write(request: Request, principal: Principal = Depends(admins)) -> Principal:
    await csrf_protect(request)
    return principal


def _t(principal: Principal | None, request: Request | None = None) -> Any:
    if principal is not None:
        return translator(principal.language)
    return translator(request_language(request) if request is not None else None)


def _errors(request: Request, exc: service.ReferralError) -> dict[str, str]:
    """The refusal's messages in the reader's language (Vietnamese for a partner's link page)."""
    return exc.translated(request_language(request))


def _json(request: Request) -> bool:
    return wants_json(request) or request.headers.get("content-type", "").startswith("application/json")


async def _form_data(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        return body if isinstance(body, dict) else {}
    form = await request.form()
    data: dict[str, Any] = {k: form.get(k) for k in form}
    data["service_ids"] = form.getlist("service_ids")
    data["extras"] = form.getlist("extras")
    return data


def pretty(value: Any) -> str:
    """JSON as a person reads it (Vietnamese letters as they are); the template escapes it."""
    import json

    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _labels(lang: str) -> dict[str, Any]:
    _ = translator(lang)
    return {
        "state": service.state_labels(lang),
        "urgency": {"routine": _("Routine"), "urgent": _("Urgent"), "emergency": _("Emergency")},
        "method": {"webhook": _("Webhook"), "email": _("E-mail"), "sms": _("SMS")},
        "extras": {k: (v[1] if lang == "en" else v[0]) for k, v in service.EXTRAS.items()},
        "centre_phone": get_settings().centre_phone,
        "event": {"created": _("Created"), "opened": pgettext_opened(lang), "sent": _("Handed to the mail or SMS service"),
                  "delivered": _("Delivered to the partner's system"), "accepted": _("The partner accepted"),
                  "declined": _("The partner declined"), "retry": _("Delivery failed, will try again"),
                  "dead_letter": _("Delivery failed for good"), "requeued": _("Delivery tried again"),
                  "cancelled": _("Cancelled"), "expired": _("Expired without an answer"),
                  "escalated": _("Escalated to a supervisor")},
    }


def pgettext_opened(lang: str) -> str:
    """The partner opened the referral's page: not worded like the "accept" button."""
    _ = translator(lang)
    return _("The partner opened the referral (not answered yet)")


# ---------------------------------------------------------------------- the record page panel
def record_panel(request: Request, db: Any, record: Any, principal: Principal) -> Markup:
    """The referrals of a call record with their states (a record-page panel, see hotline.domains)."""
    if principal.role not in service.CREATE_ROLES:
        return Markup("")
    ctx = template_context(request, {"record": record, "referrals": service.for_record(db, record_id=record.id),
                                     "L": _labels(principal.language)})
    return Markup(templates.get_template("referral/_record_panel.html").render(ctx))


# Who sees referral alerts on the live screen (read through hotline.domains).
LIVE_VISIBILITY: dict[tuple[str, str], Any] = {
    ("referral_alert", "supervisor"): lambda v, m: True,
    ("referral_alert", "administrator"): lambda v, m: True,
    ("referral_alert", "counsellor"): lambda v, m: (m.get("alert") or {}).get("created_by") == v.user_id,
}


# ---------------------------------------------------------------------- creating (staff)
def _search(db: Any, q: str, service_type: str) -> list[dict[str, Any]]:
    from directory.search import Query, SearchError, search

    try:
        _, rows = search(db, Query(q=q, service_type=service_type or None, limit=30), staff=True)
    except (SearchError, ValueError):
        return []
    return rows


def _new_context(db: Any, record: Any, principal: Principal, *, values: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None, preview: dict[str, Any] | None = None) -> dict[str, Any]:
    from directory.service import service_types

    values = dict(values or {})
    q = str(values.get("q") or "")
    stype = str(values.get("service_type") or "")
    chosen = list(values.get("service_ids") or [])
    results = _search(db, q, stype) if (q or stype) else []
    shown = {r["id"] for r in results}
    for sid in chosen:  # keep chosen services visible whatever the search
        if sid not in shown:
            try:
                t = service._target(db, sid)
            except service.ReferralError:
                continue
            results.insert(0, {"id": sid, "name": t["name"], "organization": t["organization"],
                               "beds_free": t["beds_free"], "accepts_referrals": t["accepts"], "service_type": t["service_type"]})
    lang = principal.language
    return {
        "record": record, "consent": service.consent_state(record), "values": values, "errors": errors or {},
        "results": results, "chosen": chosen, "preview": preview, "L": _labels(lang),
        "urgency": values.get("urgency") or service.default_urgency(record),
        "types": [(code, (t.en if lang == "en" else t.vi)) for code, t in service_types().items()],
        "issue": get_taxonomies().label("issue", record.primary_issue, lang) if record.primary_issue else "",
        "may_override": principal.role in service.OVERRIDE_ROLES, "urgencies": URGENCIES, "pretty": pretty,
    }


def _load_record(db: Any, record_id: int, principal: Principal) -> Any:
    return service._record_for(db, record_id=record_id, actor=principal)


@router.get("/records/{record_id}/referrals/new")
def new_page(record_id: int, request: Request, q: str = "", service_type: str = "",
             principal: Principal = Depends(staff)) -> Response:
    with session_scope() as db:
        record = _load_record(db, record_id, principal)
        audit.record(db, actor=principal, action="record.view", object_type="call_record", object_id=record.id,
                     request=request, detail={"via": "referral.new"})
        ctx = _new_context(db, record, principal, values={"q": q, "service_type": service_type})
        return render(request, "referral/new.html", ctx)


@router.post("/records/{record_id}/referrals")
async def create(record_id: int, request: Request, principal: Principal = Depends(staff_write)) -> Response:
    data = await _form_data(request)
    action = str(data.get("action") or "send")
    as_json = _json(request)
    with session_scope() as db:
        record = _load_record(db, record_id, principal)
        try:
            if action == "preview":
                pv = service.preview(db, record_id=record_id, actor=principal, data=data)
                from referral import jobs

                for item in pv["items"]:  # the message itself, as the partner will see it
                    if item["service"]["method"] == "email":
                        subject, plain, _html = jobs.render_email(item["payload"])
                        item["message"] = f"Subject: {subject}\n\n{plain}"
                    elif item["service"]["method"] == "sms":
                        item["message"] = jobs.sms_text(item["payload"])
                if as_json:
                    return JSONResponse({"items": [{"service_id": i["service"]["service_id"], "method": i["service"]["method"],
                                                    "payload": i["payload"], "message": i.get("message")}
                                                   for i in pv["items"]]})
                return render(request, "referral/new.html", _new_context(db, record, principal, values=data, preview=pv))
            made = service.create(db, record_id=record_id, actor=principal, data=data, request=request)
            ids = [r.id for r in made]
        except service.ReferralError as exc:
            db.rollback()
            if as_json:
                return JSONResponse({"errors": _errors(request, exc)}, status_code=422)
            record = _load_record(db, record_id, principal)
            return render(request, "referral/new.html", _new_context(db, record, principal, values=data,
                                                                     errors=_errors(request, exc)), status_code=422)
    # Queued only once the referrals are committed, so a worker always finds them.
    from referral import jobs

    with session_scope() as db:
        refs = [db.get(Referral, i) for i in ids]
        deliveries = [r.delivery.delivery_id for r in refs if r is not None and r.delivery is not None]
    for delivery_id in deliveries:
        jobs.queue_delivery(delivery_id)
    if as_json:
        return JSONResponse({"referrals": ids}, status_code=201)
    return RedirectResponse(f"/records/{record_id}#referrals", status_code=303)


# ---------------------------------------------------------------------- staff list and detail
@router.get("/referrals")
def list_page(request: Request, state: str | None = None, principal: Principal = Depends(staff)) -> Response:
    with session_scope() as db:
        items = service.list_for_staff(db, actor=principal, state=state if state in STATES else None)
        audit.record(db, actor=principal, action="referral.list", object_type="referral", object_id=None,
                     request=request, detail={"state": state})
        return render(request, "referral/list.html", {"items": items, "L": _labels(principal.language),
                                                      "states": STATES, "state": state})


def _staff_ref(db: Any, referral_id: int, principal: Principal, for_edit: bool = False) -> Any:
    return service.get_for_staff(db, referral_id=referral_id, actor=principal, for_edit=for_edit)


FAILURE_SENTENCES = (  # (words in a technical reason, what a counsellor reads)
    ("smtp", N_("E-mail is not set up on this server yet, so the referral could not be sent by e-mail. "
                "Phone the partner, and ask an administrator to set up the mail server.")),
    ("sms", N_("The text message could not be sent. Phone the partner instead.")),
    ("cancelled", N_("The referral was cancelled before it was delivered.")),
)


def failure_sentence(reason: str, lang: str) -> str:
    """A delivery failure in the reader's language, never a Python exception."""
    _ = translator(lang)
    low = (reason or "").lower()
    for needle, sentence in FAILURE_SENTENCES:
        if needle in low:
            return _(sentence)
    return _("The partner's system could not be reached. Phone the partner, or try the delivery again later.")


def _detail(request: Request, db: Any, ref: Any, principal: Principal, errors: dict[str, str] | None = None,
            status_code: int = 200) -> Response:
    payload = service.staff_payload(db, ref) if ref.delivery else None
    message = ""
    if payload:
        try:
            message = jobs.render_email(payload)[1]
        except Exception:  # noqa: BLE001  (a page never fails on the preview; the raw detail is for staff below)
            message = ""
    return render(request, "referral/detail.html", {
        "ref": ref, "L": _labels(principal.language), "errors": errors or {}, "payload": payload,
        "message": message, "technical": principal.role in ("supervisor", "administrator"),
        "failure": failure_sentence(ref.failure_reason, principal.language) if ref.failure_reason else "",
        "max_attempts": service.max_attempts(), "pretty": pretty}, status_code=status_code)


@router.get("/referrals/{referral_id}")
def detail_page(referral_id: int, request: Request, principal: Principal = Depends(staff)) -> Response:
    with session_scope() as db:
        ref = _staff_ref(db, referral_id, principal)
        audit.record(db, actor=principal, action="referral.view", object_type="referral", object_id=ref.id,
                     request=request)
        if _json(request):
            return JSONResponse({"id": ref.id, "code": ref.code, "state": ref.state, "urgency": ref.urgency,
                                 "service_id": ref.service_id, "delivery": ref.delivery.status if ref.delivery else None,
                                 "attempts": ref.delivery.attempts if ref.delivery else 0,
                                 "failure_reason": ref.failure_reason, "decision_note": ref.decision_note})
        return _detail(request, db, ref, principal)


@router.post("/referrals/{referral_id}/cancel")
async def cancel(referral_id: int, request: Request, principal: Principal = Depends(staff_write)) -> Response:
    data = await _form_data(request)
    with session_scope() as db:
        _staff_ref(db, referral_id, principal, for_edit=True)
        try:
            service.cancel(db, referral_id=referral_id, actor=principal, reason=str(data.get("reason") or ""),
                           request=request)
        except service.ReferralError as exc:
            db.rollback()
            return _detail(request, db, _staff_ref(db, referral_id, principal), principal, _errors(request, exc), 422)
    return RedirectResponse(f"/referrals/{referral_id}", status_code=303)


@router.post("/referrals/{referral_id}/retry")
async def retry(referral_id: int, request: Request, principal: Principal = Depends(staff_write)) -> Response:
    with session_scope() as db:
        _staff_ref(db, referral_id, principal, for_edit=True)
        try:
            ref = service.retry_delivery(db, referral_id=referral_id, actor=principal, request=request)
            delivery_id = ref.delivery.delivery_id if ref.delivery else None
        except service.ReferralError as exc:
            db.rollback()
            return _detail(request, db, _staff_ref(db, referral_id, principal), principal, _errors(request, exc), 422)
    from referral import jobs

    if delivery_id:
        jobs.queue_delivery(delivery_id)
    return RedirectResponse(f"/referrals/{referral_id}", status_code=303)


# ---------------------------------------------------------------------- partner users
@router.get("/partner")
def partner_home(request: Request, principal: Principal = Depends(partners)) -> Response:
    with session_scope() as db:
        org = service.partner_org(db, user_id=principal.id)
        items = service.list_for_partner(db, user_id=principal.id)
        audit.record(db, actor=principal, action="referral.partner_list", object_type="referral", object_id=None,
                     request=request)
        return render(request, "referral/partner_list.html", {"items": items, "linked": org is not None,
                                                              "L": _labels(principal.language)})


def _partner_ref(db: Any, public_id: str, principal: Principal) -> Any:
    return service.get_for_partner(db, public_id=public_id, user_id=principal.id)


@router.get("/partner/referrals/{public_id}")
def partner_detail(public_id: str, request: Request, principal: Principal = Depends(partners)) -> Response:
    with session_scope() as db:
        ref = _partner_ref(db, public_id, principal)
        service.mark_opened(db, ref=ref, by=principal.username)
        audit.record(db, actor=principal, action="referral.partner_view", object_type="referral", object_id=ref.id,
                     request=request)
        return render(request, "referral/respond.html", {"ref": ref, "r": ref.content, "place": _place(ref), "L": _labels(principal.language),
                                                         "action": f"/partner/referrals/{ref.public_id}", "errors": {}})


@router.post("/partner/referrals/{public_id}")
async def partner_decide(public_id: str, request: Request, principal: Principal = Depends(partner_write)) -> Response:
    data = await _form_data(request)
    with session_scope() as db:
        ref = _partner_ref(db, public_id, principal)
        decision = str(data.get("decision") or "")
        try:
            if decision not in ("accepted", "declined"):
                raise service.ReferralError({"decision": Text("Choose accept or decline.")})
            service.decide(db, ref=ref, decision=decision, note=str(data.get("note") or ""), by=principal.username)
        except service.ReferralError as exc:
            db.rollback()
            ref = _partner_ref(db, public_id, principal)
            if _json(request):
                return JSONResponse({"errors": _errors(request, exc)}, status_code=422)
            return render(request, "referral/respond.html", {"ref": ref, "r": ref.content, "place": _place(ref), "L": _labels(principal.language),
                                                             "action": f"/partner/referrals/{ref.public_id}",
                                                             "errors": _errors(request, exc), "values": data}, status_code=422)
        audit.record(db, actor=principal, action=f"referral.{decision}", object_type="referral", object_id=ref.id,
                     request=request)
    if _json(request):
        return JSONResponse({"state": decision})
    return RedirectResponse(f"/partner/referrals/{public_id}", status_code=303)


def _place(ref: Referral) -> str:
    """The caller's commune and province by name (never the codes), when the caller agreed to share them."""
    from referral.content import place_label

    return place_label((ref.content or {}).get("extra"))


# ---------------------------------------------------------------------- single-use links
def _link_problem(request: Request, db: Any, exc: service.LinkProblem) -> Response:
    from hotline.centres.models import Centre

    centre = db.get(Centre, exc.ref.centre_id) if exc.ref is not None else None
    status = {"invalid": 404, "expired": 410, "used": 409}[exc.kind]
    return render(request, "referral/link_problem.html", {"kind": exc.kind, "centre": centre, "ref": exc.ref,
                                                          "L": _labels("vi")}, status_code=status)


@router.get("/r/{token}")
def link_page(token: str, request: Request) -> Response:
    with session_scope() as db:
        try:
            link, ref = service.open_link(db, token=token)
        except service.LinkProblem as exc:
            return _link_problem(request, db, exc)
        service.mark_opened(db, ref=ref, by="link")
        audit.record(db, actor="partner-link", action="referral.link_view", object_type="referral", object_id=ref.id,
                     request=request)
        principal = resolve_principal(request)
        return render(request, "referral/respond.html", {"ref": ref, "r": ref.content, "place": _place(ref),
                                                         "L": _labels(principal.language if principal else "vi"),
                                                         "action": f"/r/{token}", "errors": {}})


@router.post("/r/{token}", dependencies=[Depends(csrf_protect)])
async def link_answer(token: str, request: Request) -> Response:
    data = await _form_data(request)
    with session_scope() as db:
        try:
            ref = service.answer_by_link(db, token=token, decision=str(data.get("decision") or ""),
                                         note=str(data.get("note") or ""))
        except service.LinkProblem as exc:
            return _link_problem(request, db, exc)
        except service.ReferralError as exc:
            db.rollback()
            try:
                _, ref = service.open_link(db, token=token)
            except service.LinkProblem as exc2:
                return _link_problem(request, db, exc2)
            return render(request, "referral/respond.html", {"ref": ref, "r": ref.content, "place": _place(ref), "L": _labels("vi"),
                                                             "action": f"/r/{token}", "errors": _errors(request, exc),
                                                             "values": data}, status_code=422)
        audit.record(db, actor="partner-link", action=f"referral.{ref.state}", object_type="referral",
                     object_id=ref.id, request=request)
        return render(request, "referral/answered.html", {"ref": ref, "L": _labels("vi")})


# ---------------------------------------------------------------------- webhook acknowledgements
def _refused_ack(db: Any, request: Request, body: bytes, reason: str) -> None:
    """A refused acknowledgement leaves a log line and an audit entry (#14 finding 8): forged or
    replayed answers in someone's name are something to look into."""
    import hashlib

    detail = {"reason": reason, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(),
              "timestamp": request.headers.get("x-hotline-timestamp", "")[:40]}
    log.warning("referral acknowledgement refused: %s", reason, extra={"detail": detail})
    audit.record(db, actor="webhook:unknown", action="referral.acknowledge_refused", object_type="referral",
                 object_id=None, request=request, detail=detail)


@router.post("/api/referrals/ack")
async def acknowledge(request: Request) -> Response:
    body = await request.body()
    with session_scope() as db:
        try:
            ref = service.acknowledge_signed(db, body=body, timestamp=request.headers.get("x-hotline-timestamp", ""),
                                             signature=request.headers.get("x-hotline-signature", ""))
        except signing.BadSignature as exc:
            db.rollback()
            _refused_ack(db, request, body, str(exc))
            return JSONResponse({"error": "refused", "reason": str(exc), "detail": (
                f"Xác nhận bị từ chối: chữ ký hoặc thời điểm không hợp lệ. / Acknowledgement refused: {exc}.")},
                status_code=401)
        except service.ReferralError as exc:
            db.rollback()
            _refused_ack(db, request, body, "invalid body")
            errors = _errors(request, exc)
            return JSONResponse({"error": "invalid", "errors": errors, "detail": " ".join(errors.values())},
                                status_code=422)
        audit.record(db, actor=f"webhook:{ref.service_id}", action="referral.acknowledge", object_type="referral",
                     object_id=ref.id, request=request, detail={"state": ref.state})
        return JSONResponse({"referral_id": ref.public_id, "state": ref.state})


# ---------------------------------------------------------------------- administrators: partner accounts
def _partners_page(request: Request, db: Any, principal: Principal, errors: dict[str, str] | None = None,
                   values: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    from hotline.auth import service as accounts

    users = [u for u in accounts.list_users(db) if u.role == "partner"]
    return render(request, "referral/admin_partners.html", {
        "members": service.partner_members(db), "users": users, "errors": errors or {}, "values": values or {},
        "organisations": _organisations(db)}, status_code=status_code)


def _organisations(db: Any, limit: int = 5000) -> list[tuple[str, str]]:
    """(id, name) of the directory's organisations, by name: the picker's choices."""
    from sqlalchemy import select

    from directory.models import Organization

    return [(i, n) for i, n in db.execute(select(Organization.id, Organization.name)
                                          .order_by(Organization.name).limit(limit)).all()]


def _organisation_id(db: Any, value: str) -> str:
    """The picker sends an id; a name typed in full (one organisation of that name) is taken too."""
    from sqlalchemy import select

    from directory.models import Organization

    if not value or db.get(Organization, value) is not None:
        return value
    ids = list(db.scalars(select(Organization.id).where(Organization.name == value).limit(2)))
    return ids[0] if len(ids) == 1 else value


@router.get("/referrals/admin/partners")
def partners_page(request: Request, principal: Principal = Depends(admins)) -> Response:
    with session_scope() as db:
        return _partners_page(request, db, principal)


@router.post("/referrals/admin/partners")
async def partners_link(request: Request, principal: Principal = Depends(admin_write)) -> Response:
    from hotline.auth import service as accounts

    data = await _form_data(request)
    username = str(data.get("username") or "").strip()
    org = str(data.get("organization_id") or "").strip()
    with session_scope() as db:
        user = accounts.get_user(db, username=username) if username else None
        try:
            if user is None:
                raise service.ReferralError({"username": Text("No account %(user)r.", user=username)})
            if str(data.get("action") or "link") == "unlink":
                service.unlink_partner(db, user_id=user.id)
                action = "referral.partner_unlink"
            else:
                org = _organisation_id(db, org)
                service.link_partner(db, user_id=user.id, organization_id=org, by=principal.username)
                action = "referral.partner_link"
        except service.ReferralError as exc:
            db.rollback()
            return _partners_page(request, db, principal, _errors(request, exc), data, 422)
        audit.record(db, actor=principal, action=action, object_type="user", object_id=user.id, request=request,
                     detail={"organization_id": org})
    return RedirectResponse("/referrals/admin/partners", status_code=303)
