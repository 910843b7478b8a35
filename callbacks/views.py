"""The callback and follow-up worklists' pages, the live screen's strip, the record-page link and the
wallboard's figures.

* ``GET /callbacks``: the centre's callback list; ``GET /callbacks/{id}``: one callback (script, call, outcome).
* ``POST /callbacks/{id}/claim|release|call|outcome``; ``POST /callbacks/build`` (supervisors: build now).
* ``GET /callbacks/follow-ups`` (second tab) and ``GET /callbacks/follow-ups/{record_id}``, with
  ``POST …/call|outcome|assign|done``.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Form, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup
from sqlalchemy import select

from callbacks import service
from callbacks.models import CallbackItem
from hotline.auth.deps import Principal, csrf_protect, require_roles
from hotline.db import session_scope, utcnow
from hotline.i18n import N_, Text
from hotline.web import add_template_dir, render, template_context, templates

add_template_dir(FilePath(__file__).parent / "templates")

router = APIRouter()
staff = require_roles(*service.STAFF)
supervisors = require_roles(*service.SUPERVISORS)
MAX_ROW_ID = 2**31 - 1
REVEAL_ROLES = ("supervisor", "administrator")  # as hotline.live.service: the reveal itself is audited there


def setup_app(app: FastAPI) -> None:
    app.mount("/callbacks-static", StaticFiles(directory=FilePath(__file__).parent / "static"), name="callbacks-static")


def _labels(session: Any = None, centre_id: int | None = None) -> dict[str, Any]:
    return {"outcomes": service.OUTCOME_LABELS, "kinds": service.KIND_LABELS, "closes": service.CLOSE_LABELS,
            "hours": service.hours_text(session, centre_id)}


def _shown(text: Text | None, lang: str) -> str:
    return text.translate(lang) if text is not None else ""


@router.get("/callbacks")
def page(request: Request, principal: Principal = Depends(staff)) -> Response:
    now = utcnow()
    with session_scope() as session:
        items = service.open_items(session, actor=principal, now=now)
        states = {i.id: service.item_state(session, i, actor=principal, now=now) for i in items}
        names = service.user_names(session, [i.claimed_by_id for i in items])
        in_hours = principal.centre_id is None or service.within_hours(session, principal.centre_id, now)
        size = service.sizes(session, centre_id=principal.centre_id, now=now) if principal.centre_id else None
        for s in states.values():
            s["why_not_text"] = _shown(s["why_not"], principal.language)
        labels = _labels(session, principal.centre_id)
        opens = (service.when_text(session, principal.centre_id, service.next_open(session, principal.centre_id, now), now)
                 if not in_hours and principal.centre_id else "")
        session.expunge_all()
    return render(request, "callbacks/page.html", {
        "items": items, "states": states, "names": names, "in_hours": in_hours, "tab": "callbacks", "size": size,
        "may_reveal": principal.role in REVEAL_ROLES, "may_build": principal.role in service.SUPERVISORS,
        "max_attempts": service._max_attempts(), "may_settings": principal.role in service.SUPERVISORS,
        "opens": opens, **labels})


@router.post("/callbacks/build", dependencies=[Depends(supervisors), Depends(csrf_protect)])
def build_now(request: Request, principal: Principal = Depends(supervisors)) -> Response:
    with session_scope() as session:
        service.build(session, centre_id=principal.centre_id if principal.role != "administrator" else None)
    return RedirectResponse("/callbacks", status_code=303)


@router.get("/callbacks/strip")
def strip(request: Request, principal: Principal = Depends(staff)) -> Response:
    """The live screen's strip, refreshed by its script."""
    with session_scope() as session:
        return render(request, "callbacks/_strip.html", _strip_context(session, principal))


# ---------------------------------------------------------------------- settings: hours, do-not-call marks
def _settings_centre(session: Any, principal: Principal, centre_id: int | None) -> Any:
    from hotline.centres.models import Centre

    if principal.role == "administrator":
        centres = list(session.scalars(select(Centre).where(Centre.active.is_(True)).order_by(Centre.name)))
        chosen = next((c for c in centres if c.id == centre_id), None) or next(
            (c for c in centres if c.id == principal.centre_id), None) or (centres[0] if centres else None)
        return chosen, centres
    centre = session.get(Centre, principal.centre_id) if principal.centre_id else None
    if centre is None:
        from hotline.errors import NotAllowed

        raise NotAllowed(Text("Your account belongs to no centre; ask an administrator to set one."))
    return centre, [centre]


def _settings_page(request: Request, principal: Principal, centre_id: int | None, *, errors: dict[str, str] | None = None,
                   entered: str | None = None, status: int = 200) -> Response:
    with session_scope() as session:
        centre, centres = _settings_centre(session, principal, centre_id)
        own = service.own_hours(session, centre.id) if centre else None
        zone = service.centre_zone(session, centre.id) if centre else None
        marks = [{"id": m.id, "number": m.number_masked, "by": m.created_by, "source": m.source,
                  "since": service._aware(m.created_at).astimezone(zone).strftime("%d/%m/%Y %H:%M") if zone else ""}
                 for m in (service.marks(session, actor=principal, centre_id=centre.id) if centre else [])]
        session.expunge_all()
    return render(request, "callbacks/settings.html", {
        "tab": "settings", "may_settings": True, "centre": centre, "centres": centres,
        "own": own.setting() if own else "", "default": service.default_hours().setting(),
        "entered": entered, "errors": errors or {}, "marks": marks,
        "max_attempts": service._max_attempts(), "spacing": int(service._spacing().total_seconds() // 60),
        "expiry": int(service._expiry().total_seconds() // 3600),
        "claim_minutes": int(service.get_settings().callback_claim_minutes)}, status_code=status)


@router.get("/callbacks/settings")
def settings_page(request: Request, centre: int | None = Query(None, ge=1, le=MAX_ROW_ID),
                  principal: Principal = Depends(supervisors)) -> Response:
    """A supervisor's callback settings for the centre: its callback hours (or the default), the rules
    that apply, and the numbers marked "do not call back (unsafe)" (to lift)."""
    return _settings_page(request, principal, centre)


@router.post("/callbacks/settings", dependencies=[Depends(supervisors), Depends(csrf_protect)])
def settings_save(request: Request, hours: str = Form("", max_length=32), centre_id: int | None = Form(None, ge=1, le=MAX_ROW_ID),
                  principal: Principal = Depends(supervisors)) -> Response:
    from hotline.errors import Invalid

    try:
        with session_scope() as session:
            centre, _ = _settings_centre(session, principal, centre_id)
            service.set_hours(session, actor=principal, centre_id=centre.id if centre else None, hours=hours,
                              request=request)
            chosen = centre.id if centre else None
    except Invalid as e:
        shown = {k: (v.translate(principal.language) if hasattr(v, "translate") else str(v))
                 for k, v in e.messages.items()}
        return _settings_page(request, principal, centre_id, errors=shown, entered=hours, status=422)
    return RedirectResponse(f"/callbacks/settings?centre={chosen}" if chosen else "/callbacks/settings", status_code=303)


@router.post("/callbacks/do-not-call/{mark_id}/lift", dependencies=[Depends(supervisors), Depends(csrf_protect)])
def lift_mark(request: Request, mark_id: int = Path(ge=1, le=MAX_ROW_ID), reason: str = Form("", max_length=1000),
              record_id: int | None = Form(None, ge=1, le=MAX_ROW_ID), principal: Principal = Depends(supervisors)) -> Response:
    """A supervisor lifts a "do not call back (unsafe)" mark, with the reason (audited)."""
    with session_scope() as session:
        service.lift_mark(session, actor=principal, mark_id=mark_id, reason=reason, request=request)
    return RedirectResponse(f"/records/{record_id}" if record_id else "/callbacks/settings", status_code=303)


@router.get("/callbacks/follow-ups")
def follow_ups_page(request: Request, principal: Principal = Depends(staff)) -> Response:
    now = utcnow()
    with session_scope() as session:
        rows = service.follow_ups(session, actor=principal)
        for row in rows:
            row["why_not_text"] = _shown(service.follow_up_blocker(session, row["record"], now), principal.language)
        people = (service.assignable(session, centre_id=principal.centre_id)
                  if principal.role in service.SUPERVISORS and principal.centre_id else [])
        labels = _labels(session, principal.centre_id)
        session.expunge_all()
    return render(request, "callbacks/follow_ups.html", {"rows": rows, "people": people, "tab": "follow_ups",
                                                         "may_assign": principal.role in service.SUPERVISORS,
                                                         "may_settings": principal.role in service.SUPERVISORS,
                                                         "max_attempts": service._max_attempts(), **labels})


@router.get("/callbacks/{item_id}")
def item_page(request: Request, item_id: int = Path(ge=1, le=MAX_ROW_ID), principal: Principal = Depends(staff)) -> Response:
    now = utcnow()
    with session_scope() as session:
        item = service.get_item(session, actor=principal, item_id=item_id)
        state = service.item_state(session, item, actor=principal, now=now)
        state["why_not_text"] = _shown(state["why_not"], principal.language)
        last = service.last_attempt(session, ref=f"cb:{item.id}")
        names = service.user_names(session, [item.claimed_by_id])
        labels = _labels(session, item.centre_id)
        session.expunge_all()
    return render(request, "callbacks/item.html", {
        "item": item, "state": state, "last": last, "names": names, "may_reveal": principal.role in REVEAL_ROLES,
        "max_attempts": service._max_attempts(), **labels})


@router.get("/callbacks/{item_id}/status")
def item_status(item_id: int = Path(ge=1, le=MAX_ROW_ID), principal: Principal = Depends(staff)) -> Response:
    """The attempt under way (for the item page's script, which reloads when the PBX answers)."""
    with session_scope() as session:
        item = service.get_item(session, actor=principal, item_id=item_id)
        last = service.last_attempt(session, ref=f"cb:{item.id}")
        return JSONResponse({"status": last.status if last else None, "attempt": last.id if last else None},
                            headers={"Cache-Control": "no-store"})


@router.post("/callbacks/{item_id}/claim", dependencies=[Depends(staff), Depends(csrf_protect)])
def claim(request: Request, item_id: int = Path(ge=1, le=MAX_ROW_ID), principal: Principal = Depends(staff)) -> Response:
    with session_scope() as session:
        service.claim(session, actor=principal, item_id=item_id, request=request)
    return RedirectResponse(f"/callbacks/{item_id}", status_code=303)


@router.post("/callbacks/{item_id}/release", dependencies=[Depends(staff), Depends(csrf_protect)])
def release(request: Request, item_id: int = Path(ge=1, le=MAX_ROW_ID), principal: Principal = Depends(staff)) -> Response:
    with session_scope() as session:
        service.release(session, actor=principal, item_id=item_id, request=request)
    return RedirectResponse("/callbacks", status_code=303)


@router.post("/callbacks/{item_id}/call", dependencies=[Depends(staff), Depends(csrf_protect)])
def call(request: Request, item_id: int = Path(ge=1, le=MAX_ROW_ID), principal: Principal = Depends(staff)) -> Response:
    with session_scope() as session:
        service.call(session, actor=principal, item_id=item_id, request=request)
    return RedirectResponse(f"/callbacks/{item_id}", status_code=303)


@router.post("/callbacks/{item_id}/outcome", dependencies=[Depends(staff), Depends(csrf_protect)])
def outcome(request: Request, item_id: int = Path(ge=1, le=MAX_ROW_ID), outcome: str = Form(""),
            principal: Principal = Depends(staff)) -> Response:
    with session_scope() as session:
        service.record_outcome(session, actor=principal, item_id=item_id, outcome=outcome, request=request)
    return RedirectResponse("/callbacks", status_code=303)


# ---------------------------------------------------------------------- follow-ups
def _follow_up(session: Any, principal: Principal, record_id: int) -> dict[str, Any]:
    rows = [r for r in service.follow_ups(session, actor=principal, limit=10_000) if r["record"].id == record_id]
    if not rows:
        from hotline.errors import NotFound

        raise NotFound(Text("No such follow-up."))
    return rows[0]


@router.get("/callbacks/follow-ups/{record_id}")
def follow_up_page(request: Request, record_id: int = Path(ge=1, le=MAX_ROW_ID),
                   principal: Principal = Depends(staff)) -> Response:
    with session_scope() as session:
        row = _follow_up(session, principal, record_id)
        row["why_not_text"] = _shown(service.follow_up_blocker(session, row["record"], utcnow()), principal.language)
        last = service.last_attempt(session, ref=f"fu:{record_id}")
        labels = _labels(session, row["record"].centre_id)
        session.expunge_all()
    return render(request, "callbacks/follow_up.html", {"row": row, "last": last, "max_attempts": service._max_attempts(),
                                                        **labels})


@router.get("/callbacks/follow-ups/{record_id}/status")
def follow_up_status(record_id: int = Path(ge=1, le=MAX_ROW_ID), principal: Principal = Depends(staff)) -> Response:
    """The follow-up call under way (for the page's script, which reloads when the PBX answers)."""
    with session_scope() as session:
        row = _follow_up(session, principal, record_id)
        last = service.last_attempt(session, ref=f"fu:{row['record'].id}")
        return JSONResponse({"status": last.status if last else None, "attempt": last.id if last else None},
                            headers={"Cache-Control": "no-store"})


@router.post("/callbacks/follow-ups/{record_id}/call", dependencies=[Depends(staff), Depends(csrf_protect)])
def follow_up_call(request: Request, record_id: int = Path(ge=1, le=MAX_ROW_ID),
                   principal: Principal = Depends(staff)) -> Response:
    with session_scope() as session:
        service.call_follow_up(session, actor=principal, record_id=record_id, request=request)
    return RedirectResponse(f"/callbacks/follow-ups/{record_id}", status_code=303)


@router.post("/callbacks/follow-ups/{record_id}/outcome", dependencies=[Depends(staff), Depends(csrf_protect)])
def follow_up_outcome(request: Request, record_id: int = Path(ge=1, le=MAX_ROW_ID), outcome: str = Form(""),
                      principal: Principal = Depends(staff)) -> Response:
    with session_scope() as session:
        service.follow_up_outcome(session, actor=principal, record_id=record_id, outcome=outcome, request=request)
    return RedirectResponse("/callbacks/follow-ups", status_code=303)


@router.post("/callbacks/follow-ups/{record_id}/done", dependencies=[Depends(staff), Depends(csrf_protect)])
def follow_up_done(request: Request, record_id: int = Path(ge=1, le=MAX_ROW_ID),
                   principal: Principal = Depends(staff)) -> Response:
    with session_scope() as session:
        service.follow_up_done(session, actor=principal, record_id=record_id, request=request)
    return RedirectResponse("/callbacks/follow-ups", status_code=303)


@router.post("/callbacks/follow-ups/{record_id}/retry", dependencies=[Depends(staff), Depends(csrf_protect)])
def follow_up_retry(request: Request, record_id: int = Path(ge=1, le=MAX_ROW_ID),
                    principal: Principal = Depends(staff)) -> Response:
    """After the last attempt: the assignee chooses to try again (a new round of attempts)."""
    with session_scope() as session:
        service.follow_up_retry(session, actor=principal, record_id=record_id, request=request)
    return RedirectResponse(f"/callbacks/follow-ups/{record_id}", status_code=303)


@router.post("/callbacks/follow-ups/{record_id}/assign", dependencies=[Depends(supervisors), Depends(csrf_protect)])
def follow_up_assign(request: Request, record_id: int = Path(ge=1, le=MAX_ROW_ID), user_id: int = Form(0, ge=0, le=MAX_ROW_ID),
                     principal: Principal = Depends(supervisors)) -> Response:
    with session_scope() as session:
        service.reassign(session, actor=principal, record_id=record_id, user_id=user_id, request=request)
    return RedirectResponse("/callbacks/follow-ups", status_code=303)


# ---------------------------------------------------------------------- panels for core's pages
def _strip_context(session: Any, principal: Principal) -> dict[str, Any]:
    now = utcnow()
    if principal.centre_id is None or principal.role not in service.STAFF:
        return {"strip": None}
    items = service.open_items(session, actor=principal, now=now, limit=5)
    size = service.sizes(session, centre_id=principal.centre_id, now=now)
    mine = len(service.follow_ups(session, actor=principal, limit=50)) if principal.role == "counsellor" else None
    names = service.user_names(session, [i.claimed_by_id for i in items])
    not_before = {}
    for i in items:
        at = service.not_before(session, i.centre_id, now, i.next_attempt_at)
        if at is not None:
            not_before[i.id] = service.when_text(session, i.centre_id, at, now)
    in_hours = service.within_hours(session, principal.centre_id, now)
    opens = "" if in_hours else service.when_text(session, principal.centre_id,
                                                  service.next_open(session, principal.centre_id, now), now)
    return {"strip": {"items": items, "size": size, "names": names, "my_follow_ups": mine,
                      "in_hours": in_hours, "opens": opens, "not_before": not_before}, **_labels(session, principal.centre_id)}


def live_panel(request: Request, db: Any, principal: Principal) -> Markup:
    """The compact callback strip on the live screen."""
    ctx = template_context(request, _strip_context(db, principal))
    if ctx.get("strip") is None:
        return Markup("")
    strip_html = templates.get_template("callbacks/_strip.html").render(ctx)
    return Markup(strip_html) + Markup('<script src="/callbacks-static/callbacks.js" defer></script>')


def record_panel(request: Request, db: Any, record: Any, principal: Principal) -> Markup:
    """On the record of a call the hotline placed: "Gọi lại cho cuộc gọi nhỡ lúc …" with a link."""
    from hotline.calls.models import Call

    call = db.get(Call, record.call_id) if getattr(record, "call_id", None) else None
    link = service.link_of(db, (call.facts or {}).get("callback") if call is not None else None)
    marks = service.marks_of_call(db, call) if principal.role in service.STAFF else []
    if link is None and not marks:
        return Markup("")
    zone = service.centre_zone(db, record.centre_id)
    ctx = template_context(request, {
        "link": link, "record": record, "may_lift": principal.role in service.SUPERVISORS,
        "marks": [{"id": m.id, "since": service._aware(m.created_at).astimezone(zone).strftime("%d/%m/%Y"),
                   "by": m.created_by} for m in marks]})
    return Markup(templates.get_template("callbacks/_record_panel.html").render(ctx))


def wallboard_figures(session: Any, centre_id: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """The wallboard's worklist figures: callbacks waiting and the oldest, follow-ups due and the oldest
    (labels are msgids, translated by the wallboard page; times in the centre's time zone)."""
    size = service.sizes(session, centre_id=centre_id, now=now)
    oldest: datetime | None = size["oldest_callback"]
    oldest_fu: date | None = size["oldest_follow_up"]
    local = oldest.astimezone(service.centre_zone(session, centre_id)) if oldest else None
    return [
        {"key": "callbacks", "label": N_("Callbacks waiting"), "value": size["callbacks"],
         "text": str(size["callbacks"]), "href": "/callbacks"},
        {"key": "oldest_callback", "label": N_("Oldest callback waiting since"),
         "value": oldest.isoformat() if oldest else None, "text": local.strftime("%d/%m %H:%M") if local else "—"},
        {"key": "follow_ups_due", "label": N_("Follow-ups due or overdue"), "value": size["follow_ups_due"],
         "text": str(size["follow_ups_due"]), "href": "/callbacks/follow-ups"},
        {"key": "oldest_follow_up", "label": N_("Oldest follow-up due"),
         "value": oldest_fu.isoformat() if oldest_fu else None, "text": oldest_fu.strftime("%d/%m/%Y") if oldest_fu else "—"},
    ]


def call_notes(session: Any, calls: list[Any]) -> dict[int, Text]:
    """On the calls list, under a call the hotline placed: which missed call it returned, or which record's
    follow-up it was (the time in the centre's time zone)."""
    refs = {c.id: str((c.facts or {}).get("callback") or "") for c in calls}
    item_ids = {int(r[3:]) for r in refs.values() if r.startswith("cb:") and r[3:].isdigit() and len(r) < 16}
    items = {i.id: i for i in session.scalars(select(CallbackItem).where(CallbackItem.id.in_(item_ids)))} \
        if item_ids else {}
    out: dict[int, Text] = {}
    for call_id, ref in refs.items():
        if ref.startswith("cb:") and ref[3:].isdigit() and int(ref[3:]) in items:
            item = items[int(ref[3:])]
            when = item.missed_at.astimezone(service.centre_zone(session, item.centre_id))
            out[call_id] = Text("Callback for the missed call at %(time)s", time=when.strftime("%H:%M %d/%m/%Y"))
        elif ref.startswith("fu:") and ref[3:].isdigit():
            out[call_id] = Text("Follow-up call for record #%(id)s", id=ref[3:])
    return out
