"""The web foundation every page builds on: templates, rendering, the home redirect, error pages.

    from hotline.web import render, add_template_dir

    add_template_dir(Path(__file__).parent / "templates")   # once, at import of your views module

    @router.get("/calls")
    def calls(request: Request, principal: Principal = Depends(require_roles("counsellor"))):
        return render(request, "calls/list.html", {"calls": rows})

Templates extend ``base.html`` (blocks ``title``, ``content``, ``scripts``) and get
``principal``, ``csrf_token``, ``_``/``gettext``/``ngettext`` (the request's language), ``lang``,
``fmt_date`` and ``fmt_datetime`` (dd/mm/yyyy in the user's centre timezone), ``role_label`` and
``term_label(scheme, code)`` (a taxonomy label in the page's language);
filters ``|local_date`` (dd/mm/yyyy), ``|local_datetime`` (dd/mm/yyyy HH:MM) and ``|local_time`` (HH:MM),
also in the centre's timezone, for dates, datetimes and ISO strings.  Forms include
``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">``; scripts send the token in the
``X-CSRF-Token`` header (``base.html`` puts it in ``<meta name="csrf-token">``).

Message ids are English; the Vietnamese lives in ``hotline/i18n/vi/LC_MESSAGES/messages.po``
(see ``hotline/i18n/README.md``).  Autoescaping is on: never mark user input ``|safe``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotline import i18n
from hotline.auth.deps import (
    LANGUAGE_COOKIE,
    PRE_SESSION_COOKIE,
    Principal,
    csrf_token,
    request_language,
    resolve_principal,
    wants_json,
)
from hotline.i18n import N_
from hotline.settings import get_settings

TEMPLATE_DIR = Path(__file__).parent / "templates"

_loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(TEMPLATE_DIR))])
_env = jinja2.Environment(
    loader=_loader,
    autoescape=True,  # every template, whatever its extension
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
# Fallback for templates rendered outside ``render`` (the current language comes from a context variable).
_env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the jinja2.ext.i18n extension at run time
    lambda message: i18n.get_translations(i18n.current_language.get()).gettext(message),
    lambda singular, plural, n: i18n.get_translations(i18n.current_language.get()).ngettext(singular, plural, n),
    newstyle=True,
)
templates = Jinja2Templates(env=_env)

ROLE_LABELS = {
    "counsellor": N_("Counsellor"),
    "supervisor": N_("Supervisor"),
    "administrator": N_("Administrator"),
    "partner": N_("Partner service"),
}

# Where GET / sends each role.
HOME_BY_ROLE = {
    "counsellor": "/live",
    "supervisor": "/live/wallboard",
    "administrator": "/calls",
    "partner": "/partner",
}


def add_template_dir(path: str | Path) -> None:
    """Let templates in ``path`` be found (after those already added; names should be prefixed by domain)."""
    folder = str(Path(path).resolve())
    loaders = list(_loader.loaders)
    if any(isinstance(ld, jinja2.FileSystemLoader) and folder in ld.searchpath for ld in loaders):
        return
    loaders.append(jinja2.FileSystemLoader(folder))
    _loader.loaders = loaders


# ------------------------------------------------------------------ dates
def _zone(principal: Principal | None) -> ZoneInfo:
    name = principal.timezone if principal is not None else get_settings().default_timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Ho_Chi_Minh")


def make_formatters(principal: Principal | None) -> tuple[Callable[..., str], Callable[..., str]]:
    zone = _zone(principal)

    def fmt_date(value: date | datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            value = value.astimezone(zone).date()
        return value.strftime("%d/%m/%Y")

    def fmt_datetime(value: datetime | None, seconds: bool = False) -> str:
        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")

    return fmt_date, fmt_datetime


def _as_date_or_datetime(value: Any) -> date | datetime | None:
    """A date, a datetime, or an ISO string (``2026-06-15``, ``2026-06-15T08:30:00+00:00``)."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, date) else None


@jinja2.pass_context
def _filter_date(ctx: Any, value: Any) -> str:
    """``{{ when|local_date }}``: dd/mm/yyyy in the centre's timezone (plain dates are not shifted)."""
    value = _as_date_or_datetime(value)
    return make_formatters(ctx.get("principal"))[0](value) if value is not None else ""


@jinja2.pass_context
def _filter_datetime(ctx: Any, value: Any, seconds: bool = False) -> str:
    """``{{ when|local_datetime }}``: dd/mm/yyyy HH:MM in the centre's timezone."""
    value = _as_date_or_datetime(value)
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return make_formatters(ctx.get("principal"))[0](value)
    return make_formatters(ctx.get("principal"))[1](value, seconds)


@jinja2.pass_context
def _filter_time(ctx: Any, value: Any) -> str:
    """``{{ when|local_time }}``: HH:MM in the centre's timezone."""
    value = _as_date_or_datetime(value)
    if not isinstance(value, datetime):
        return ""
    return make_formatters(ctx.get("principal"))[1](value)[-5:]


_env.filters.update(local_date=_filter_date, local_datetime=_filter_datetime, local_time=_filter_time)


# ------------------------------------------------------------------ rendering
def _template_gettext(trans: Any) -> tuple[Any, Any]:
    """Jinja "newstyle" gettext: ``_("Hello %(name)s", name=x)`` escapes ``x`` and fills it in."""

    @jinja2.pass_context
    def gettext(ctx: Any, message: str, **variables: Any) -> str:
        rv: str = trans.gettext(message)
        if ctx.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables if variables else rv

    @jinja2.pass_context
    def ngettext(ctx: Any, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        rv: str = trans.ngettext(singular, plural, num)
        if ctx.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables

    return gettext, ngettext


def _template_pgettext(trans: Any) -> Any:
    """``pgettext("translator context", "Word", **values)``: one msgid per meaning when an English word
    has two (``Received`` a time, ``Received`` a count of calls)."""

    @jinja2.pass_context
    def pgettext(ctx: Any, context: str, message: str, **variables: Any) -> str:
        rv: str = trans.pgettext(context, message)
        if ctx.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables if variables else rv

    return pgettext


def is_secure_cookie() -> bool:
    return get_settings().public_base_url.lower().startswith("https://")


def _term_label(scheme: str, code: Any, lang: str) -> str:
    """A taxonomy term's label in the page's language (taxonomies carry both languages as data)."""
    from hotline.taxonomy import get_taxonomies

    return get_taxonomies().label(scheme, None if code is None else str(code), lang)


def _unread_notifications(request: Request, principal: Principal | None) -> int:
    """The top bar's inbox count (read once per request, only by pages showing the top bar)."""
    if principal is None or principal.is_service:
        return 0
    cached = getattr(request.state, "unread_notifications", None)
    if cached is None:
        from hotline.notifications.service import unread_for_page

        cached = request.state.unread_notifications = unread_for_page(principal.id)
    return int(cached)


def template_context(request: Request, context: dict[str, Any] | None = None) -> dict[str, Any]:
    principal = resolve_principal(request)
    lang = request_language(request)
    trans = i18n.get_translations(lang)
    gettext, ngettext = _template_gettext(trans)
    fmt_date, fmt_datetime = make_formatters(principal)
    ctx: dict[str, Any] = {
        "request": request,
        "principal": principal,
        "csrf_token": csrf_token(request),
        "lang": lang,
        "languages": i18n.LANGUAGE_NAMES,
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "pgettext": _template_pgettext(trans),
        "fmt_date": fmt_date,
        "fmt_datetime": fmt_datetime,
        "role_label": lambda role: trans.gettext(ROLE_LABELS.get(role) or role),
        "term_label": lambda scheme, code: _term_label(scheme, code, lang),
        "unread_notifications": lambda: _unread_notifications(request, principal),
    }
    ctx.update(context or {})
    return ctx


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Render a template with the request's principal, CSRF token, language and date formatters."""
    ctx = template_context(request, context)
    token = i18n.current_language.set(ctx["lang"])
    try:
        response = templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)
    finally:
        i18n.current_language.reset(token)
    new_pre = getattr(request.state, "new_pre_session", None)
    if new_pre:
        response.set_cookie(PRE_SESSION_COOKIE, new_pre, httponly=True, samesite="lax",
                            secure=is_secure_cookie(), path="/")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# ------------------------------------------------------------------ routes and error pages
router = APIRouter()


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    principal = resolve_principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME_BY_ROLE.get(principal.role, "/login"), status_code=303)


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


ERROR_TITLES = {
    400: N_("The request could not be understood"),
    401: N_("Please sign in"),
    403: N_("Access denied"),
    404: N_("Page not found"),
    405: N_("This action is not allowed here"),
    409: N_("Conflict"),
    422: N_("Some fields need attention"),
    429: N_("Too many requests"),
}


async def _html_errors(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    accept = request.headers.get("accept", "")
    if wants_json(request) or "text/html" not in accept or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    title = ERROR_TITLES.get(exc.status_code, N_("Something went wrong"))
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if detail == _phrase(exc.status_code):
        detail = ""  # Starlette's English default says nothing the title does not
    return render(request, "error.html", {"status": exc.status_code, "title": title, "detail": detail},
                  status_code=exc.status_code, headers=dict(exc.headers or {}))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def _html_validation_errors(request: Request, exc: Exception) -> Response:
    """A browser form that fails validation gets a page naming each field and what is wrong."""
    assert isinstance(exc, RequestValidationError)
    if wants_json(request) or "text/html" not in request.headers.get("accept", ""):
        return await request_validation_exception_handler(request, exc)
    problems = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query", "path", "form")]
        problems.append(f"{'.'.join(loc) or '?'}: {err.get('msg', '')}")
    return render(request, "error.html", {"status": 422, "title": ERROR_TITLES[422], "detail": "",
                                          "problems": problems}, status_code=422)


# ---------------------------------------------------------------------- security headers (#14)
# No inline script or style anywhere (templates load /static files; data for scripts travels in
# <script type="application/json">, which is never executed), no framing, no referrer (a partner's
# single-use link never leaks), nothing cached of an API answer.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cross-origin-opener-policy": "same-origin",
}
STATIC_PREFIXES = ("/static/", "/live-static/", "/daily-log-static/")


class SecurityHeaders:
    """Pure ASGI (server-sent events stream through untouched): adds the headers above to every
    HTTP answer, ``Cache-Control: no-store`` to everything but static files (API answers and pages
    carry callers' data), and HSTS in production."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        production = get_settings().is_production
        docs = not production and path in ("/api/docs", "/docs/oauth2-redirect")  # Swagger UI (development only)

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _v in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present and not (docs and name == "content-security-policy"):
                        headers.append((name.encode(), value.encode()))
                if not path.startswith(STATIC_PREFIXES) and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                if production:
                    headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


@router.get("/openapi.json", include_in_schema=False)
def openapi_for_staff(request: Request) -> Response:
    """In production the schema is for signed-in staff and API clients only (``create_app`` turns
    FastAPI's anonymous /openapi.json off there); elsewhere FastAPI's own answers first."""
    from fastapi.responses import JSONResponse

    from hotline.auth.deps import current_principal

    current_principal(request)
    return JSONResponse(request.app.openapi())


# ---------------------------------------------------------------------- what the schema says (#14)
# FastAPI documents a 200 in JSON and its own 422 on every operation. The app answers more than
# that, the same way everywhere: pages in HTML (JSON when asked), a 303 to the sign-in page or after
# a form, and the errors of hotline.errors and the auth checks, as JSON {"detail": "...", ...} for
# the API and scripts, as an HTML page for a browser.  document_responses() writes that down once,
# so Schemathesis (tests/security/test_schemathesis.py) checks the answers against the truth.
ERROR_CODES = {400: "The request could not be understood (the answer says what is wrong)",
               401: "Not signed in, or a wrong API token",
               403: "Not allowed for this account, or a missing/wrong CSRF token or webhook signature",
               404: "No such object, or one this account may not see",
               405: "This method is not allowed here",
               409: "Conflict: the object changed meanwhile, or its state does not allow this",
               413: "The request body is too large",
               422: "A parameter, field or body is not valid (the answer names it)",
               429: "Too many attempts: wait (the answer says how long)"}
ERROR_SCHEMA = {
    "title": "Error", "type": "object", "required": ["detail"],
    "properties": {
        "detail": {"anyOf": [{"type": "string"},
                             {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}],
                   "description": "What was wrong, in the reader's language (FastAPI's validation errors: a list)"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Field name → what is wrong with it"},
        "request_id": {"type": "string"}},
}
EXPORT_TYPES = {".csv": "text/csv", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _success_types(path: str) -> list[str]:
    for suffix, media in EXPORT_TYPES.items():
        if path.endswith(suffix):
            return [media, "text/html", "application/json"]  # an error page when there is nothing to export
    if path.startswith("/webhooks/"):
        return ["text/xml", "text/plain"]
    if path.startswith("/api/"):
        return []  # what the route declares (FastAPI: JSON, or its response_class, e.g. text for the dialplan)
    return ["text/html", "application/json"]  # a page, or JSON for Accept: application/json and htmx


def document_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the answers every operation really gives (see above) to FastAPI's OpenAPI schema.
    A route answering something else declares it (``response_class=``) and it is kept."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, item in schema.get("paths", {}).items():
        api = path.startswith("/api/")
        webhook = path.startswith("/webhooks/")
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            ok = responses.setdefault("200", {"description": "Successful Response"})
            content = ok.setdefault("content", {})
            declared = content.get("application/json", {}).get("schema", {})
            for media in _success_types(path):
                content.setdefault(media, {"schema": declared if media == "application/json" else {"type": "string"}})
            plain = "text/plain" in content
            if not api:
                responses.setdefault("303", {"description": "See Other: to the sign-in page, or after a form"})
            for code, description in ERROR_CODES.items():
                body: dict[str, Any] = {"application/json": {"schema": error_ref}}
                if not api:
                    body["text/html"] = {"schema": {"type": "string"}}
                if webhook or plain:
                    body["text/plain"] = {"schema": {"type": "string"}}
                responses[str(code)] = {"description": description, "content": body}
    return schema


def document_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_responses(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema


def setup_app(app: FastAPI) -> None:
    """Browser page loads get an HTML error page; API and script requests keep FastAPI's JSON.

    Pages, scripts and JSON over 1 kB are gzipped for slow provincial connections (the record
    page shrinks about fivefold); server-sent events are left alone by the middleware."""
    from starlette.middleware.gzip import GZipMiddleware

    document_openapi(app)
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(StarletteHTTPException, _html_errors)
    app.add_exception_handler(RequestValidationError, _html_validation_errors)
    from sqlalchemy.exc import DataError

    app.add_exception_handler(DataError, _out_of_range)
    app.add_exception_handler(OverflowError, _out_of_range)


async def _out_of_range(request: Request, exc: Exception) -> Response:
    """A value the database cannot hold (one ``hotline.inputs`` could not see): 422, never 500."""
    import logging

    from hotline.inputs import OUT_OF_RANGE

    logging.getLogger(__name__).warning("refused a value out of range on %s: %s", request.url.path,
                                        str(exc).splitlines()[0][:200])
    raise_as = StarletteHTTPException(422, detail=i18n.translator(request_language(request))(OUT_OF_RANGE))
    return await _html_errors(request, raise_as)


def language_cookie(response: Response, lang: str) -> None:
    response.set_cookie(LANGUAGE_COOKIE, i18n.normalize_language(lang), max_age=365 * 24 * 3600,
                        samesite="lax", secure=is_secure_cookie(), path="/")
