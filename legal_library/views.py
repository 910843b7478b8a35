"""Legal quick-reference pages, the live-screen panel, the reading view, the JSON API and the
administrators' import / review / publish pages.  Views parse input, call the service, render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response

from hotline.audit import service as audit
from hotline.auth.deps import Principal, csrf_protect, require_roles
from hotline.db import session_scope
from hotline.i18n import N_, error_text, translator
from hotline.web import add_template_dir, render
from legal_library import service
from legal_library.importer import ImportRefused
from legal_library.search import search, suggest

add_template_dir(Path(__file__).parent / "templates")

router = APIRouter()
staff = require_roles("counsellor", "supervisor", "administrator")
admin_only = require_roles("administrator")
MAX_UPLOAD = 5 * 1024 * 1024


def _issues(value: str | None) -> list[str]:
    return [c.strip() for c in (value or "").split(",") if c.strip()]


def _bad_request(exc: Exception, lang: str) -> HTTPException:
    return HTTPException(400, detail=error_text(exc, lang))


@router.get("/api/legal/search")
def api_search(q: str = "", issues: str | None = None, limit: int = Query(20, ge=1, le=100),
               principal: Principal = Depends(staff)) -> JSONResponse:
    if not q.strip() and not _issues(issues):
        raise HTTPException(400, detail=translator(principal.language)(N_("Give a query (q) or issue codes (issues).")))
    try:
        with session_scope() as session:
            result = suggest(session, issues=_issues(issues), q=q, limit=limit) if not q.strip() else \
                search(session, q, issues=_issues(issues), limit=limit)
    except ValueError as exc:
        raise _bad_request(exc, principal.language) from exc
    return JSONResponse(result)


@router.get("/api/legal/articles/{article_id}/reference")
def api_reference(article_id: int, principal: Principal = Depends(staff)) -> dict[str, Any]:
    try:
        with session_scope() as session:
            return service.reference_for(session, article_id)
    except service.LegalError as exc:
        raise HTTPException(404, detail=error_text(exc, principal.language)) from exc


@router.get("/legal")
def search_page(request: Request, q: str = "", issues: str | None = None,
                principal: Principal = Depends(staff)) -> Response:
    result = None
    error = None
    if q.strip() or _issues(issues):
        try:
            with session_scope() as session:
                result = search(session, q, issues=_issues(issues))
        except ValueError as exc:
            error = error_text(exc, principal.language)
    with session_scope() as session:
        documents = service.list_documents(session) if result is None else []
    return render(request, "legal_library/search.html",
                  {"q": q, "issues": issues or "", "result": result, "documents": documents, "error": error},
                  status_code=400 if error else 200)


@router.get("/legal/documents/{document_id}")
def document_page(request: Request, document_id: int, principal: Principal = Depends(staff)) -> Response:
    try:
        with session_scope() as session:
            doc = service.document_detail(session, document_id=document_id)
    except service.LegalError as exc:
        raise HTTPException(404, detail=error_text(exc, principal.language)) from exc
    return render(request, "legal_library/document.html", {"doc": doc})


@router.get("/legal/articles/{article_id}/read")
def read_page(request: Request, article_id: int, record_id: int | None = None,
              principal: Principal = Depends(staff)) -> Response:
    try:
        with session_scope() as session:
            article = service.article_detail(session, article_id=article_id)
            reference = service.reference_for(session, article_id)
    except service.LegalError as exc:
        raise HTTPException(404, detail=error_text(exc, principal.language)) from exc
    return render(request, "legal_library/read.html",
                  {"a": article, "reference": reference, "record_id": record_id})


@router.get("/legal/panel")
def panel(request: Request, issues: str | None = None, q: str = "", record_id: int | None = None,
          limit: int = Query(8, ge=1, le=30), principal: Principal = Depends(staff)) -> Response:
    """An HTML fragment for the live call screen: articles tagged for the picked issue codes."""
    try:
        with session_scope() as session:
            result = suggest(session, issues=_issues(issues), q=q, limit=limit)
            refs = {a["id"]: service.reference_for(session, a["id"]) for a in result["articles"]}
    except ValueError as exc:
        raise _bad_request(exc, principal.language) from exc
    return render(request, "legal_library/panel.html",
                  {"result": result, "refs": refs, "record_id": record_id, "issues": issues or "", "q": q})


# ------------------------------------------------------------------ administrators
@router.get("/legal/admin")
def admin_page(request: Request, principal: Principal = Depends(admin_only)) -> Response:
    with session_scope() as session:
        versions = service.list_versions(session)
    return render(request, "legal_library/admin.html", {"versions": versions})


@router.post("/legal/admin/import", dependencies=[Depends(csrf_protect)])
async def admin_import(request: Request, file: UploadFile = File(...), document: str = Form(""),
                       principal: Principal = Depends(admin_only)) -> Response:
    data = await file.read(MAX_UPLOAD + 1)
    error = None
    if len(data) > MAX_UPLOAD:
        error = translator(principal.language)(N_("The file is too large (5 MB at most)."))
    else:
        try:
            with session_scope() as session:
                result = service.import_text(session, data=data, filename=file.filename or "",
                                             document_number=document.strip() or None,
                                             created_by=principal.username)
                audit.record(session, actor=principal, action="legal.import", object_type="legal_version",
                             object_id=str(result.version.id), request=request,
                             detail={"document": result.document.number, "articles": result.report["articles"]})
                version_id = result.version.id
        except (ImportRefused, service.LegalError) as exc:
            error = error_text(exc, principal.language)
    if error:
        with session_scope() as session:
            versions = service.list_versions(session)
        return render(request, "legal_library/admin.html", {"versions": versions, "error": error,
                                                             "document": document}, status_code=400)
    return RedirectResponse(f"/legal/admin/versions/{version_id}", status_code=303)


@router.get("/legal/admin/versions/{version_id}")
def review_page(request: Request, version_id: int, principal: Principal = Depends(admin_only)) -> Response:
    try:
        with session_scope() as session:
            review = service.version_review(session, version_id=version_id)
    except service.LegalError as exc:
        raise HTTPException(404, detail=error_text(exc, principal.language)) from exc
    return render(request, "legal_library/review.html", {"v": review})


@router.post("/legal/admin/versions/{version_id}/publish", dependencies=[Depends(csrf_protect)])
def publish_version(request: Request, version_id: int, principal: Principal = Depends(admin_only)) -> Response:
    try:
        with session_scope() as session:
            version = service.publish(session, version_id=version_id, actor=principal.username)
            audit.record(session, actor=principal, action="legal.publish", object_type="legal_version",
                         object_id=str(version.id), request=request)
    except service.LegalError as exc:
        with session_scope() as session:
            try:
                review = service.version_review(session, version_id=version_id)
            except service.LegalError:
                raise HTTPException(404, detail=error_text(exc, principal.language)) from exc
        return render(request, "legal_library/review.html", {"v": review, "error": error_text(exc, principal.language)}, status_code=409)
    return RedirectResponse(f"/legal/admin/versions/{version_id}", status_code=303)
