"""Reading calls back over HTTP: ``GET /api/calls`` and the staff calls page."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import domains
from hotline.auth.deps import Principal, csrf_protect, require_roles
from hotline.auth.models import User
from hotline.calls import service
from hotline.calls.models import CALL_STATUSES, CallRecord
from hotline.centres.models import Centre, Line
from hotline.db import db_session
from hotline.taxonomy import get_taxonomies
from hotline.web import add_template_dir, render, templates

router = APIRouter()
add_template_dir(Path(__file__).parent / "templates")


@jinja2.pass_context
def _label(ctx: Any, scheme: str, code: str | None) -> str:
    """A taxonomy label in the page's language: ``{{ label("call_status", c.status) }}``."""
    return get_taxonomies().label(scheme, code, ctx.get("lang", "vi"))


templates.env.globals.setdefault("label", _label)
STAFF = ("counsellor", "supervisor", "administrator")
REVEAL_ROLES = ("supervisor", "administrator")  # as the live screen's reveal (hotline.live.service)
PAGE_SIZE = 50


DB = Annotated[Session, Depends(db_session)]


def visible_centres(principal: Principal) -> list[int] | None:
    """Administrators see every centre; everyone else only their own."""
    if principal.role == "administrator":
        return None
    return [principal.centre_id] if principal.centre_id is not None else []


def _filter(session: Session, principal: Principal, since: date | None, until: date | None,
            status: list[str], line: str | None) -> service.CallFilter:
    centre_ids = visible_centres(principal)
    tz = "Asia/Ho_Chi_Minh"
    if centre_ids:
        centre = session.get(Centre, centre_ids[0])
        tz = centre.timezone if centre else tz
    line_id = None
    if line:
        q = select(Line.id).where((Line.identifier == line) | (Line.id == (int(line) if line.isascii() and line.isdigit() and len(line) < 19 else -1)))
        line_id = session.scalar(q)
        if line_id is None:
            raise HTTPException(404, f"no line {line!r}: give a line id, a number in E.164 or a queue name")
    start, end = service.date_range(since, until, tz)
    try:
        return service.CallFilter(since=start, until=end, statuses=status, line_id=line_id, centre_ids=centre_ids,
                                  with_overflow=True)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/api/calls")
def api_calls(
    session: DB,
    principal: Annotated[Principal, Depends(require_roles(*STAFF))],
    since: Annotated[date | None, Query(description="first local date (inclusive)")] = None,
    until: Annotated[date | None, Query(description="last local date (inclusive)")] = None,
    status: Annotated[list[str], Query(description=f"one of {', '.join(CALL_STATUSES)}")] = [],  # noqa: B006 - FastAPI builds a fresh list per request
    line: Annotated[str | None, Query(description="line id, number or queue name")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    flt = _filter(session, principal, since, until, status, line)
    calls = service.list_calls(session, flt=flt, limit=limit, offset=offset)
    return {"calls": service.call_dicts(session, calls), "limit": limit, "offset": offset}


@router.get("/calls", response_class=HTMLResponse)
def calls_page(
    request: Request,
    session: DB,
    principal: Annotated[Principal, Depends(require_roles(*STAFF))],
    status: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI builds a fresh list per request
    day: Annotated[date | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    status = [s for s in status if s]  # "All" sends an empty status
    flt = _filter(session, principal, day, day, status, None)
    rows = service.list_calls(session, flt=flt, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    records: dict[int, int] = {}
    if rows:
        for call_id, record_id in session.execute(select(CallRecord.call_id, CallRecord.id)
                                                  .where(CallRecord.call_id.in_([c.id for c in rows]))).all():
            if call_id is not None:
                records[call_id] = record_id
    ids = {c.counsellor_id for c in rows if c.counsellor_id}
    names = {u.id: u.display_name or u.username for u in session.scalars(select(User).where(User.id.in_(ids)))} \
        if ids else {}
    notes: dict[int, Any] = {}
    for hook in domains.call_notes():  # e.g. "a callback for the missed call at …" (hotline.domains)
        notes.update(hook(session, rows))
    calls = [{**d, "received_at": c.received_at, "record_id": records.get(c.id),
              "counsellor": names.get(c.counsellor_id or 0, ""),
              "note": notes[c.id].translate(principal.language) if c.id in notes else "",
              "may_reveal": principal.role in REVEAL_ROLES and bool(c.caller_number)}
             for c, d in zip(rows, service.call_dicts(session, rows), strict=True)]
    base = [("status", s) for s in status] + ([("day", day.isoformat())] if day else [])

    def page_url(n: int) -> str:
        return "/calls?" + urlencode([*base, ("page", str(n))])

    return render(request, "calls/list.html", {
        "calls": calls, "statuses": CALL_STATUSES, "selected": status, "day": day, "page": page,
        "previous_url": page_url(page - 1) if page > 1 else None, "next_url": page_url(page + 1) if more else None})


class ReferenceIn(BaseModel):
    kind: str
    ref_id: str
    label: str
    lock_reason: str | None = None  # needed once the record's day is signed off


@router.post("/records/{record_id}/references", dependencies=[Depends(csrf_protect)])
def add_reference(
    record_id: int,
    body: ReferenceIn,
    session: DB,
    principal: Annotated[Principal, Depends(require_roles("counsellor", "supervisor", "administrator"))],
) -> dict[str, Any]:
    """An edit of the record like any other (#14): edit rights, the sign-off lock, a revision, audited."""
    from sqlalchemy.orm.exc import StaleDataError

    from hotline.records import service as records

    try:
        for attempt in (1, 2):  # a save written meanwhile: read the record again and add to it
            record = records.get_record(session, record_id=record_id, actor=principal, for_edit=True)
            try:
                ref = records.give_reference(session, record=record, actor=principal, kind=body.kind,
                                             ref_id=body.ref_id, label=body.label, reason=body.lock_reason)
                session.flush()
                break
            except StaleDataError:
                session.rollback()
                if attempt == 2:
                    from hotline.errors import Conflict

                    raise Conflict(record_id) from None
    except records.RecordError as exc:
        session.rollback()
        raise HTTPException(422, {"errors": exc.translated(principal.language)}) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"reference": ref, "references": record.references_given, "version": record.version}


# ---------------------------------------------------------------------- record page: parts of a call
def record_panel(request: Request, db: Any, record: Any, principal: Principal) -> Any:
    """Each counsellor's part of a transferred or shared call, on the record page (only when
    there is more than one part)."""
    from datetime import datetime as _dt

    from markupsafe import Markup

    from hotline.web import template_context

    if not record.call_id:
        return Markup("")
    parts = service.parts_of(db, record.call_id)
    if len(parts) < 2:
        return Markup("")
    for p in parts:
        p["started"] = _dt.fromisoformat(p["started_at"]) if p["started_at"] else None
        p["ended"] = _dt.fromisoformat(p["ended_at"]) if p["ended_at"] else None
    ctx = template_context(request, {"parts": parts})
    return Markup(templates.get_template("calls/_parts_panel.html").render(ctx))

