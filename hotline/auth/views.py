"""Sign-in pages: login, logout (here and everywhere), language, password; administrator pages.

The views only parse forms, call ``hotline.auth.service`` and render; every account change is
written to the audit log in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from hotline import i18n
from hotline.audit import service as audit
from hotline.auth import service
from hotline.auth.deps import (
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
from hotline.i18n import N_
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
            # The name typed is kept only when it is an account: a mistyped name is often a password.
            audit.record(db, actor=None, action=f"login.{result.reason}", object_type="user",
                         object_id=result.account_id, request=request,
                         detail={"username": username[:128]} if result.account_id else {"unknown_user": True})
            new_session = None
        else:
            service.end_session(db, cookie_value=request.cookies.get(SESSION_COOKIE, ""))  # no session fixation
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
            error = exc.translate(_)
        else:
            error = None
            audit.record(db, actor=principal, action="password.change", object_type="user", object_id=user.id,
                         request=request)
    if error:
        return _account_page(request, principal, 400, error=error)
    return RedirectResponse("/account?changed=1", status_code=303)


# ------------------------------------------------------------------ administrators: users
def _users_page(request: Request, status_code: int = 200, **extra: Any) -> Response:
    with session_scope() as db:
        users = service.list_users(db)
        centres = service.centre_choices(db)
    by_id = {c.id: c for c in centres}
    context = {"users": users, "centres": centres, "centre_by_id": by_id, "roles": ROLES,
               "languages": i18n.LANGUAGE_NAMES, "form": {}}
    context.update(extra)
    return render(request, "admin/users.html", context, status_code=status_code)


@router.get("/admin/users")
def users_page(request: Request, principal: Principal = Depends(admin_only)) -> Response:
    return _users_page(request)


@router.post("/admin/users", dependencies=[Depends(csrf_protect)])
def create_user(request: Request, username: str = Form(""), display_name: str = Form(""),
                role: str = Form("counsellor"), centre: str = Form(""), language: str = Form("vi"),
                principal: Principal = Depends(admin_only)) -> Response:
    _ = _t(request)
    form = {"username": username, "display_name": display_name, "role": role, "centre": centre, "language": language}
    password = service.generate_password()
    with session_scope() as db:
        try:
            centre_id = service.resolve_centre(db, code=centre)
            user = service.create_user(db, username=username, password=password, role=role, centre_id=centre_id,
                                       display_name=display_name, language=i18n.normalize_language(language))
        except service.AccountError as exc:
            error: str | None = exc.translate(_)
        else:
            error = None
            audit.record(db, actor=principal, action="user.create", object_type="user", object_id=user.id,
                         request=request, detail={"role": role, "centre_id": centre_id})
            created = user.username
    if error:
        return _users_page(request, 400, error=error, form=form)
    return render(request, "admin/password_shown.html", {"username": created, "password": password, "created": True})


def _admin_user_action(request: Request, principal: Principal, user_id: int, action: str) -> Response:
    """Reset, disable or enable one account (table-driven: see ``USER_ACTIONS``)."""
    _ = _t(request)
    password = service.generate_password() if action == "reset" else None
    with session_scope() as db:
        user = service.get_user(db, user_id=user_id)
        if user is None:
            error: str | None = _("That user no longer exists. Reload the list.")
        elif user.id == principal.id and action == "disable":
            error = _("You cannot disable your own account. Ask another administrator.")
        else:
            error = None
            if action == "reset":
                assert password is not None
                service.set_password(db, user=user, password=password)
            else:
                service.set_active(db, user=user, active=(action == "enable"))
            audit.record(db, actor=principal, action=USER_ACTIONS[action], object_type="user", object_id=user.id,
                         request=request)
            username = user.username
    if error:
        return _users_page(request, 400, error=error)
    if password is not None:
        return render(request, "admin/password_shown.html", {"username": username, "password": password, "created": False})
    message = _("%(user)s can sign in again.") if action == "enable" else _("%(user)s is disabled and signed out everywhere.")
    return _users_page(request, notice=message % {"user": username})


USER_ACTIONS = {"reset": "user.password_reset", "disable": "user.disable", "enable": "user.enable"}


@router.post("/admin/users/{user_id}/{action}", dependencies=[Depends(csrf_protect)])
def user_action(request: Request, user_id: int, action: str, principal: Principal = Depends(admin_only)) -> Response:
    if action not in USER_ACTIONS:
        _ = _t(request)
        return _users_page(request, 404, error=_("Unknown action. Use the buttons in the list."))
    return _admin_user_action(request, principal, user_id, action)


# ------------------------------------------------------------------ administrators: phone agents
def _agents_page(request: Request, status_code: int = 200, **extra: Any) -> Response:
    with session_scope() as db:
        rows = service.agent_rows(db)
        centres = service.centre_choices(db)
        staff = [u for u in service.list_users(db, include_disabled=False) if u.role in ("counsellor", "supervisor")]
        users = {u.id: u for u in service.list_users(db)}
    context = {"rows": rows, "centres": centres, "centre_by_id": {c.id: c for c in centres}, "staff": staff,
               "users": users, "providers": service.AGENT_PROVIDERS, "form": {}}
    context.update(extra)
    return render(request, "admin/agents.html", context, status_code=status_code)


@router.get("/admin/agents")
def agents_page(request: Request, principal: Principal = Depends(admin_only)) -> Response:
    return _agents_page(request)


@router.post("/admin/agents", dependencies=[Depends(csrf_protect)])
def map_agent(request: Request, centre: str = Form(""), provider: str = Form(""), identity: str = Form(""),
              username: str = Form(""), principal: Principal = Depends(admin_only)) -> Response:
    _ = _t(request)
    form = {"centre": centre, "provider": provider, "identity": identity, "username": username}
    with session_scope() as db:
        try:
            row = service.map_phone_agent(db, centre_code=centre, provider=provider, identity=identity,
                                          username=username or None)
        except service.AccountError as exc:
            error: str | None = exc.translate(_)
        else:
            error = None
            audit.record(db, actor=principal, action="agent.map", object_type="agent_identity", object_id=row.id,
                         request=request, detail={"provider": row.provider, "user_id": row.user_id})
    if error:
        return _agents_page(request, 400, error=error, form=form)
    notice = _("Mapping saved.") if username else _("Mapping saved: this identity is no longer linked to anyone.")
    return _agents_page(request, notice=notice)


# ------------------------------------------------------------------ administrators: audit log
AUDIT_PAGE_SIZE = 200


def _parse_day(value: str, field: str, request: Request) -> datetime | None:
    """``dd/mm/yyyy`` (or ISO ``yyyy-mm-dd``) → midnight in the administrator's timezone."""
    value = value.strip()
    if not value:
        return None
    from zoneinfo import ZoneInfo

    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            day = datetime.strptime(value, pattern)
        except ValueError:
            continue
        principal = getattr(request.state, "principal", None)
        zone = ZoneInfo(principal.timezone if principal else "Asia/Ho_Chi_Minh")
        return day.replace(tzinfo=zone)
    raise service.AccountError(N_("%(field)s: write the date as dd/mm/yyyy, for example 15/06/2026."), field=field)


@router.get("/admin/audit")
def audit_page(request: Request, actor: str = "", action: str = "", object_type: str = "", object_id: str = "",
               since: str = "", until: str = "", page: int = Query(1, ge=1),
               principal: Principal = Depends(admin_only)) -> Response:
    _ = _t(request)
    filters = {"actor": actor.strip(), "action": action.strip(), "object_type": object_type.strip(),
               "object_id": object_id.strip(), "since": since, "until": until}
    try:
        start = _parse_day(since, _("From"), request)
        end = _parse_day(until, _("To"), request)
    except service.AccountError as exc:
        with session_scope() as db:
            known = audit.actions(db)
        return render(request, "admin/audit.html", {"entries": [], "filters": filters, "actions": known,
                                                    "error": exc.translate(_), "page": 1, "more": False,
                                                    "page_query": lambda n: ""}, status_code=400)
    if end is not None:
        end = end + timedelta(days=1)  # "to" includes that whole day
    with session_scope() as db:
        entries = audit.search(db, actor=filters["actor"] or None, action=filters["action"] or None,
                               object_type=filters["object_type"] or None, object_id=filters["object_id"] or None,
                               since=start, until=end, limit=AUDIT_PAGE_SIZE + 1,
                               offset=(page - 1) * AUDIT_PAGE_SIZE)
        known = audit.actions(db)
        audit.record(db, actor=principal, action="audit.search", object_type="audit", object_id=None,
                     request=request, detail={k: v for k, v in filters.items() if v})
    more = len(entries) > AUDIT_PAGE_SIZE

    def page_query(number: int) -> str:
        return urlencode({**{k: v for k, v in filters.items() if v}, "page": number})

    return render(request, "admin/audit.html", {"entries": entries[:AUDIT_PAGE_SIZE], "filters": filters,
                                                "actions": known, "page": page, "more": more,
                                                "page_query": page_query})
