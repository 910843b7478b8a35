"""What the live screens show: who may see which update, pops, presence, the wallboard.

Updates travel on the bus channel ``centre:{id}`` as small JSON messages:

* ``{"type": "call", "call": {…masked summary…}}``: published by the ingestor;
* ``{"type": "presence", "presence": {"user_id", "state", "at"}}``: published here;
* ``{"type": "record", "record": {"id", "state", "primary_issue", …}}``: a record was completed;
* ``{"type": "wallboard", "centre_id", "wallboard": {…}}``: the wallboard's figures, not on the bus:
  each web process pushes them to its own wallboards' streams (``hotline/live/views.py``).

Presence changes of a counsellor with an Asterisk queue-member interface also publish
``{"action": "QueuePause", "interface", "paused", "reason"}`` on ``ami-commands``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from hotline import bus, domains
from hotline.calls import service as calls
from hotline.calls.models import OPEN_STATUSES, Call, CallRecord
from hotline.centres.models import Centre, Line
from hotline.centres.service import Routing
from hotline.db import utcnow
from hotline.errors import Actor, Invalid, NotAllowed, NotFound
from hotline.i18n import N_, Text
from hotline.live.models import MANUAL_STATES, CounsellorPresence
from hotline.records import service as records
from hotline.taxonomy import non_counselling_codes

AMI_CHANNEL = "ami-commands"
REVEAL_ROLES = ("supervisor", "administrator")
CENTRE_WIDE_ROLES = ("supervisor", "administrator")
# Busy leaves the queue member as it is (Asterisk knows it is in use); wrap-up pauses it until
# ``until``, then the counsellor is available again and unpaused.
PAUSE_BY_STATE = {"away": True, "wrap_up": True, "available": False}


class CallNotFound(NotFound):
    default = N_("No such call, or you may not see it.")


class LiveError(Invalid):
    """Raised with a ``Text``; views show ``error_text(exc, lang)``."""


def centre_channel(centre_id: int) -> str:
    return f"centre:{centre_id}"


# ---------------------------------------------------------------------- who sees what
@dataclass(frozen=True)
class Viewer:
    user_id: int
    role: str
    centre_id: int
    identities: frozenset[str]


def centre_for(actor: Actor, centre_id: int | None = None) -> int:
    """The centre whose live screen a signed-in person sees (administrators may pick one)."""
    centre = actor.centre_id
    if actor.role == "administrator" and centre_id is not None:
        centre = centre_id
    if centre is None:
        raise LiveError(Text("Your account belongs to no centre."))
    return centre


def viewer_for(session: Session, *, actor: Actor, centre_id: int | None = None) -> Viewer:
    """The live-screen viewer of a signed-in person (administrators may pick a centre)."""
    centre = centre_for(actor, centre_id)
    agents = Routing.load(session, 0).agents
    idents = frozenset(ident for (_p, ident), row in agents.items() if row.user_id == actor.id)
    return Viewer(actor.id, actor.role, centre, idents)


def _own_call(v: Viewer, call: dict[str, Any]) -> bool:
    return (call.get("counsellor_id") == v.user_id
            or call.get("offered_to") in v.identities
            or call.get("answered_by") in v.identities)


# Who sees which message on the live screen; the domains add rules for their own messages
# (``visibility`` in hotline.domains, e.g. referral alerts).
VISIBILITY: dict[tuple[str, str], Callable[[Viewer, dict[str, Any]], bool]] = {
    ("call", "counsellor"): lambda v, m: _own_call(v, m.get("call") or {}),
    ("call", "supervisor"): lambda v, m: True,
    ("call", "administrator"): lambda v, m: True,
    ("presence", "counsellor"): lambda v, m: (m.get("presence") or {}).get("user_id") == v.user_id,
    ("presence", "supervisor"): lambda v, m: True,
    ("presence", "administrator"): lambda v, m: True,
    ("record", "counsellor"): lambda v, m: (m.get("record") or {}).get("counsellor_id") == v.user_id,
    ("record", "supervisor"): lambda v, m: True,
    ("record", "administrator"): lambda v, m: True,
    # The wallboard's figures (pushed to wallboards' streams): the same roles as /live/wallboard.json.
    ("wallboard", "supervisor"): lambda v, m: m.get("centre_id") == v.centre_id,
    ("wallboard", "administrator"): lambda v, m: m.get("centre_id") == v.centre_id,
}


def visible(viewer: Viewer, message: dict[str, Any]) -> bool:
    key = (str(message.get("type")), viewer.role)
    rule = VISIBILITY.get(key) or domains.visibility_rules().get(key)
    return bool(rule and rule(viewer, message))


# ---------------------------------------------------------------------- pops
def line_labels(session: Session) -> dict[int, str]:
    return {lid: (label or ident) for lid, label, ident in session.execute(select(Line.id, Line.label, Line.identifier))}


def get_call(session: Session, *, call_id: int, actor: Actor) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise CallNotFound(None, call_id)
    if actor.role == "administrator":
        return call
    if actor.role not in ("counsellor", "supervisor") or actor.centre_id not in (call.centre_id,
                                                                                 call.overflow_centre_id):
        raise CallNotFound(None, call_id)
    if actor.role == "counsellor":
        viewer = viewer_for(session, actor=actor)
        if not _own_call(viewer, {"counsellor_id": call.counsellor_id, "offered_to": call.offered_to,
                                  "answered_by": call.answered_by}):
            raise CallNotFound(None, call_id)
    return call


def caller_marks(session: Session, *, call: Call, actor: Actor) -> list[dict[str, Any]]:
    """The domains' warnings about the caller's number (``caller_marks`` in hotline.domains, e.g.
    callbacks' "do not call back (unsafe)"): ``{"code", "label" (Text), "text" (Text)}``."""
    return [m for hook in domains.caller_marks() for m in hook(session, call, actor)]


def pop(session: Session, *, call_id: int, actor: Actor) -> dict[str, Any]:
    """A call as the pop shows it, with the caller's history from earlier calls."""
    call = get_call(session, call_id=call_id, actor=actor)
    record_id = session.scalar(select(CallRecord.id).where(CallRecord.call_id == call.id))
    return {
        "call": call,
        "line": line_labels(session).get(call.line_id or 0, call.queue or call.dialed or ""),
        "history": records.caller_history(session, call=call, actor=actor),
        "marks": caller_marks(session, call=call, actor=actor),
        "record_id": record_id,
        "may_reveal": actor.role in REVEAL_ROLES and bool(call.caller_number),
    }


def reveal(session: Session, *, call_id: int, actor: Actor) -> str:
    """The full number for roles allowed to see it (the caller audits the reveal)."""
    if actor.role not in REVEAL_ROLES:
        raise NotAllowed(Text("Your role may not see full numbers."), "reveal")
    call = get_call(session, call_id=call_id, actor=actor)
    if not call.caller_number:
        raise CallNotFound(None, call_id)
    from hotline.phone import display

    return display(call.caller_number)


# ---------------------------------------------------------------------- presence
def wrap_up_seconds() -> int:
    from hotline.settings import get_settings

    return int(get_settings().wrap_up_seconds)


def wrap_up_until(row: CounsellorPresence) -> datetime | None:
    if row.state != "wrap_up":
        return None
    return row.changed_at + timedelta(seconds=wrap_up_seconds())


def effective_state(row: CounsellorPresence | None, now: datetime | None = None) -> str:
    """The state a screen shows: a wrap-up that has run its time is available."""
    if row is None:
        return "away"
    until = wrap_up_until(row)
    if until is not None and (now or utcnow()) >= until:
        return "available"
    return row.state


def get_presence(session: Session, *, user_id: int) -> str:
    return effective_state(session.get(CounsellorPresence, user_id))


def presence_info(session: Session, *, user_id: int) -> dict[str, Any]:
    """State and, in wrap-up, when it ends (ISO) for the live screen's countdown."""
    row = session.get(CounsellorPresence, user_id)
    state = effective_state(row)
    until = wrap_up_until(row) if row is not None and state == "wrap_up" else None
    return {"state": state, "until": until.isoformat() if until else None}


def set_presence(session: Session, *, actor: Actor, state: str, reason: str = "") -> CounsellorPresence:
    """Record the state; the caller publishes with ``announce_presence`` after the commit."""
    if state not in MANUAL_STATES:
        raise LiveError(Text("Unknown presence '%(state)s'; choose one of: %(choices)s.",
                             state=state, choices=", ".join(MANUAL_STATES)))
    row = session.get(CounsellorPresence, actor.id)
    if row is None:
        row = CounsellorPresence(user_id=actor.id, centre_id=actor.centre_id)
        session.add(row)
    row.state = state
    row.centre_id = actor.centre_id
    row.changed_at = utcnow()
    session.flush()
    return row


def asterisk_interfaces(session: Session, *, user_id: int) -> list[str]:
    agents = Routing.load(session, 0).agents
    return sorted(ident for (provider, ident), row in agents.items()
                  if provider == "asterisk" and row.user_id == user_id)


def announce_presence(session: Session, *, actor: Actor | None = None, row: CounsellorPresence,
                      reason: str = "") -> None:
    until = wrap_up_until(row)
    if row.centre_id is not None:
        bus.publish(centre_channel(row.centre_id), {"type": "presence", "presence": {
            "user_id": row.user_id, "state": row.state, "at": row.changed_at.isoformat(),
            "until": until.isoformat() if until else None}})
    paused = PAUSE_BY_STATE.get(row.state)
    if paused is None:
        return
    for interface in asterisk_interfaces(session, user_id=row.user_id):
        command: dict[str, Any] = {"action": "QueuePause", "interface": interface, "paused": paused,
                                   "reason": reason or row.state}
        if until is not None:
            command["until"] = until.isoformat()  # the AMI side unpauses then if nobody did before
        bus.publish(AMI_CHANNEL, command)


def follow_calls(session: Session, calls_changed: list[Call], *, now: datetime | None = None) -> list[CounsellorPresence]:
    """Presence follows the counsellor's calls: busy once one is answered, wrap-up when it ends
    (for ``wrap_up_seconds``), then available.  Returns the rows changed (announce after commit)."""
    now = now or utcnow()
    changed: list[CounsellorPresence] = []
    for call in calls_changed:
        if not call.counsellor_id or call.answered_at is None:
            continue
        row = session.get(CounsellorPresence, call.counsellor_id)
        if row is None:
            row = CounsellorPresence(user_id=call.counsellor_id, centre_id=call.centre_id, state="away",
                                     changed_at=now)
            session.add(row)
        if call.ended_at is None:
            if row.state != "busy":
                row.state, row.changed_at = "busy", now
                changed.append(row)
        elif row.state == "busy" and row.changed_at <= max(call.ended_at, call.answered_at):
            if busy_elsewhere(session, user_id=call.counsellor_id, except_call=call.id):
                continue
            row.state = "wrap_up" if wrap_up_seconds() > 0 else "available"
            row.changed_at = now
            changed.append(row)
        row.centre_id = row.centre_id or call.centre_id
    session.flush()
    return changed


def busy_elsewhere(session: Session, *, user_id: int, except_call: int) -> bool:
    """Another answered call of this counsellor is still going on."""
    return session.scalar(select(Call.id).where(
        Call.counsellor_id == user_id, Call.id != except_call, Call.answered_at.is_not(None),
        Call.ended_at.is_(None), Call.status.in_(OPEN_STATUSES)).limit(1)) is not None


def end_wrap_up(session: Session, *, user_id: int) -> CounsellorPresence | None:
    """Wrap-up over: the row becomes available (and is returned to announce), else ``None``."""
    row = session.get(CounsellorPresence, user_id)
    if row is None or row.state != "wrap_up" or effective_state(row) != "available":
        return None
    row.state, row.changed_at = "available", utcnow()
    session.flush()
    return row


# ---------------------------------------------------------------------- the counsellor's current call
def current_call(session: Session, *, viewer: Viewer, hours: int = 12) -> Call | None:
    """The call this counsellor is on or wrapping up: answered by them, recent, its record not
    completed.  The live screen is its workspace; Alt+R opens its record."""
    from sqlalchemy import or_

    since = utcnow() - timedelta(hours=hours)
    who = [Call.counsellor_id == viewer.user_id]
    if viewer.identities:
        who.append(Call.answered_by.in_(sorted(viewer.identities)))
    rec = CallRecord
    q = (select(Call).outerjoin(rec, rec.call_id == Call.id)
         .where(or_(*who), or_(Call.centre_id == viewer.centre_id, Call.overflow_centre_id == viewer.centre_id),
                Call.answered_at.is_not(None),
                Call.answered_at >= since, or_(rec.id.is_(None), rec.state != "completed"))
         .order_by(Call.answered_at.desc()).limit(1))
    return session.scalars(q).first()


def active_calls(session: Session, *, viewer: Viewer, hours: int = 12, limit: int = 50) -> list[dict[str, Any]]:
    """The calls not yet ended that this screen may see, as the summaries the stream carries (with
    the line's label): what a screen shows when it opens, or after ``resync`` when the updates it
    missed are no longer in the ring."""
    from sqlalchemy import or_

    from hotline.ingest.service import call_summary

    since = utcnow() - timedelta(hours=hours)
    q = (select(Call).where(or_(Call.centre_id == viewer.centre_id, Call.overflow_centre_id == viewer.centre_id),
                            Call.ended_at.is_(None), Call.received_at >= since)
         .order_by(Call.received_at.desc()).limit(limit))
    labels = line_labels(session)
    out = []
    for call in session.scalars(q):
        summary = call_summary(call)
        if visible(viewer, {"type": "call", "call": summary}):
            summary["line"] = labels.get(call.line_id or 0) or call.queue or ""
            out.append(summary)
    return out


def call_card(session: Session, *, call: Call, actor: Actor) -> dict[str, Any]:
    """What the top of the workspace shows about a call: never the full number."""
    history = records.caller_history(session, call=call, actor=actor)
    flags: list[dict[str, Any]] = []
    seen: set[str] = set()
    for h in history:
        for f in h.get("flags") or []:
            if f.get("code") not in seen:
                seen.add(f.get("code"))
                flags.append(f)
    for m in caller_marks(session, call=call, actor=actor):  # e.g. "do not call back (unsafe)", on the card at once
        if m["code"] not in seen:
            seen.add(m["code"])
            flags.append({"code": m["code"], "vi": m["label"].translate("vi"), "en": m["label"].translate("en")})
    return {
        "id": call.id, "line": line_labels(session).get(call.line_id or 0, call.queue or call.dialed or ""),
        "caller_masked": call.caller_masked, "caller_id_status": call.caller_id_status, "status": call.status,
        "received_at": call.received_at, "queued_at": call.queued_at, "answered_at": call.answered_at,
        "ended_at": call.ended_at, "queue_wait_seconds": call.queue_wait_seconds, "talk_seconds": call.talk_seconds,
        "may_reveal": actor.role in REVEAL_ROLES and bool(call.caller_number),
        "earlier_calls": len(history), "flags": flags,
    }


# ---------------------------------------------------------------------- wallboard
def _since(at: datetime | None, now: datetime) -> int:
    return max(0, int((now - at).total_seconds())) if at else 0


def _overflow(call: Call, centre_id: int) -> str:
    """"in": another centre's line overflowed to this one; "out": this centre's line overflowed."""
    if call.overflow_centre_id is None:
        return ""
    return "in" if call.overflow_centre_id == centre_id else "out"


def wallboard(session: Session, *, centre_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Calls waiting (and for how long), in progress by counsellor, presence, today's totals."""
    from hotline.auth import service as users
    from hotline.auth.models import User
    from hotline.settings import get_settings

    now = now or utcnow()
    centre = session.get(Centre, centre_id)
    tz = ZoneInfo(centre.timezone if centre and centre.timezone else "Asia/Ho_Chi_Minh")
    today = now.astimezone(tz).date()
    start = calls.day_start(today, str(tz))
    end = start + timedelta(days=1)
    people = users.list_users(session, centre_id=centre_id)
    names = {u.id: (u.display_name or u.username) for u in people}
    labels = line_labels(session)
    open_calls = calls.list_calls(session, flt=calls.CallFilter(statuses=OPEN_STATUSES, centre_ids=[centre_id],
                                                                with_overflow=True), limit=500)
    waiting, talking = [], []
    # an overflowed call is answered by the other centre's counsellor: their name too
    others = {c.counsellor_id for c in open_calls if c.counsellor_id and c.counsellor_id not in names}
    other_names = {u.id: (u.display_name or u.username) for u in session.scalars(
        select(User).where(User.id.in_(others)))} if others else {}
    for c in sorted(open_calls, key=lambda c: c.received_at):
        if c.ended_at is not None:
            continue
        line = labels.get(c.line_id or 0, c.queue or "")
        if c.status in ("ringing", "queued"):
            waiting.append({"id": c.id, "line": line, "caller": c.caller_masked, "overflow": _overflow(c, centre_id),
                            "since": (c.queued_at or c.received_at).isoformat(),
                            "waited": _since(c.queued_at or c.received_at, now), "offered_to": c.offered_to})
        else:
            talking.append({"id": c.id, "line": line, "overflow": _overflow(c, centre_id),
                            "counsellor": names.get(c.counsellor_id or 0) or other_names.get(c.counsellor_id or 0,
                                                                              c.answered_by or ""),
                            "since": (c.answered_at or c.received_at).isoformat(),
                            "talking": _since(c.answered_at or c.received_at, now),
                            # supervisors may listen in, whisper or barge (Asterisk ChanSpy, hotline.pbx)
                            "spy": c.provider == "asterisk" and c.answered_at is not None})
    settings = get_settings()
    totals, in_time, longest_today = _day_totals(session, centre_id, start, end, settings.wallboard_answer_seconds)
    nc = sorted(non_counselling_codes())
    done = (CallRecord.centre_id == centre_id, CallRecord.state == "completed",
            CallRecord.completed_at >= start, CallRecord.completed_at < end)
    # Counted by the database: the day's records are not loaded (nor their notes decrypted) for a count.
    totals["records_completed"], totals["non_counselling"] = session.execute(
        select(func.count(), func.count(case((CallRecord.primary_issue.in_(nc), 1)))).where(*done)).one()
    states = {row.user_id: row for row in session.scalars(
        select(CounsellorPresence).where(CounsellorPresence.centre_id == centre_id))}
    on_call = {c.counsellor_id for c in open_calls
               if c.ended_at is None and c.counsellor_id and c.status not in ("ringing", "queued")}
    presence = []
    for u in people:
        if u.role != "counsellor" or not u.active:
            continue
        row = states.get(u.id)
        state = effective_state(row, now)
        if u.id in on_call and state != "wrap_up":  # on a call: busy, whatever was last set
            state = "busy"
        presence.append({"user_id": u.id, "name": names.get(u.id, ""), "state": state,
                         "since": row.changed_at.isoformat() if row else None})
    from hotline.ingest.gaps import gaps_between

    # listener outages today (any PBX): the day's counts may have a hole (issue #16)
    gaps = gaps_between(session, start, min(end, now + timedelta(seconds=1)))
    for g in gaps:
        g["since_local"] = datetime.fromisoformat(g["started_at"]).astimezone(tz).strftime("%H:%M")
    service = _service_figures(totals, in_time, longest_today, waiting, settings)
    # the domains' own figures (e.g. the callback worklists' sizes), declared in hotline.domains
    figures = [f for hook in domains.wallboard_figures() for f in hook(session, centre_id, now)]
    return {"centre_id": centre_id, "centre_code": centre.code if centre else "", "today": today.isoformat(),
            "now": now.isoformat(), "waiting": waiting, "in_progress": talking,
            "presence": presence, "totals": totals, "service": service, "gaps": gaps, "figures": figures}


def _day_totals(session: Session, centre_id: int, start: datetime, end: datetime,
                answer_seconds: int) -> tuple[dict[str, int], int, int]:
    """The day's received/answered/abandoned/missed counts, answered within ``answer_seconds`` and the
    longest wait, counted by the database.  Only calls answered without a recorded queue wait are
    read, to compute their wait from their times (portable across PostgreSQL and SQLite).  Reading
    the five columns of every call of the day was a quarter of a loaded web process's CPU with
    5,000 calls of the day and 200 wallboards (bench/live_memory.py).  A call that reached a closed
    line (out of hours) is neither missed nor abandoned, as in the daily log: ``out_of_hours``."""
    day = (Call.centre_id == centre_id, Call.received_at >= start, Call.received_at < end)
    answered = Call.answered_at.is_not(None)
    closed = or_(Call.facts["out_of_hours"].as_string().is_not(None),
                 func.coalesce(Call.end_reason, "") == "out_of_hours")
    received, n_answered, abandoned, missed, out_of_hours, in_time, longest = session.execute(
        select(func.count(), func.count(Call.answered_at),
               func.count(case(((Call.status == "abandoned") & ~closed, 1))),
               func.count(case(((Call.status == "missed") & ~closed, 1))), func.count(case((closed, 1))),
               func.count(case((answered & (Call.queue_wait_seconds <= answer_seconds), 1))),
               func.max(Call.queue_wait_seconds)).where(*day)).one()
    totals = {"received": int(received), "answered": int(n_answered), "abandoned": int(abandoned),
              "missed": int(missed), "out_of_hours": int(out_of_hours)}
    in_time, longest = int(in_time), max(0, int(longest or 0))
    for row in session.execute(select(Call.answered_at, Call.queue_wait_seconds, Call.queued_at, Call.received_at)
                               .where(*day, answered, Call.queue_wait_seconds.is_(None))):
        wait = _wait_seconds(row)
        if wait is not None:
            longest = max(longest, wait)
            if wait <= answer_seconds:
                in_time += 1
    return totals, in_time, longest


def _wait_seconds(c: Any) -> int | None:
    if c.queue_wait_seconds is not None:
        return int(c.queue_wait_seconds)
    if c.answered_at and (c.queued_at or c.received_at):
        return max(0, int((c.answered_at - (c.queued_at or c.received_at)).total_seconds()))
    return None


def _service_figures(totals: dict[str, int], in_time: int, longest_today: int, waiting: list[dict[str, Any]],
                     settings: Any) -> dict[str, Any]:
    """Service level (share of today's calls answered within the centre's seconds), abandonment rate,
    longest wait (now and today), and which passed the thresholds the centre set; of the calls that
    reached the line while it was open (nobody could answer one out of hours)."""
    received = totals["received"] - totals.get("out_of_hours", 0)
    level = round(100 * in_time / received) if received else None
    abandoned = round(100 * totals["abandoned"] / received) if received else None
    longest_now = max((w["waited"] for w in waiting), default=0)
    warnings = []
    if level is not None and level < settings.wallboard_service_level_min:
        warnings.append("service_level")
    if abandoned is not None and abandoned > settings.wallboard_abandoned_max:
        warnings.append("abandoned")
    if longest_now > settings.wallboard_wait_max_seconds:
        warnings.append("longest_wait")
    return {"answer_seconds": settings.wallboard_answer_seconds, "service_level": level,
            "service_level_min": settings.wallboard_service_level_min, "abandoned_rate": abandoned,
            "abandoned_max": settings.wallboard_abandoned_max, "longest_wait_now": longest_now,
            "longest_wait_today": longest_today, "wait_max": settings.wallboard_wait_max_seconds,
            "warnings": warnings}
