"""Administrators' page for data protection: retention periods, key status, legal holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from hotline import i18n
from hotline.auth.deps import Principal, csrf_protect, request_language, require_roles
from hotline.db import session_scope
from hotline.security import crypto, service
from hotline.settings import get_settings
from hotline.web import add_template_dir, render, template_context, templates

router = APIRouter()
admin_only = require_roles("administrator")
add_template_dir(Path(__file__).parent / "templates")


def setup_app(app: FastAPI) -> None:
    """Refuse to start without usable keys (in production ``HOTLINE_ENCRYPTION_KEYS`` must be set)."""
    crypto.keyring()
    crypto.hash_keyring()


def record_panel(request: Request, db: Any, record: Any, principal: Principal) -> Markup:
    """On the record page (declared in hotline.domains): a legal hold and its reason, text removed by retention, and for
    administrators the hold form."""
    if not (record.legal_hold or record.purged_at or principal.role == "administrator"):
        return Markup("")
    ctx = template_context(request, {"record": record, "notes_days": get_settings().retention_notes_days})
    return Markup(templates.get_template("security/_record_panel.html").render(ctx))


def _back(next_url: str, default: str) -> str:
    """Only a record page of this site (no open redirect)."""
    return next_url if re.fullmatch(r"/records/\d+", next_url or "") else default


def _t(request: Request) -> Any:
    return i18n.translator(request_language(request))


def _page(request: Request, status_code: int = 200, **extra: Any) -> Response:
    settings = get_settings()
    with session_scope() as db:
        status = service.key_status(db)
        holds = [{"id": r.id, "created_at": r.created_at, "reason": r.legal_hold_reason, "purged_at": r.purged_at}
                 for r in service.legal_holds(db)]
    context = {"notes_days": settings.retention_notes_days, "numbers_days": settings.retention_numbers_days,
               "status": status, "rows_left": status.rows_left(), "unreadable": status.unreadable(),
               "holds": holds, "form": {}}
    context.update(extra)
    return render(request, "security/retention.html", context, status_code=status_code)


@router.get("/admin/retention")
def retention_page(request: Request, principal: Principal = Depends(admin_only)) -> Response:
    _ = _t(request)
    notice = {"held": _("The record is under legal hold."),
              "released": _("The legal hold has ended.")}.get(request.query_params.get("done", ""))
    return _page(request, notice=notice)


@router.post("/admin/retention/holds", dependencies=[Depends(csrf_protect)])
def place_hold(request: Request, record: str = Form(""), reason: str = Form(""), next: str = Form(""),
               principal: Principal = Depends(admin_only)) -> Response:
    _ = _t(request)
    form = {"record": record, "reason": reason}
    try:
        record_id = int(record.strip().lstrip("#"))
    except ValueError:
        return _page(request, 400, form=form,
                     error=_("Give the record's number (the digits after # on the record's page)."))
    try:
        with session_scope() as db:
            service.set_legal_hold(db, record_id=record_id, reason=reason, actor=principal, request=request)
    except service.SecurityError:
        if not reason.strip():
            message = _("A legal hold needs a reason, for example the court or police case it serves.")
        elif len(reason.strip()) > service.HOLD_REASON_MAX:
            message = _("The reason is too long: at most %(max)s characters.") % {"max": service.HOLD_REASON_MAX}
        else:
            message = _("There is no call record %(id)s; check the number on the record's page.") % {"id": record_id}
        return _page(request, 400, form=form, error=message)
    return RedirectResponse(_back(next, "/admin/retention?done=held"), status_code=303)


@router.post("/admin/retention/holds/{record_id}/release", dependencies=[Depends(csrf_protect)])
def release_hold(record_id: int, request: Request, next: str = Form(""),
                 principal: Principal = Depends(admin_only)) -> Response:
    _ = _t(request)
    try:
        with session_scope() as db:
            service.release_legal_hold(db, record_id=record_id, actor=principal, request=request)
    except service.SecurityError:
        return _page(request, 400, error=_("Call record %(id)s is not under legal hold.") % {"id": record_id})
    return RedirectResponse(_back(next, "/admin/retention?done=released"), status_code=303)
