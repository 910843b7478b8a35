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
    pending_stage,
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


def _wait_message(_: Any, until: datetime) -> str:
    """Failed attempts slow down this account from this address (never a lock for everyone)."""
    seconds = max(1, int((until - utcnow()).total_seconds() + 0.999))
    if seconds < 120:
        return str(_("Too many failed sign-ins from this address. Wait %(seconds)d seconds before trying "
                     "again.")) % {"seconds": seconds}
    return str(_("Too many failed sign-ins from this address. Wait %(minutes)d minutes before trying again, "
                 "or ask an administrator.")) % {"minutes": _minutes_left(until)}


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
            stage = service.next_stage(user)
            new_session = service.start_session(db, user=user, ip=ip, user_agent=request.headers.get("user-agent", ""),
                                                pending=stage)
            audit.record(db, actor=user, action="login.password_ok" if stage else "login.success",
                         object_type="user", object_id=user.id, request=request,
                         detail={"next_stage": stage} if stage else None)
            lang = i18n.normalize_language(user.language)
            if stage:
                target = f"{service.STAGE_URLS[stage]}?{urlencode({'next': target})}"
    if new_session is None:
        if result.reason == "locked":
            assert result.locked_until is not None
            message = _wait_message(_, result.locked_until)
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
    _session_cookie(response, new_session.cookie_value)
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


# ------------------------------------------------------------------ sign-in stages
def _pending(request: Request, stage: str) -> tuple[Any, Any] | None:
    """(session row, user) of a browser that has this stage to pass, else None."""
    from hotline.auth.models import User, UserSession

    if pending_stage(request) != stage:
        return None
    with session_scope() as db:
        row = db.get(UserSession, request.state.session_id)
        user = db.get(User, request.state.pending_user_id)
        if row is None or user is None:
            return None
        db.expunge(row)
        db.expunge(user)
        return row, user


def _advance(request: Request, stage: str, next_url: str) -> tuple[str, str]:
    """The stage is passed: (where to go next, the new session cookie).  The half-signed-in session
    is ended, so its cookie cannot be used for anything afterwards."""
    from hotline.auth.models import User, UserSession

    with session_scope() as db:
        row = db.get(UserSession, request.state.session_id)
        user = db.get(User, request.state.pending_user_id)
        assert row is not None and user is not None
        row.pending = stage
        fresh = service.advance_session(db, row=row, user=user)
        following = fresh.row.pending
        if not following:
            audit.record(db, actor=user, action="login.success", object_type="user", object_id=user.id,
                         request=request, detail={"after": stage})
        # A page rendered by this request (the recovery codes) carries the new session's token.
        request.state.csrf_token = fresh.row.csrf_token
        request.state.session_id = fresh.row.id
    target = safe_next(next_url)
    if following:
        target = f"{service.STAGE_URLS[following]}?{urlencode({'next': target})}"
    return target, fresh.cookie_value


def _stage_done(request: Request, stage: str, next_url: str) -> Response:
    """The stage is passed: on to the next one, or into the application, under a new session cookie."""
    target, cookie = _advance(request, stage, next_url)
    response = RedirectResponse(target, status_code=303)
    _session_cookie(response, cookie)
    return response


def _session_cookie(response: Response, value: str) -> None:
    response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="lax", secure=is_secure_cookie(), path="/")


def _restart(request: Request) -> Response:
    return RedirectResponse("/login", status_code=303)


@router.get("/login/second-factor")
def second_factor_form(request: Request, next: str = Query("/")) -> Response:
    if _pending(request, "second_factor") is None:
        return _restart(request)
    return render(request, "auth/second_factor.html", {"next": safe_next(next)})


@router.post("/login/second-factor", dependencies=[Depends(csrf_protect)])
def second_factor_check(request: Request, code: str = Form(""), next: str = Form("/")) -> Response:
    from hotline.auth import second_factor
    from hotline.auth.models import User

    _ = _t(request)
    found = _pending(request, "second_factor")
    if found is None:
        return _restart(request)
    _row, pending_user = found
    ip = _ip(request)
    with session_scope() as db:
        until = service.locked_until(db, username=pending_user.username, ip=ip)
        if until is not None:
            error, status = _wait_message(_, until), 429
        else:
            user = db.get(User, pending_user.id)
            assert user is not None
            how = second_factor.verify(user, code)
            if how:
                audit.record(db, actor=user, action=f"login.second_factor_{how}", object_type="user",
                             object_id=user.id, request=request,
                             detail={"recovery_codes_left": second_factor.recovery_left(user)} if how == "recovery" else None)
                error, status = None, 200
            else:
                until = service.register_failure(db, username=user.username, ip=ip)
                audit.record(db, actor=None, action="login.second_factor_failed", object_type="user",
                             object_id=user.id, request=request)
                error = _wait_message(_, until) if until else _("That code is not right. Type the 6 digits your "
                                                               "app shows now, or one of your recovery codes.")
                status = 429 if until else 401
    if error:
        return render(request, "auth/second_factor.html", {"next": safe_next(next), "error": error},
                      status_code=status)
    return _stage_done(request, "second_factor", next)


@router.get("/login/password")
def forced_password_form(request: Request, next: str = Query("/")) -> Response:
    if _pending(request, "password") is None:
        return _restart(request)
    return render(request, "auth/forced_password.html", {"next": safe_next(next)})


@router.post("/login/password", dependencies=[Depends(csrf_protect)])
def forced_password_change(request: Request, new_password: str = Form(""), confirm_password: str = Form(""),
                           next: str = Form("/")) -> Response:
    from hotline.auth.models import User

    _ = _t(request)
    found = _pending(request, "password")
    if found is None:
        return _restart(request)
    error = None
    if new_password != confirm_password:
        error = _("The new password and its confirmation differ. Type the same password twice.")
    else:
        with session_scope() as db:
            user = db.get(User, found[1].id)
            assert user is not None
            try:
                service.replace_temporary_password(db, user=user, new=new_password)
            except service.AccountError as exc:
                error = exc.translate(_)
            else:
                audit.record(db, actor=user, action="password.change", object_type="user", object_id=user.id,
                             request=request, detail={"temporary_replaced": True})
    if error:
        return render(request, "auth/forced_password.html", {"next": safe_next(next), "error": error},
                      status_code=400)
    return _stage_done(request, "password", next)


def _enrol_context(user_id: int, *, restart: bool = False) -> dict[str, Any]:
    """A seed for the user to scan (kept while the enrolment is unfinished), as QR code and text."""
    from hotline.auth import second_factor
    from hotline.auth.models import User
    from hotline.security.crypto import decrypt_text

    with session_scope() as db:
        user = db.get(User, user_id)
        assert user is not None
        if second_factor.enabled(user) and not restart:
            raise ValueError("already enrolled")  # viewing a page never undoes an enrolment
        if restart or not user.totp_secret:
            seed = second_factor.new_secret(user)
        else:
            seed = decrypt_text(user.totp_secret) or second_factor.new_secret(user)
        uri = second_factor.provisioning_uri(user, seed)
    from markupsafe import Markup

    grouped = " ".join(seed[i:i + 4] for i in range(0, len(seed), 4))
    return {"qr": Markup(second_factor.qr_svg(uri)), "seed": grouped}


def _confirm_enrolment(request: Request, user_id: int, code: str) -> list[str] | None:
    from hotline.auth import second_factor
    from hotline.auth.models import User

    with session_scope() as db:
        user = db.get(User, user_id)
        assert user is not None
        codes = second_factor.confirm(user, code)
        if codes:
            audit.record(db, actor=user, action="second_factor.enrol", object_type="user", object_id=user.id,
                         request=request)
        return codes


@router.get("/login/enrol")
def enrol_form(request: Request, next: str = Query("/")) -> Response:
    found = _pending(request, "enrol")
    if found is None:
        return _restart(request)
    return render(request, "auth/enrol.html", {"next": safe_next(next), "action": "/login/enrol",
                                               "required": True, **_enrol_context(found[1].id)})


@router.post("/login/enrol", dependencies=[Depends(csrf_protect)])
def enrol_confirm(request: Request, code: str = Form(""), next: str = Form("/")) -> Response:
    _ = _t(request)
    found = _pending(request, "enrol")
    if found is None:
        return _restart(request)
    codes = _confirm_enrolment(request, found[1].id, code)
    if not codes:
        return render(request, "auth/enrol.html", {
            "next": safe_next(next), "action": "/login/enrol", "required": True,
            "error": _("That code is not right. Check the time on your phone and type the 6 digits it shows now."),
            **_enrol_context(found[1].id)}, status_code=400)
    target, cookie = _advance(request, "enrol", next)
    page = render(request, "auth/recovery_codes.html", {"codes": codes, "continue_url": target})
    _session_cookie(page, cookie)
    return page


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
            error: str | None = exc.translate(_)
        else:
            error = None
            audit.record(db, actor=principal, action="password.change", object_type="user", object_id=user.id,
                         request=request)
    if error:
        return _account_page(request, principal, 400, error=error)
    return RedirectResponse("/account?changed=1", status_code=303)


@router.get("/account/second-factor")
def account_second_factor(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    from hotline.auth import second_factor

    if principal.is_service:
        return RedirectResponse("/", status_code=303)
    with session_scope() as db:
        user = service.get_user(db, user_id=principal.id)
        assert user is not None
        on, left, required = second_factor.enabled(user), second_factor.recovery_left(user), second_factor.required_for(user)
        since = user.totp_enabled_at
    if on:
        return render(request, "auth/second_factor_status.html", {"since": since, "left": left, "required": required})
    return render(request, "auth/enrol.html", {"next": "/account", "action": "/account/second-factor",
                                               "required": required, **_enrol_context(principal.id)})


@router.post("/account/second-factor", dependencies=[Depends(csrf_protect)])
def account_second_factor_confirm(request: Request, code: str = Form(""),
                                  principal: Principal = Depends(current_principal)) -> Response:
    from hotline.auth import second_factor

    _ = _t(request)
    with session_scope() as db:
        user = service.get_user(db, user_id=principal.id)
        assert user is not None
        if second_factor.enabled(user):
            return RedirectResponse("/account/second-factor", status_code=303)
    codes = _confirm_enrolment(request, principal.id, code)
    if not codes:
        return render(request, "auth/enrol.html", {
            "next": "/account", "action": "/account/second-factor", "required": False,
            "error": _("That code is not right. Check the time on your phone and type the 6 digits it shows now."),
            **_enrol_context(principal.id)}, status_code=400)
    return render(request, "auth/recovery_codes.html", {"codes": codes, "continue_url": "/account"})


@router.post("/account/second-factor/off", dependencies=[Depends(csrf_protect)])
def account_second_factor_off(request: Request, code: str = Form(""),
                              principal: Principal = Depends(current_principal)) -> Response:
    """Counsellors may turn their optional second factor off again (with a current code)."""
    from hotline.auth import second_factor

    _ = _t(request)
    with session_scope() as db:
        user = service.get_user(db, user_id=principal.id)
        assert user is not None
        if second_factor.required_for(user):
            error = _("Your role must sign in with a second factor; an administrator can reset it if you lost your phone.")
        elif not second_factor.verify(user, code):
            error = _("That code is not right. Type the 6 digits your app shows now, or one of your recovery codes.")
        else:
            second_factor.reset(user)
            audit.record(db, actor=principal, action="second_factor.off", object_type="user", object_id=user.id,
                         request=request)
            error = None
        since, left, required = user.totp_enabled_at, second_factor.recovery_left(user), second_factor.required_for(user)
    if error:
        return render(request, "auth/second_factor_status.html",
                      {"since": since, "left": left, "required": required, "error": error}, status_code=400)
    return RedirectResponse("/account", status_code=303)


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
            user.must_change_password = True  # read out by the administrator: changed at first sign-in
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
                service.set_password(db, user=user, password=password, temporary=True)
            elif action == "reset-2fa":
                from hotline.auth import second_factor

                second_factor.reset(user)
                service.end_all_sessions(db, user_id=user.id)
            else:
                service.set_active(db, user=user, active=(action == "enable"))
            audit.record(db, actor=principal, action=USER_ACTIONS[action], object_type="user", object_id=user.id,
                         request=request)
            username = user.username
    if error:
        return _users_page(request, 400, error=error)
    if password is not None:
        return render(request, "admin/password_shown.html", {"username": username, "password": password, "created": False})
    if action == "reset-2fa":
        return _users_page(request, notice=_("%(user)s has no second factor now and will set one up at the next "
                                             "sign-in.") % {"user": username})
    message = _("%(user)s can sign in again.") if action == "enable" else _("%(user)s is disabled and signed out everywhere.")
    return _users_page(request, notice=message % {"user": username})


USER_ACTIONS = {"reset": "user.password_reset", "disable": "user.disable", "enable": "user.enable",
                "reset-2fa": "user.second_factor_reset"}


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
