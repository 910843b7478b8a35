"""Lines' routing settings (administrators) and the Asterisk dialplan's routing lookups.

* ``GET /admin/lines``, ``GET/POST /admin/lines/{id}``: overflow centre and wait, opening hours,
  holidays, closed dates, the out-of-hours message.
* ``GET /api/lines/route?line=<dialled>&queue=<queue>&call=<uniqueid>`` (API token, for func_curl):
  ``route=open&queue=Q&wait=S&overflow=Q2`` or ``route=closed&message=SOUND&callback=0|1``, the
  fields always in this order (the dialplan cuts them by position).  A closed line's call is
  recorded as out of hours.
* ``POST /api/lines/callback-request?call=<uniqueid>&line=<dialled>``: the out-of-hours caller
  pressed the key: ``call.facts["callback_requested"] = "out_of_hours"``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from sqlalchemy import select

from hotline.audit import service as audit
from hotline.auth.deps import Principal, csrf_protect, require_roles
from hotline.centres import routing
from hotline.centres.models import Centre, Line
from hotline.db import session_scope, utcnow
from hotline.errors import Invalid, NotFound
from hotline.i18n import Text
from hotline.ingest import spool
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.web import render

router = APIRouter()
admin_only = require_roles("administrator")
MAX_ROW_ID = 2**31 - 1
PROVIDER = "asterisk"  # the only caller of the /api/lines lookups (Twilio asks in-process)


def _centres(session: Any) -> list[Centre]:
    return list(session.scalars(select(Centre).where(Centre.active.is_(True)).order_by(Centre.name)))


def _form_of(line: Line, centres: dict[int, Centre]) -> dict[str, Any]:
    overflow = centres.get(line.overflow_centre_id or 0)
    return {"overflow_centre": overflow.code if overflow else "",
            "overflow_wait": str(line.overflow_wait_seconds or ""), "always_open": line.hours is None,
            "hours": {d: routing.slots_text((line.hours or {}).get(d)) for d in routing.WEEKDAYS},
            "closed_on_holidays": line.closed_on_holidays,
            "closed_dates": "\n".join(f"{d[8:10]}/{d[5:7]}/{d[0:4]}" for d in line.closed_dates or []),
            "closed_message": line.closed_message, "pbx": line.pbx}


@router.get("/admin/lines")
def lines_page(request: Request, principal: Principal = Depends(admin_only)) -> Response:
    with session_scope() as db:
        centres = {c.id: c for c in db.scalars(select(Centre))}
        rows = [{"line": line, "centre": centres.get(line.centre_id),
                 "overflow": centres.get(line.overflow_centre_id or 0),
                 "hours": {d: routing.slots_text((line.hours or {}).get(d)) for d in routing.WEEKDAYS}}
                for line in routing.lines(db)]
        db.expunge_all()
    return render(request, "admin/lines.html", {"rows": rows, "weekdays": routing.WEEKDAYS,
                                                "weekday_labels": routing.WEEKDAY_LABELS})


def _pbx_names() -> list[str]:
    """The PBXes this installation is set up to listen to (suggested on the line's page)."""
    from hotline.settings import get_settings

    s = get_settings()
    names = {s.ami_name} if s.ami_name else set()
    if s.ami_pbx_dir is not None and s.ami_pbx_dir.is_dir():
        names.update(p.stem for p in s.ami_pbx_dir.glob("*.env"))
    return sorted(n for n in names if n)


def _line_page(request: Request, line_id: int, *, form: dict[str, Any] | None = None,
               errors: dict[str, str] | None = None, notice: str = "", status_code: int = 200) -> Response:
    with session_scope() as db:
        line = db.get(Line, line_id)
        if line is None:
            raise NotFound(Text("No such line."))
        centres = _centres(db)
        by_id = {c.id: c for c in db.scalars(select(Centre))}
        context = {"line": line, "centre": by_id.get(line.centre_id),
                   "overflow_choices": [c for c in centres if c.id != line.centre_id],
                   "form": form or _form_of(line, by_id), "errors": errors or {}, "notice": notice,
                   "weekdays": routing.WEEKDAYS, "weekday_labels": routing.WEEKDAY_LABELS,
                   "messages": routing.CLOSED_MESSAGES, "pbx_names": _pbx_names(),
                   "centre_pbx": (by_id[line.centre_id].pbx if line.centre_id in by_id else "")}
        db.expunge_all()
    return render(request, "admin/line.html", context, status_code=status_code)


@router.get("/admin/lines/{line_id}")
def line_page(request: Request, line_id: int = Path(ge=1, le=MAX_ROW_ID),
              principal: Principal = Depends(admin_only)) -> Response:
    return _line_page(request, line_id)


@router.post("/admin/lines/{line_id}", dependencies=[Depends(admin_only), Depends(csrf_protect)])
async def save_line(request: Request, line_id: int = Path(ge=1, le=MAX_ROW_ID),
                    principal: Principal = Depends(admin_only)) -> Response:
    data = await request.form()

    def field(name: str) -> str:
        value = data.get(name, "")
        return value[:500] if isinstance(value, str) else ""

    settings = routing.LineSettings(
        overflow_centre=field("overflow_centre"), overflow_wait=field("overflow_wait"),
        always_open=bool(field("always_open")), hours={d: field(f"hours_{d}") for d in routing.WEEKDAYS},
        closed_on_holidays=bool(field("closed_on_holidays")), closed_dates=field("closed_dates"),
        closed_message=field("closed_message") or "callback", pbx=field("pbx"))
    form = dataclasses.asdict(settings)
    try:
        with session_scope() as db:
            line = routing.update_line(db, line_id=line_id, form=settings)
            audit.record(db, actor=principal, action="line.settings", object_type="line", object_id=line.id,
                         request=request, detail={"overflow_centre_id": line.overflow_centre_id,
                                                  "overflow_wait_seconds": line.overflow_wait_seconds,
                                                  "hours": line.hours, "closed_on_holidays": line.closed_on_holidays,
                                                  "closed_dates": line.closed_dates,
                                                  "closed_message": line.closed_message, "pbx": line.pbx})
    except Invalid as exc:
        return _line_page(request, line_id, form=form, errors=exc.errors, status_code=422)
    return RedirectResponse(f"/admin/lines/{line_id}?saved=1", status_code=303)


# ---------------------------------------------------------------------- the dialplan's lookups
def _submit(kind: Kind, *, call: str, line: str, reason: str | None = None) -> None:
    """Record what the dialplan told us about a call, as the listener records AMI events."""
    now = utcnow()
    payload = json.dumps({"event": kind.value, "call": call, "line": line, "reason": reason})
    event = CallEvent(kind, PROVIDER, call, now, dialed=line or None, reason=reason)
    spool.submit([RawIn(provider=PROVIDER, dedupe_key=f"hotline-route:{kind.value}:{call}", received_at=now,
                        payload=payload, event_type=f"HotlineRoute/{kind.value}", provider_key=call,
                        events=[event])])


@router.get("/api/lines/route", response_class=PlainTextResponse)  # the dialplan reads text
def route(line: str = Query("", max_length=64), queue: str = Query("", max_length=128),
          call: str = Query("", max_length=128), principal: Principal = Depends(admin_only)) -> Response:
    """For the Asterisk dialplan (API token).  Fails open on the PBX's side: anything but a clear
    ``route=closed`` sends the caller to the usual queue."""
    with session_scope() as db:
        found = routing.find_line(db, provider=PROVIDER, dialed=line or None, queue=queue or None)
        if found is None:
            return PlainTextResponse(f"route=open&queue={queue}&wait=&overflow=")
        decided = routing.route_of(db, found, now=utcnow())
        if decided.open:
            own = found.identifier if found.kind == "queue" else routing.centre_queue(db, found.centre_id, PROVIDER)
            overflow = (routing.centre_queue(db, decided.overflow_centre_id, PROVIDER) or ""
                        if decided.overflow_centre_id else "")
            wait = decided.wait_seconds or ""
            return PlainTextResponse(f"route=open&queue={own or queue}&wait={wait}&overflow={overflow}")
    if call:
        _submit(Kind.CLOSED, call=call, line=line)
    return PlainTextResponse(f"route=closed&message={decided.sound}&callback={int(decided.callback)}")


@router.post("/api/lines/callback-request", dependencies=[Depends(admin_only), Depends(csrf_protect)],
             response_class=PlainTextResponse)
def callback_request(call: str = Query(..., min_length=1, max_length=128), line: str = Query("", max_length=64),
                     principal: Principal = Depends(admin_only)) -> Response:
    """The dialplan says an out-of-hours caller pressed the key to be called back."""
    _submit(Kind.CALLBACK_REQUESTED, call=call, line=line, reason="out_of_hours")
    return PlainTextResponse("ok")
