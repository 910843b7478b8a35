"""Sign-in pages: login, logout (here and everywhere), language, password; administrator pages.

The views only parse forms, call ``hotline.auth.service`` and render; every account change is
written to the audit log in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from hotline import i18n
from hotline.audit import service as audit
from hotline.auth import service
from hotline.auth.deps import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    Principal,
    csrf_protect,
    current_principal,
    optional_principal,
    request_language,
    require_roles,
)
from hotline.auth.models import ROLES
from hotline.db import session_scope, utcnow
from hotline.web import is_secure_cookie, language_cookie, render

router = APIRouter()
admin_only = require_roles("administrator")


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path on this site: no scheme, no host, no ``//evil``, no backslashes."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def _t(request: Request) -> Any:
    return i18n.translator(request_language(request))


def _ip(request: Request) -> str:
    return audit.client_ip(request)


def _minutes_left(until: datetime) -> int:
    return max(1, int((until - utcnow()).total_seconds() + 59) // 60)


# ------------------------------------------------------------------ sign in / out
@router.get("/login")
def login_form(request: Request, next: str = Query("/"), principal: Principal | None = Depends(optional_principal)) -> Response:
    if principal is not None and not principal.is_service:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "auth/login.html", {"next": safe_next(next), "username": ""})


@router.post("/login", dependencies=[Depends(csrf_protect)])
def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/")) -> Response:
    _ = _t(request)
    target = safe_next(next)
    username = service.normalize_username(username)
    if not username or not password:
        return render(request, "auth/login.html", {
            "next": target, "username": username,
            "error": _("Enter your user name and password."),
        }, status_code=400)
    ip = _ip(request)
    with session_scope() as db:
        result = service.authenticate(db, username=username, password=password, ip=ip)
        user = result.user
        if user is None:
            audit.record(db, actor=None, action=f"login.{result.reason}", object_type="user", object_id=None,
                         request=request, detail={"username": username[:128]})
            new_session = None
        else:
            new_session = service.start_session(db, user=user, ip=ip, user_agent=request.headers.get("user-agent", ""))
            audit.record(db, actor=user, action="login.success", object_type="user", object_id=user.id, request=request)
            lang = i18n.normalize_language(user.language)
    if new_session is None:
        if result.reason == "locked":
            assert result.locked_until is not None
            message = _("Too many failed sign-ins. This account is locked for %(minutes)d more minutes; "
                        "try again later or ask an administrator.") % {"minutes": _minutes_left(result.locked_until)}
            status = 429
        elif result.reason == "disabled":
            message = _("This account is disabled. Ask an administrator of your centre.")
            status = 403
        else:
            message = _("Wrong user name or password.")
            status = 401
        return render(request, "auth/login.html", {"next": target, "username": username, "error": message},
                      status_code=status)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, new_session.cookie_value, httponly=True, samesite="lax",
                        secure=is_secure_cookie(), path="/")
    language_cookie(response, lang)
    return response


@router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout(request: Request, principal: Principal | None = Depends(optional_principal)) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    with session_scope() as db:
        user_id = service.end_session(db, cookie_value=cookie)
        if principal is not None and user_id is not None:
            audit.record(db, actor=principal, action="logout", object_type="user", object_id=user_id, request=request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/logout-everywhere", dependencies=[Depends(csrf_protect)])
def logout_everywhere(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    with session_scope() as db:
        ended = service.end_all_sessions(db, user_id=principal.id)
        audit.record(db, actor=principal, action="logout.everywhere", object_type="user", object_id=principal.id,
                     request=request, detail={"sessions": ended})
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language", dependencies=[Depends(csrf_protect)])
def set_language(request: Request, lang: str = Form(...), next: str = Form("/"),
                 principal: Principal | None = Depends(optional_principal)) -> Response:
    lang = i18n.normalize_language(lang)
    if principal is not None and not principal.is_service:
        with session_scope() as db:
            user = service.get_user(db, user_id=principal.id)
            if user is not None:
                service.set_language(db, user=user, language=lang)
    response = RedirectResponse(safe_next(next), status_code=303)
    language_cookie(response, lang)
    return response


# ------------------------------------------------------------------ own account
def _account_page(request: Request, principal: Principal, status_code: int = 200, **extra: Any) -> Response:
    with session_scope() as db:
        sessions = service.count_sessions(db, user_id=principal.id)
    return render(request, "auth/account.html", {"sessions": sessions, **extra}, status_code=status_code)


@router.get("/account")
def account(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    if principal.is_service:
        return RedirectResponse("/", status_code=303)
    _ = _t(request)
    notice = _("Your password has been changed.") if request.query_params.get("changed") else None
    return _account_page(request, principal, notice=notice)


@router.post("/account/password", dependencies=[Depends(csrf_protect)])
def change_password(request: Request, current_password: str = Form(""), new_password: str = Form(""),
                    confirm_password: str = Form(""), principal: Principal = Depends(current_principal)) -> Response:
    _ = _t(request)
    if new_password != confirm_password:
        return _account_page(request, principal, 400,
                             error=_("The new password and its confirmation differ. Type the same password twice."))
    with session_scope() as db:
        user = service.get_user(db, user_id=principal.id)
        assert user is not None
        try:
            service.change_password(db, user=user, current=current_password, new=new_password,
                                    keep_session=getattr(request.state, "session_id", None))
        except service.AccountError as exc:
            error = str(exc)
        else:
            error = None
            audit.record(db, actor=principal, action="password.change", object_type="user", object_id=user.id,
                         request=request)
    if error:
        return _account_page(request, principal, 400, error=error)
    return RedirectResponse("/account?changed=1", status_code=303)
