"""The call record form: pages for people, JSON for the autosaving script.

* ``GET /records``: the records the signed-in person may see.
* ``GET/POST /records/new``: a record without a telephony call (walk-in, personal phone, 111).
* ``POST /records/for-call/{call_id}``: open (create on first use) the record of a call.
* ``GET /records/{id}``: the form.  ``PUT /records/{id}``: autosave (JSON, ``X-CSRF-Token``);
  409 with the differences when the tab is stale, 422 with field messages.
* ``POST /records/{id}``: save or complete from the form.
* ``POST /records/{id}/close-nc``: one-action close of a non-counselling call.
* ``GET /records/{id}/history``: every edit after completion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm.exc import StaleDataError

from hotline import domains
from hotline.audit import service as audit
from hotline.auth.deps import Principal, csrf_protect, require_roles, wants_json
from hotline.db import session_scope
from hotline.i18n import N_, translator
from hotline.records import places, service
from hotline.records.ui import pop_labels, text
from hotline.taxonomy import get_taxonomies
from hotline.web import add_template_dir, render

add_template_dir(Path(__file__).parent / "templates")
router = APIRouter()
staff = require_roles("counsellor", "supervisor", "administrator")


async def staff_write(request: Request, principal: Principal = Depends(staff)) -> Principal:
    """Signed in first (401 keeps the draft and asks to sign in again), then the CSRF token (403)."""
    await csrf_protect(request)
    return principal


NOT_FOUND = N_("No such record, or you may not see it.")
NOT_ALLOWED = N_("You may not change this record.")


def _t(principal: Principal, msgid: str) -> str:
    """``msgid`` in the principal's language."""
    return translator(principal.language)(msgid)


def _json(request: Request) -> bool:
    return wants_json(request) or request.headers.get("content-type", "").startswith("application/json")


def form_context(record: Any, lang: str, *, values: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None, conflict: dict[str, Any] | None = None) -> dict[str, Any]:
    tax = get_taxonomies()
    current = service.snapshot(record)
    if values:
        current.update(values)
    return {
        "record": record,
        "values": current,
        "errors": errors or {},
        "conflict": conflict,
        "sections": list(service.iter_field_sections(lang)),
        "choices": {f.scheme: service.choices(f.scheme, lang) for f in service.FIELDS if f.scheme},
        "issue_groups": service.issue_terms(lang),
        "nc_quick": [(c, tax.label("issue", c, lang)) for c in service.NON_COUNSELLING_QUICK],
        "field_label": lambda name: service.field_label(name, lang),
        "issue_label": lambda code: tax.label("issue", code, lang),
        "t": text(lang),
        "snapshot_json": current,
        "pop_labels": pop_labels(lang),
        "locked": record.locked_at is not None,
        "lock_reason_max": service.LOCK_REASON_MAX,
        "province_name": places.province_name,
        "commune_name": places.commune_name,
        "status_label": lambda c: tax.label("call_status", c, lang),
        "risk_imminent": current.get("risk") == "imminent",
    }


def call_card_context(db: Any, record: Any, principal: Principal) -> dict[str, Any]:
    """The call this record belongs to, for the top of the page (number masked, no history rows)."""
    from hotline.live import service as live

    if not record.call_id:
        return {"card": None}
    try:
        call = live.get_call(db, call_id=record.call_id, actor=principal)
    except (LookupError, live.LiveError):
        return {"card": None}
    return {"card": live.call_card(db, call=call, actor=principal), "card_record_url": f"/records/{record.id}"}


def workspace_context(request: Request, db: Any, record: Any, principal: Principal, *,
                      errors: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything the record form needs, on its own page or on the live screen."""
    ctx = form_context(record, principal.language, errors=errors)
    ctx.update(call_card_context(db, record, principal))
    ctx["editable"] = service.can_edit(principal, record)
    ctx["call_id"] = record.call_id
    # Panels the domains declare in hotline.domains (e.g. referrals), so this view names none.
    ctx["panels"] = [panel(request, db, record, principal) for panel in domains.record_panels()]
    return ctx


def display_value(name: str, value: Any, lang: str) -> str:
    """A stored value as words for a page (labels, yes/no, place names), never a raw code."""
    tr = translator(lang)
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(display_value(name, v, lang) for v in value)
    if isinstance(value, bool):
        return tr(N_("Yes")) if value else tr(N_("No"))
    f = service.FIELD_BY_NAME.get(name)
    if name in ("issues", "primary_issue"):
        return get_taxonomies().label("issue", str(value), lang)
    if f is not None and f.scheme:
        return get_taxonomies().label(f.scheme, str(value), lang)
    if f is not None and f.kind == "province":
        return places.province_name(str(value)) or str(value)
    if f is not None and f.kind == "commune":
        return places.commune_name(str(value)) or str(value)
    return str(value)


def _form_text(form: Any, name: str) -> str | None:
    """A text field of a submitted form (None when absent or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else None


def _lang(principal: Principal) -> str:
    return principal.language


@router.get("/records")
def list_page(request: Request, state: str | None = None, principal: Principal = Depends(staff)) -> Response:
    lang = _lang(principal)
    with session_scope() as db:
        rows = service.list_records(db, actor=principal, state=state if state in {"draft", "completed"} else None)
        audit.record(db, actor=principal, action="record.list", object_type="call_record", object_id=None,
                     request=request, detail={"count": len(rows), "state": state})
        items = [{"id": r.id, "state": r.state, "created_at": r.created_at, "channel": r.channel,
                  "primary_issue": r.primary_issue, "counsellor_id": r.counsellor_id, "call_id": r.call_id,
                  "flags": list(r.flags or [])}
                 for r in rows]
    tax = get_taxonomies()
    return render(request, "records/list.html", {
        "items": items, "state": state, "t": text(lang),
        "issue_label": lambda c: tax.label("issue", c, lang),
        "channel_label": lambda c: tax.label("record_channel", c, lang),
    })


@router.get("/records/new")
def new_page(request: Request, principal: Principal = Depends(staff)) -> Response:
    lang = _lang(principal)
    channels = [(c, get_taxonomies().label("record_channel", c, lang)) for c in service.RECORD_CHANNELS_WITHOUT_CALL]
    return render(request, "records/new.html", {"channels": channels, "t": text(lang)})


@router.post("/records/new")
async def create(request: Request, principal: Principal = Depends(staff_write)) -> Response:
    form = await request.form()
    channel = str(form.get("channel") or "")
    with session_scope() as db:
        record = service.create_without_call(db, actor=principal, channel=channel)
        audit.record(db, actor=principal, action="record.create", object_type="call_record",
                     object_id=record.id, request=request, detail={"channel": channel})
        record_id = record.id
    return RedirectResponse(f"/records/{record_id}", status_code=303)


@router.post("/records/for-call/{call_id}")
def for_call(call_id: int, request: Request, principal: Principal = Depends(staff_write)) -> Response:
    with session_scope() as db:
        record = service.open_for_call(db, call_id=call_id, actor=principal)
        audit.record(db, actor=principal, action="record.open", object_type="call_record",
                     object_id=record.id, request=request, detail={"call_id": call_id})
        record_id, version = record.id, record.version
    if _json(request):
        return JSONResponse({"id": record_id, "version": version, "url": f"/records/{record_id}"})
    return RedirectResponse(f"/records/{record_id}", status_code=303)


def _viewed(db: Any, record_id: int, principal: Principal, request: Request, action: str) -> Any:
    """The record if this principal may see it (404 otherwise), with the view audited."""
    record = service.get_record(db, record_id=record_id, actor=principal)
    audit.record(db, actor=principal, action=action, object_type="call_record", object_id=record.id,
                 request=request)
    return record


@router.get("/records/places/provinces")
def province_choices(q: str = "", principal: Principal = Depends(staff)) -> Response:
    """Type-ahead for the province picker: current and old names, diacritics ignored."""
    return JSONResponse({"items": places.search_provinces(q[:100])}, headers={"Cache-Control": "private, max-age=300"})


@router.get("/records/places/communes")
def commune_choices(province: str = "", q: str = "", principal: Principal = Depends(staff)) -> Response:
    if not places.province_name(province):
        return JSONResponse({"detail": _t(principal, N_("Choose the province first.")), "items": []},
                            status_code=422)
    return JSONResponse({"items": places.search_communes(province, q[:100])},
                        headers={"Cache-Control": "private, max-age=300"})


@router.get("/records/{record_id}")
def form_page(record_id: int, request: Request, check: str = "", principal: Principal = Depends(staff)) -> Response:
    lang = _lang(principal)
    with session_scope() as db:
        record = _viewed(db, record_id, principal, request, "record.view")
        errors = None
        if check == "complete" and record.state == "draft":  # after a refused completion (POST/redirect/GET)
            errors = {k: m.translate(lang) for k, m in service.completeness_errors(record).items()} or None
        ctx = workspace_context(request, db, record, principal, errors=errors)
        ctx["on_record"] = True
        return render(request, "records/form.html", ctx, status_code=200)


def _conflict_body(exc: service.VersionConflict, lang: str) -> dict[str, Any]:
    return {
        "detail": translator(lang)(N_("The record was changed elsewhere (version %(version)s). Review the "
                                      "differences and choose.")) % {"version": exc.current_version},
        "current_version": exc.current_version,
        "differences": {k: {**v, "label": service.field_label(k, lang)} for k, v in exc.differences.items()},
    }


@router.put("/records/{record_id}")
async def autosave(record_id: int, request: Request, principal: Principal = Depends(staff_write)) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"detail": _t(principal, N_("The body is not JSON."))}, status_code=400)
    if not isinstance(body, dict) or not isinstance(body.get("fields", {}), dict):
        return JSONResponse({"detail": _t(principal, N_('Expected {"version": n, "fields": {…}}.'))},
                            status_code=400)
    fields = body.get("fields", {})
    complete = bool(body.get("complete"))
    merged = bool(body.get("merge"))
    lang = _lang(principal)
    with session_scope() as db:
        record = service.get_record(db, record_id=record_id, actor=principal, for_edit=True)
        try:
            record = service.save(db, record=record, actor=principal, data=fields, version=body.get("version"),
                                  complete=complete, merged=merged)
            db.flush()
        except service.VersionConflict as exc:
            return JSONResponse(_conflict_body(exc, lang), status_code=409)
        except StaleDataError:
            raced = service.conflict_after_race(db, record_id=record_id, actor=principal, data=fields)
            return JSONResponse(_conflict_body(raced, lang), status_code=409)
        except service.RecordError as exc:
            version: Any = record.version
            if exc.keep_draft:
                db.commit()
            else:
                db.rollback()
                version = body.get("version")
            errors = exc.translated(_lang(principal))
            return JSONResponse({"detail": " ".join(errors.values()), "errors": errors,
                                 "version": version}, status_code=422)
        audit.record(db, actor=principal, action="record.complete" if complete else "record.save",
                     object_type="call_record", object_id=record.id, request=request,
                     detail={"version": record.version, "fields": sorted(fields)})
        news = _news(record) if complete else None
        out = {"id": record.id, "version": record.version, "state": record.state,
               "saved_at": record.updated_at.isoformat()}
        if complete:
            out["next"] = f"/live?completed={record.id}"  # back to the live screen
    _announce(news)
    return JSONResponse(out)


@router.post("/records/{record_id}")
async def submit(record_id: int, request: Request, principal: Principal = Depends(staff_write)) -> Response:
    form = await request.form()
    data: dict[str, Any] = {k: v for k, v in form.items() if k not in {"csrf_token", "version", "action"}}
    data["issues"] = [str(v) for v in form.getlist("issues")]
    complete = form.get("action") == "complete"
    lang = _lang(principal)
    with session_scope() as db:
        record = service.get_record(db, record_id=record_id, actor=principal, for_edit=True)
        try:
            service.save(db, record=record, actor=principal, data=data, version=_form_text(form, "version"),
                         complete=complete, present_bools=True)
        except service.VersionConflict as exc:
            ctx = form_context(record, lang, conflict=_conflict_body(exc, lang))
            ctx.update(call_card_context(db, record, principal))
            ctx["editable"] = True
            ctx["call_id"] = record.call_id
            ctx["on_record"] = True
            return render(request, "records/form.html", ctx, status_code=409)
        except service.RecordError as exc:
            if exc.keep_draft:
                # What was typed is saved; only completion was refused: POST/redirect/GET, so going
                # back never asks to resend the form. The page lists what is missing.
                db.commit()
                return RedirectResponse(f"/records/{record_id}?check=complete#form-errors", status_code=303)
            db.rollback()
            record = service.get_record(db, record_id=record_id, actor=principal)
            values = {k: v for k, v in data.items() if k in service.FIELD_BY_NAME or k in {"issues", "primary_issue", "lock_reason"}}
            ctx = form_context(record, lang, values=values, errors=exc.translated(_lang(principal)))
            ctx.update(call_card_context(db, record, principal))
            ctx["editable"] = True
            ctx["call_id"] = record.call_id
            ctx["on_record"] = True
            return render(request, "records/form.html", ctx, status_code=422)
        audit.record(db, actor=principal, action="record.complete" if complete else "record.save",
                     object_type="call_record", object_id=record.id, request=request,
                     detail={"version": record.version})
        news = _news(record)
    _announce(news)  # after the commit, so a wallboard that re-reads sees the record
    if complete:
        return RedirectResponse(f"/live?completed={record_id}", status_code=303)
    return RedirectResponse(f"/records/{record_id}", status_code=303)


def _news(record: Any) -> tuple[int, dict[str, Any]] | None:
    """What the wallboard is told about a completed record: ids and codes only."""
    if record.state != "completed":
        return None
    return record.centre_id, {"type": "record", "record": {
        "id": record.id, "state": record.state, "primary_issue": record.primary_issue,
        "version": record.version, "counsellor_id": record.counsellor_id}}


def _announce(news: tuple[int, dict[str, Any]] | None) -> None:
    if news is None:
        return
    from hotline import bus

    bus.publish(f"centre:{news[0]}", news[1])


@router.post("/records/{record_id}/close-nc")
async def close_nc(record_id: int, request: Request, principal: Principal = Depends(staff_write)) -> Response:
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        code, version = str(body.get("code") or ""), body.get("version")
        reason = str(body.get("lock_reason") or "")
    else:
        form = await request.form()
        code, version = str(form.get("code") or ""), form.get("version")
        reason = str(form.get("lock_reason") or "")
    with session_scope() as db:
        try:
            record = service.get_record(db, record_id=record_id, actor=principal, for_edit=True)
            record = service.close_non_counselling(db, record=record, actor=principal, code=code,
                                                   version=int(version) if version not in (None, "") else None,
                                                   reason=reason)
        except service.VersionConflict as exc:
            return JSONResponse(_conflict_body(exc, _lang(principal)), status_code=409)
        except (service.RecordError, ValueError) as exc:
            db.rollback()
            errors = exc.translated(_lang(principal)) if isinstance(exc, service.RecordError) else {"version": str(exc)}
            if _json(request):
                return JSONResponse({"detail": " ".join(errors.values()), "errors": errors}, status_code=422)
            raise HTTPException(422, detail=" ".join(errors.values())) from None
        audit.record(db, actor=principal, action="record.close_non_counselling", object_type="call_record",
                     object_id=record.id, request=request, detail={"code": code})
        news = _news(record)
        out = {"id": record.id, "version": record.version, "state": record.state}
    _announce(news)
    if _json(request):
        return JSONResponse(out)
    return RedirectResponse(f"/live?completed={record_id}", status_code=303)


@router.get("/records/{record_id}/history")
def history(record_id: int, request: Request, principal: Principal = Depends(staff)) -> Response:
    lang = _lang(principal)
    with session_scope() as db:
        record = _viewed(db, record_id, principal, request, "record.history")
        revs = [{"version": r.version, "action": r.action, "user_id": r.user_id, "at": r.at,
                 "changes": r.changes} for r in service.revisions(db, record=record)]
        from hotline.auth import service as users

        names = {u.id: (u.display_name or u.username) for u in users.list_users(db)}
        return render(request, "records/history.html", {
            "record": record, "revisions": revs, "names": names, "t": text(lang),
            "action_label": lambda a: service.revision_action_label(a, lang),
            "value_label": lambda name, v: display_value(name, v, lang),
            "field_label": lambda name: service.field_label(name, lang)})
