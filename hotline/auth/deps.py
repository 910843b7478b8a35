"""FastAPI dependencies: who is asking, may they, and did the request come from our own page.

    from hotline.auth.deps import Principal, current_principal, require_roles, csrf_protect

    @router.get("/calls")
    def calls(request: Request, principal: Principal = Depends(require_roles("counsellor", "supervisor"))): ...

    @router.post("/calls/{id}", dependencies=[Depends(csrf_protect)])
    ...

* ``current_principal``: the signed-in user; an HTML request without one is sent to
  ``/login?next=…`` (303), an API/JSON request gets 401.
* ``optional_principal``: the same, or None.
* ``require_roles(*roles)``: 403 for any other role.
* ``csrf_protect``: POST/PUT/PATCH/DELETE need the session's token in the form field
  ``csrf_token`` or the header ``X-CSRF-Token``; 403 otherwise.
* ``Authorization: Bearer <HOTLINE_API_TOKEN>`` on ``/api/*`` is an administrator-equivalent
  service principal (id 0, username ``api``) when the setting is non-empty; it needs no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import HTTPException, Request

from hotline.auth.models import ROLES
from hotline.i18n import DEFAULT_LANGUAGE, normalize_language, translator
from hotline.settings import get_settings

SESSION_COOKIE = "hotline_session"
PRE_SESSION_COOKIE = "hotline_pre"  # anonymous visitors: keys the sign-in form's CSRF token
LANGUAGE_COOKIE = "hotline_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SERVICE_USERNAME = "api"


@dataclass(frozen=True)
class Principal:
    id: int
    username: str
    display_name: str
    role: str
    centre_id: int | None
    language: str
    timezone: str = "Asia/Ho_Chi_Minh"
    is_service: bool = False

    @property
    def name(self) -> str:
        return self.display_name or self.username

    def has_role(self, *roles: str) -> bool:
        return self.role in roles


_UNSET = object()


def wants_json(request: Request) -> bool:
    """API and script requests get status codes; browser page loads get pages and redirects."""
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    first = accept.split(",")[0].strip().lower()
    return first.startswith(("application/json", "text/event-stream"))


def _service_principal(request: Request) -> Principal | None:
    if not request.url.path.startswith("/api/"):
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    settings = get_settings()
    expected = settings.api_token
    if not expected or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        _ = translator(normalize_language(request.cookies.get(LANGUAGE_COOKIE)))
        raise HTTPException(401, detail=_("The API token is wrong. Use the value of HOTLINE_API_TOKEN."),
                            headers={"WWW-Authenticate": "Bearer"})
    return Principal(id=0, username=SERVICE_USERNAME, display_name="API", role="administrator",
                     centre_id=None, language=DEFAULT_LANGUAGE, timezone=settings.default_timezone,
                     is_service=True)


def _load_from_cookie(request: Request) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie:
        return None
    from hotline.auth import service
    from hotline.db import session_scope

    with session_scope() as db:
        found = service.load_session(db, cookie_value=cookie)
        if found is None:
            return None
        row, user, tz = found
        request.state.csrf_token = row.csrf_token
        request.state.session_id = row.id
        if row.pending:
            # Half signed in (second factor, temporary password or enrolment still due): no
            # principal; current_principal sends the browser to the stage's page.
            request.state.pending = row.pending
            request.state.pending_user_id = user.id
            return None
        return Principal(id=user.id, username=user.username, display_name=user.display_name or "",
                         role=user.role, centre_id=user.centre_id, language=normalize_language(user.language),
                         timezone=tz or get_settings().default_timezone)


def resolve_principal(request: Request) -> Principal | None:
    """The request's principal (cached on ``request.state``), or None when nobody is signed in."""
    cached = getattr(request.state, "principal", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]  # request.state is untyped; only this function sets it
    principal = _service_principal(request) or _load_from_cookie(request)
    request.state.principal = principal
    return principal


def request_language(request: Request) -> str:
    principal = resolve_principal(request)
    if principal is not None and not principal.is_service:
        return principal.language
    return normalize_language(request.cookies.get(LANGUAGE_COOKIE))


def _tr(request: Request, message: str) -> str:
    return translator(request_language(request))(message)


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="")


def optional_principal(request: Request) -> Principal | None:
    return resolve_principal(request)


def pending_stage(request: Request) -> str:
    """The sign-in stage this browser's session still has to pass ("" when none)."""
    resolve_principal(request)
    return str(getattr(request.state, "pending", None) or "")


def current_principal(request: Request) -> Principal:
    principal = resolve_principal(request)
    if principal is not None:
        return principal
    stage = pending_stage(request)
    if stage:
        from hotline.auth.service import STAGE_URLS

        if wants_json(request) or request.headers.get("hx-request"):
            raise HTTPException(401, detail=_tr(request, "Finish signing in first (second factor or new password)."))
        raise HTTPException(303, detail=_tr(request, "Please sign in."),
                            headers={"Location": STAGE_URLS.get(stage, "/login")})
    if wants_json(request):
        raise HTTPException(401, detail=_tr(request, "Your session has ended. Please sign in again."),
                            headers={"WWW-Authenticate": "Bearer"})
    if request.headers.get("hx-request"):
        raise HTTPException(401, detail=_tr(request, "Your session has ended. Please sign in again."),
                            headers={"HX-Redirect": login_url(request)})
    raise HTTPException(303, detail=_tr(request, "Please sign in."), headers={"Location": login_url(request)})


def require_roles(*roles: str) -> Callable[[Request], Principal]:
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"require_roles needs roles from {ROLES}, got {roles!r}")
    allowed = frozenset(roles)

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if principal.role not in allowed:
            raise HTTPException(403, detail=_tr(request, "Your account does not have access to this page."))
        return principal

    dependency.__name__ = "require_" + "_or_".join(roles)
    return dependency


# ------------------------------------------------------------------ CSRF
def _pre_session_token(pre: str) -> str:
    key = get_settings().effective_secret_key.encode()
    return hmac.new(key, b"csrf-pre:" + pre.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token forms must send back: the session's, or for anonymous visitors one keyed to a cookie.

    For an anonymous visitor without the cookie, a new cookie value is chosen and left in
    ``request.state.new_pre_session`` for ``hotline.web.render`` to set.
    """
    principal = resolve_principal(request)
    token = getattr(request.state, "csrf_token", None)
    if (principal is not None or getattr(request.state, "pending", None)) and token:
        return str(token)
    pre = request.cookies.get(PRE_SESSION_COOKIE) or getattr(request.state, "new_pre_session", None)
    if not pre:
        pre = secrets.token_urlsafe(24)
        request.state.new_pre_session = pre
    return _pre_session_token(pre)


def _expected_csrf(request: Request) -> str | None:
    principal = resolve_principal(request)
    token = getattr(request.state, "csrf_token", None)
    if (principal is not None or getattr(request.state, "pending", None)) and token:
        return str(token)
    pre = request.cookies.get(PRE_SESSION_COOKIE)
    return _pre_session_token(pre) if pre else None


async def csrf_protect(request: Request) -> None:
    if request.method.upper() in SAFE_METHODS:
        return
    principal = resolve_principal(request)
    if principal is not None and principal.is_service:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else ""
    expected = _expected_csrf(request)
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, detail=_tr(
            request, "This form has expired or did not come from this site (missing or wrong security "
                     "token). Go back, reload the page and send it again."))

