"""The domain errors every service raises, and their one mapping to HTTP.

Services raise these with a ``Text`` that says what is wrong (and, where it helps, what to do);
views do not catch them: ``install(app)`` maps them once, in the reader's language, to the error
page for a browser and to ``{"detail": …}`` JSON for ``/api`` and scripts (the same branching as
any ``HTTPException``, see ``hotline.web``).

=================  ======  ================================================================
error              status  meaning
=================  ======  ================================================================
``NotFound``       404     no such thing, or the actor may not know it exists
``NotAllowed``     403     it exists, the actor may not do this (raise ``NotFound`` instead
                           where even its existence must not show)
``Invalid``        422     the input is wrong; ``messages`` maps each field to what is wrong
``Conflict``       409     the state changed meanwhile (e.g. someone else saved first)
=================  ======  ================================================================

Anything else escaping a view is a bug: it is logged with a request id and the reader gets a
500 page naming that id and nothing else.  Domain-specific errors subclass these (e.g.
``records.service.RecordError`` is an ``Invalid``) so that a view may still catch one to show a
form again with its messages.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from hotline.i18n import N_, Text, current_language, translate_value

log = logging.getLogger("hotline.errors")

__all__ = ["Actor", "Conflict", "DomainError", "Invalid", "NotAllowed", "NotFound", "install"]


class Actor(Protocol):
    """Who acts: a signed-in user (``hotline.auth.deps.Principal``) or a test double (read-only members,
    so that a frozen Principal satisfies it)."""

    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def centre_id(self) -> int | None: ...


class DomainError(Exception):
    """A refusal a service explains; ``status`` is its HTTP status."""

    status: ClassVar[int] = 400
    default: ClassVar[str] = N_("The request could not be understood.")

    @property
    def message(self) -> Any:
        """What the reader is told: the ``Text`` (or anything with ``translate(lang)``) the error was
        raised with, else the class's ``default``.  Other arguments (ids) are for logs only."""
        if self.args and hasattr(self.args[0], "translate"):
            return self.args[0]
        return Text(self.default)

    def detail(self, lang: str | None = None) -> str:
        """The message in ``lang`` (default: the current request's language)."""
        return str(self.message.translate(lang or current_language.get()))

    def __str__(self) -> str:
        return self.detail()


class NotFound(DomainError, LookupError):
    status = 404
    default = N_("Not found, or you may not see it.")


class NotAllowed(DomainError, PermissionError):
    status = 403
    default = N_("You may not do this.")


class Conflict(DomainError):
    status = 409
    default = N_("This was changed meanwhile; load it again and retry.")


class Invalid(DomainError, ValueError):
    """Bad input: ``messages`` maps a field name ("" for the whole input) to what is wrong."""

    status = 422
    default = N_("Some fields need attention.")

    def __init__(self, message: Any = None, *args: Any) -> None:
        if isinstance(message, Mapping):
            messages: dict[str, Any] = dict(message)
            super().__init__(*args)
        else:
            messages = {"": message} if hasattr(message, "translate") else {}
            super().__init__(*((message, *args) if message is not None else args))
        if not getattr(self, "messages", None):  # a subclass may have set its own first
            self.messages = messages

    def translated(self, lang: str | None = None) -> dict[str, str]:
        lang = lang or current_language.get()
        return {k: str(v.translate(lang) if hasattr(v, "translate") else translate_value(v, lang))
                for k, v in self.messages.items()}

    @property
    def errors(self) -> dict[str, str]:
        return self.translated()

    def detail(self, lang: str | None = None) -> str:
        if self.messages:
            return " ".join(self.translated(lang).values())
        return super().detail(lang)


# ---------------------------------------------------------------------- HTTP mapping
def request_id(request: Any) -> str:
    """The request's id: the proxy's ``X-Request-ID`` when it sent one, else a fresh one."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        given = request.headers.get("x-request-id", "")
        rid = given if given.isalnum() and len(given) <= 64 else uuid.uuid4().hex[:16]
        request.state.request_id = rid
    return str(rid)


async def _domain_error(request: Any, exc: Exception) -> Any:
    """A ``DomainError`` answers like ``HTTPException(status, detail)`` does (page or JSON)."""
    from starlette.exceptions import HTTPException

    from hotline.auth.deps import request_language

    assert isinstance(exc, DomainError)
    lang = request_language(request)
    http = HTTPException(exc.status, detail=exc.detail(lang))
    handler = request.app.exception_handlers.get(HTTPException)
    if isinstance(exc, Invalid) and exc.messages and _wants_json(request):
        from fastapi.responses import JSONResponse

        return JSONResponse({"detail": http.detail, "errors": exc.translated(lang)}, status_code=exc.status)
    if handler is None:
        from fastapi.exception_handlers import http_exception_handler

        return await http_exception_handler(request, http)
    return await handler(request, http)


def _wants_json(request: Any) -> bool:
    from hotline.auth.deps import wants_json

    return bool(wants_json(request)) or "text/html" not in request.headers.get("accept", "")


async def _unexpected(request: Any, exc: Exception) -> Any:
    """A bug: logged with the request id; the reader learns only that id."""
    from fastapi.responses import JSONResponse

    from hotline.auth.deps import request_language
    from hotline.i18n import translator

    rid = request_id(request)
    log.error("request.failed", exc_info=(type(exc), exc, exc.__traceback__),
              extra={"request_id": rid, "method": request.method, "path": request.url.path})
    try:
        lang = request_language(request)
    except Exception:  # noqa: BLE001 - the database itself may be what failed
        lang = None
    detail = translator(lang)(N_("Something went wrong on our side. It has been logged as %(id)s.")) % {"id": rid}
    headers = {"X-Request-ID": rid, "Cache-Control": "no-store"}
    if not _wants_json(request):
        try:
            from hotline.web import render

            return render(request, "error.html", {"status": 500, "title": N_("Something went wrong"),
                                                  "detail": detail}, status_code=500, headers=headers)
        except Exception:  # the page itself failed: fall back to JSON
            log.exception("request.error_page_failed", extra={"request_id": rid})
    return JSONResponse({"detail": detail, "request_id": rid}, status_code=500, headers=headers)


def install(app: Any) -> None:
    """One mapping for the whole application (called by ``create_app``)."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(Exception, _unexpected)
