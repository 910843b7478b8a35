"""Directory pages and API.

- ``GET /api/directory/search``: JSON search (bearer ``HOTLINE_API_TOKEN`` or a staff session).
- ``GET /directory``: the counsellors' search page; ``GET /directory/panel``: the same results as
  an HTML fragment the live-call screen embeds (each result has a "given to the caller" button
  that POSTs ``{kind: "directory", ref_id, label}`` to ``/records/{record_id}/references``).
- ``/directory/admin…``: upkeep for administrators: add, edit, mark verified, entries not verified
  in 180 days, change history.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from directory import admin_form, hsds_api, validation
from directory import service as svc_mod
from directory.models import Service
from directory.places import places
from directory.schemas import FIELD_NAMES, FIELDS, SearchResponseOut
from directory.search import Query as SearchQuery
from directory.search import SearchError, parse_open_at, search
from directory.service_types import service_types
from hotline.audit.service import record as audit
from hotline.auth.deps import Principal, csrf_protect, request_language, require_roles
from hotline.db import db_session
from hotline.i18n import N_, Text, error_text, translate_value, translator
from hotline.web import add_template_dir, render

add_template_dir(Path(__file__).parent / "templates")
router = APIRouter()

STAFF = ("counsellor", "supervisor", "administrator")
ADMIN = ("administrator",)
STALE_DAYS = 180
STALE_PAGE = 200  # the oldest shown at once; verifying them brings the next ones


DB = Annotated[Session, Depends(db_session)]


def _query(q: str, type_: str | None, province: str | None, commune: str | None, open_now: bool,
           free_bed: bool, accessible: bool, language: str | None, limit: int,
           open_at: datetime | None = None) -> SearchQuery:
    return SearchQuery(q=q, service_type=type_ or None, province=province or None, commune=commune or None,
                       open_now=open_now, open_at=open_at, free_bed=free_bed, accessible=accessible,
                       language=language or None, limit=limit)


@router.get("/api/directory/search", response_model=SearchResponseOut)
def api_search(
    session: DB,
    principal: Annotated[Principal, Depends(require_roles(*STAFF))],
    q: str = "",
    type: str | None = None,
    province: str | None = None,
    commune: str | None = None,
    open_now: bool = False,
    free_bed: bool = False,
    accessible: bool = False,
    language: str | None = None,
    open_at: Annotated[str | None, Query(max_length=40, description="'2026-12-24 22:00' or '22:00' (today)")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    try:
        when = parse_open_at(open_at, principal.timezone) if open_at else None
        interp, results = search(session, _query(q, type, province, commune, open_now, free_bed, accessible,
                                                 language, limit, when), staff=True, timezone=principal.timezone)
    except SearchError as exc:
        raise HTTPException(422, error_text(exc, principal.language)) from None
    return {"query": q, "interpreted": interp.as_dict(), "open_at": when, "count": len(results), "results": results,
            "notices": [n.translate(principal.language) for n in interp.notices]}


def _search_context(session: Session, request: Request, record_id: int | None,
                    principal: Principal) -> dict[str, Any]:
    p = request.query_params
    flags = {k: p.get(k) in ("1", "true", "on", "yes") for k in ("open_now", "free_bed", "accessible")}
    form: dict[str, Any] = {"q": p.get("q", ""), "type": p.get("type", ""), "province": p.get("province", ""),
            "language": p.get("language", ""), "open_at": p.get("open_at", "")[:40], **flags}
    results: list[dict[str, Any]] = []
    error = ""
    interp = None
    searched = any(form[k] for k in ("q", "type", "province", "open_at")) or any(flags.values())
    open_at = None
    if searched:
        try:
            open_at = parse_open_at(form["open_at"], principal.timezone) if form["open_at"] else None
            interp, results = search(session, _query(form["q"], form["type"], form["province"], None,
                                                     flags["open_now"], flags["free_bed"], flags["accessible"],
                                                     form["language"], 20, open_at), staff=True,
                                      timezone=principal.timezone)
        except SearchError as exc:
            error = error_text(exc, principal.language)
    return {"form": form, "results": results, "error": error, "searched": searched, "record_id": record_id,
            "interp": interp, "types": list(service_types().values()), "type_by_code": service_types(),
            "open_at": open_at, "notices": [n.translate(principal.language) for n in interp.notices] if interp else [],
            "provinces": sorted(places().provinces.values(), key=lambda u: u.name)}


@router.get("/directory")
def search_page(request: Request, session: DB, principal: Annotated[Principal, Depends(require_roles(*STAFF))],
                record_id: int | None = None) -> Response:
    return render(request, "directory/search.html", _search_context(session, request, record_id, principal))


@router.get("/directory/panel")
def panel(request: Request, session: DB, principal: Annotated[Principal, Depends(require_roles(*STAFF))],
          record_id: int | None = None) -> Response:
    ctx = _search_context(session, request, record_id, principal)
    return render(request, "directory/_results.html", ctx, status_code=422 if ctx["error"] else 200)


# ---------------------------------------------------------------------------- upkeep
def _audit(session: Session, principal: Principal, request: Request, action: str, service_id: str,
           detail: dict[str, Any] | None = None) -> None:
    audit(session, actor=principal, action=action, object_type="directory_service", object_id=service_id,
          request=request, detail=detail)


@router.get("/directory/admin")
def admin_list(request: Request, session: DB, principal: Annotated[Principal, Depends(require_roles(*ADMIN))],
               page: Annotated[int, Query(ge=1)] = 1) -> Response:
    per = 50
    total = session.scalar(select(func.count()).select_from(Service)) or 0
    rows = list(session.scalars(select(Service).order_by(Service.name, Service.pk).offset((page - 1) * per).limit(per)))
    return render(request, "directory/admin_list.html", {"rows": rows, "page": page, "total": total, "per": per,
                                                         "types": service_types(), "places": places()})


@router.get("/directory/admin/stale")
def admin_stale(request: Request, session: DB, principal: Annotated[Principal, Depends(require_roles(*ADMIN))]) -> Response:
    # The oldest first, a page of them: after an import of 50,000 services all were listed (seconds).
    rows = svc_mod.not_verified_since(session, days=STALE_DAYS, limit=STALE_PAGE)
    total = svc_mod.count_not_verified_since(session, days=STALE_DAYS) if len(rows) == STALE_PAGE else len(rows)
    return render(request, "directory/admin_stale.html", {"rows": rows, "days": STALE_DAYS, "places": places(),
                                                          "total": total})


@router.get("/directory/admin/history")
def admin_history(request: Request, session: DB, principal: Annotated[Principal, Depends(require_roles(*ADMIN))],
                  service_id: str | None = None) -> Response:
    return render(request, "directory/admin_history.html",
                  {"changes": svc_mod.history(session, service_id=service_id), "service_id": service_id})


def _fields(request: Request) -> list[tuple[str, str, str, str]]:
    """The form's fields with their help (English msgids) in the reader's language."""
    _ = translator(request_language(request))
    return [(name, vi, en, _(help_) if help_ else "") for name, vi, en, help_ in FIELDS]


def _form_page(request: Request, raw: dict[str, str], *, mode: str, errors: list[str] | None = None,
               status_code: int = 200, locations: list[dict[str, str]] | None = None,
               extra: dict[str, Any] | None = None) -> Response:
    return render(request, "directory/admin_form.html",
                  {"raw": raw, "fields": _fields(request), "mode": mode, "errors": errors or [], "types": service_types(),
                   "locations": locations if locations is not None else admin_form.location_blocks(None),
                   **(extra or {})}, status_code=status_code)


def _edit_values(svc: Service) -> tuple[dict[str, str], list[dict[str, str]]]:
    rec = svc_mod.to_record(svc)
    raw = svc_mod.to_raw(svc)
    raw["hours"] = admin_form.service_hours_text(rec)
    return raw, admin_form.location_blocks(rec)


@router.get("/directory/admin/new")
def admin_new(request: Request, principal: Annotated[Principal, Depends(require_roles(*ADMIN))]) -> Response:
    return _form_page(request, {k: "" for k in FIELD_NAMES} | {"languages": "vi"}, mode="new")


async def _posted(request: Request) -> tuple[dict[str, str], list[dict[str, str]]]:
    form = await request.form()
    return {k: str(form.get(k) or "") for k in FIELD_NAMES}, admin_form.posted_blocks(form)


def _save_form(request: Request, session: Session, principal: Principal, posted: tuple[dict[str, str], list[dict[str, str]]],
               mode: str, service_id: str | None) -> Response:
    raw, blocks = posted
    if service_id is not None:
        raw["id"] = service_id
    old = svc_mod.to_record(svc_mod.get(session, service_id=service_id)) if service_id is not None else None
    shown = blocks + [admin_form.location_blocks(None)[-1]]
    form_raw: dict[str, Any] = dict(raw)
    admin_form.apply(form_raw, blocks, old)
    try:
        rec, warnings = validation.validate(form_raw)
        rec = admin_form.finish(rec, raw, blocks, old)
    except validation.RecordError as exc:
        return _form_page(request, raw, mode=mode, errors=exc.translated(principal.language), status_code=422,
                          locations=shown)
    exists = session.scalar(select(Service.id).where(Service.id == rec.id)) is not None
    if mode == "new" and exists:
        return _form_page(request, raw, mode=mode, status_code=409, locations=shown,
                          errors=[Text("id %(id)r already used: choose another id or edit that entry",
                                       id=rec.id).translate(principal.language)])
    warnings += svc_mod.duplicate_phones(session, record=rec)
    status = svc_mod.save(session, record=rec, actor=principal.username, action="update")
    _audit(session, principal, request, f"directory.{'create' if mode == 'new' else 'update'}", rec.id,
           {"status": status})
    session.commit()
    warnings = translate_value(warnings, principal.language)
    _ = translator(principal.language)
    notice = _(N_("Saved")) + (". " + " · ".join(warnings) if warnings else "")
    svc = svc_mod.get(session, service_id=rec.id)
    values, locations = _edit_values(svc)
    return _form_page(request, values, mode="edit", locations=locations,
                      extra={"notice": notice, "warnings": warnings, "svc": svc})


@router.post("/directory/admin/new", dependencies=[Depends(csrf_protect)])
async def admin_create(request: Request, session: DB,
                       principal: Annotated[Principal, Depends(require_roles(*ADMIN))]) -> Response:
    return _save_form(request, session, principal, await _posted(request), "new", None)


@router.get("/directory/admin/{service_id}/edit")
def admin_edit(request: Request, session: DB, service_id: str,
               principal: Annotated[Principal, Depends(require_roles(*ADMIN))]) -> Response:
    svc = svc_mod.get(session, service_id=service_id)  # NotFound → 404 (hotline.errors)
    values, locations = _edit_values(svc)
    return _form_page(request, values, mode="edit", locations=locations, extra={"svc": svc})


@router.post("/directory/admin/{service_id}/edit", dependencies=[Depends(csrf_protect)])
async def admin_update(request: Request, session: DB, service_id: str,
                       principal: Annotated[Principal, Depends(require_roles(*ADMIN))]) -> Response:
    svc_mod.get(session, service_id=service_id)  # NotFound → 404 (hotline.errors)
    return _save_form(request, session, principal, await _posted(request), "edit", service_id)


@router.post("/directory/admin/{service_id}/verify", dependencies=[Depends(csrf_protect)])
def admin_verify(request: Request, session: DB, service_id: str,
                 principal: Annotated[Principal, Depends(require_roles(*ADMIN))]) -> Response:
    svc_mod.mark_verified(session, service_id=service_id, by=principal.name, at=datetime.now(timezone.utc))
    _audit(session, principal, request, "directory.verify", service_id)
    return RedirectResponse(request.headers.get("referer") or "/directory/admin/stale", status_code=303)


# ---------------------------------------------------------------------------- HSDS read API
@router.get("/api/hsds/services")
def hsds_services(session: DB, principal: Annotated[Principal, Depends(require_roles(*STAFF))],
                  page: Annotated[int, Query(ge=1, le=100000)] = 1,
                  per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    return hsds_api.list_services(session, page_number=page, per_page=per_page)


@router.get("/api/hsds/services/{service_id}")
def hsds_service(session: DB, service_id: str,
                 principal: Annotated[Principal, Depends(require_roles(*STAFF))]) -> dict[str, Any]:
    return hsds_api.one_service(session, service_id)  # NotFound → 404 (hotline.errors)


@router.get("/api/hsds/taxonomy_terms")
def hsds_terms(session: DB, principal: Annotated[Principal, Depends(require_roles(*STAFF))],
               page: Annotated[int, Query(ge=1, le=100000)] = 1,
               per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    return hsds_api.list_terms(session, page_number=page, per_page=per_page)


# ---------------------------------------------------------------------------- partner taxonomy mapping
@router.get("/directory/admin/taxonomy")
def admin_taxonomy(request: Request, session: DB,
                   principal: Annotated[Principal, Depends(require_roles(*ADMIN))]) -> Response:
    return render(request, "directory/admin_taxonomy.html",
                  {"terms": svc_mod.partner_terms(session), "types": list(service_types().values()),
                   "mapped": request.query_params.get("mapped")})


@router.post("/directory/admin/taxonomy", dependencies=[Depends(csrf_protect)])
async def admin_taxonomy_save(request: Request, session: DB,
                              principal: Annotated[Principal, Depends(require_roles(*ADMIN))]) -> Response:
    form = await request.form()
    term_id, code = str(form.get("term_id") or ""), str(form.get("maps_to") or "")
    if code not in service_types():
        raise HTTPException(422, Text("unknown service type %(type)r (known: %(known)s)", type=code,
                                      known=", ".join(service_types())).translate(principal.language))
    n = svc_mod.map_term(session, term_id=term_id, service_type=code, actor=principal.username)
    _audit(session, principal, request, "directory.map_term", term_id, {"maps_to": code, "services": n})
    session.commit()
    return RedirectResponse(f"/directory/admin/taxonomy?mapped={n}", status_code=303)
