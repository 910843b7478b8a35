"""Bounds every route's inputs share, checked once for all routes (#14 finding 7: no 500 on input).

``check_request`` is an application-wide dependency (``create_app``).  Before any route runs it
looks at the matched route's declared parameters and refuses, with a 422 that names the parameter
and says what is wrong:

- an integer (path or query) outside the 64-bit range the databases store (ids above 2^63, a
  20-digit ``offset``): no database driver error later;
- a date or date-time outside 1900–2999 (``until=9999-12-31``, ``since=0001-01-01``): the
  conversion between a centre's local day and UTC cannot overflow;
- a JSON body that is not valid JSON or not an object, for routes that read one themselves
  (routes declaring a list body are left alone).

``DataError``/``OverflowError`` raised anyway (a value this check could not see) become a 422
too, by ``setup_app`` in ``hotline.web``.
"""

from __future__ import annotations

import json
import types
import typing
from datetime import date, datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from hotline.i18n import N_, translator

INT_MAX = 2**63 - 1
INT_MIN = -(2**63)
YEAR_MIN, YEAR_MAX = 1900, 2999
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

TOO_LARGE = N_("the number is out of range (at most %(max)s).")
BAD_DATE = N_("give a date between %(first)s and %(last)s.")
NOT_JSON = N_("the body is not valid JSON.")
NOT_OBJECT = N_('the JSON body must be an object ({"name": value, …}), not %(kind)s.')
OUT_OF_RANGE = N_("A value in the request is out of range.")


def _kinds(annotation: Any) -> set[type]:
    """The plain types an annotation allows (``int | None`` → {int, NoneType}; ``list[int]`` → {int})."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(annotation)))
    if origin in (list, set, tuple, frozenset):
        args = typing.get_args(annotation)
        return _kinds(args[0]) if args else set()
    return {annotation} if isinstance(annotation, type) else set()


def _values(request: Request, source: str, name: str) -> list[str]:
    if source == "path":
        value = request.path_params.get(name)
        return [] if value is None else [str(value)]
    return request.query_params.getlist(name)


def _problem(source: str, name: str, raw: str, kinds: set[type], _: Any) -> dict[str, Any] | None:
    text = raw.strip()
    if int in kinds and bool not in kinds and text.lstrip("+-").isascii() and text.lstrip("+-").isdigit() \
            and not INT_MIN <= int(text) <= INT_MAX:
        return {"type": "value_error", "loc": (source, name), "input": raw, "msg": _(TOO_LARGE) % {"max": INT_MAX}}
    if kinds & {date, datetime} and len(text) >= 4 and text[:4].isascii() and text[:4].isdigit() \
            and (len(text) == 4 or not text[4].isdigit()) and not YEAR_MIN <= int(text[:4]) <= YEAR_MAX:
        return {"type": "value_error", "loc": (source, name), "input": raw,
                "msg": _(BAD_DATE) % {"first": f"{YEAR_MIN}-01-01", "last": f"{YEAR_MAX}-12-31"}}
    if kinds & {date, datetime} and text[:1] in "+-" and text[1:5].isdigit():  # extended years
        return {"type": "value_error", "loc": (source, name), "input": raw,
                "msg": _(BAD_DATE) % {"first": f"{YEAR_MIN}-01-01", "last": f"{YEAR_MAX}-12-31"}}
    return None


def _language(request: Request) -> str:
    from hotline.auth.deps import request_language

    try:
        return request_language(request)
    except Exception:  # noqa: BLE001 - the language never decides whether a request is refused
        return "vi"


async def check_request(request: Request) -> None:
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    cache: list[Any] = []

    def _(msgid: str) -> str:  # the language is looked up only when something is refused
        if not cache:
            cache.append(translator(_language(request)))
        return str(cache[0](msgid))

    errors: list[dict[str, Any]] = []
    for source, params in (("path", _flat(dependant, "path_params")), ("query", _flat(dependant, "query_params"))):
        for param in params:
            kinds = _kinds(param.field_info.annotation)
            if not kinds & {int, date, datetime}:
                continue
            name = param.alias or param.name
            for raw in _values(request, source, name):
                problem = _problem(source, name, raw, kinds, _)
                if problem:
                    errors.append(problem)
    ctype = request.headers.get("content-type", "").lower()
    if request.method in BODY_METHODS and "json" in ctype:
        problem = await _body_problem(request, dependant, _)
        if problem:
            errors.append(problem)
    elif request.method in BODY_METHODS and ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        typed = [(p.alias or p.name, _kinds(p.field_info.annotation)) for p in _flat(dependant, "body_params")]
        typed = [(name, kinds) for name, kinds in typed if kinds & {int, date, datetime}]
        if typed:
            form = await request.form()
            for name, kinds in typed:
                for value in form.getlist(name):
                    problem = _problem("body", name, value, kinds, _) if isinstance(value, str) else None
                    if problem:
                        errors.append(problem)
    if errors:
        raise RequestValidationError(errors)


def _flat(dependant: Any, attr: str) -> list[Any]:
    """The route's parameters of one kind, its sub-dependencies' included."""
    out = list(getattr(dependant, attr, []))
    for sub in getattr(dependant, "dependencies", []):
        out.extend(_flat(sub, attr))
    return out


async def _body_problem(request: Request, dependant: Any, _: Any) -> dict[str, Any] | None:
    for param in _flat(dependant, "body_params"):
        if typing.get_origin(param.field_info.annotation) in (list, tuple, set) or \
                param.field_info.annotation in (list, tuple, set):
            return None  # the route takes a list: its own validation answers
    body = await request.body()
    if not body.strip():
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {"type": "json_invalid", "loc": ("body",), "input": None, "msg": _(NOT_JSON)}
    if not isinstance(data, dict):
        kind = {list: "[…]", str: '"…"', bool: "true/false", type(None): "null"}.get(type(data), str(data)[:20])
        return {"type": "model_attributes_type", "loc": ("body",), "input": None,
                "msg": _(NOT_OBJECT) % {"kind": kind}}
    return None
