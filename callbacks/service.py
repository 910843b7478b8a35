"""The callback worklist (missed, abandoned and out-of-hours calls to call back) and the follow-up worklist.

* ``build`` makes items, idempotently: one open item per caller and centre, never for a withheld or
  unavailable number, a number marked "do not call back", a blocked number, or a caller answered since.
  Items expire ``HOTLINE_CALLBACK_EXPIRY_HOURS`` after the missed call.
* A counsellor ``claim``s an item (a conditional UPDATE: only one wins), ``call``s (the PBX rings the
  counsellor, then the caller: ``hotline.pbx.service.place_call`` with ref ``cb:<item id>``), and records
  the ``outcome``.  A PBX failure reaches ``on_pbx_result`` and puts the item back on the list.
* Follow-ups: records with a follow-up date, their assignee (the record's counsellor unless a supervisor
  reassigns), the same calling rules (ref ``fu:<record id>``).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, cast, delete, exists, func, insert, or_, select, update
from sqlalchemy import Text as SqlText
from sqlalchemy.orm import Session

from callbacks.models import OUTCOMES, CallbackAttempt, CallbackItem, CentreCallbackHours, DoNotCallBack, FollowUp
from hotline.audit import service as audit
from hotline.calls.models import Call, CallRecord
from hotline.centres.models import Centre
from hotline.db import rowcount, session_scope, utcnow
from hotline.errors import Conflict, Invalid, NotAllowed, NotFound
from hotline.i18n import N_, Text
from hotline.phone import CallerIdStatus
from hotline.settings import get_settings

STAFF = ("counsellor", "supervisor", "administrator")
SUPERVISORS = ("supervisor", "administrator")
OPEN = ("open", "claimed")
OUTCOME_LABELS = {"reached": N_("Reached"), "no_answer": N_("No answer"),
                  "unsafe": N_("Unsafe: someone else answered"), "wrong_number": N_("Wrong number"),
                  "failed": N_("The call could not be placed")}
KIND_LABELS = {"missed": N_("Missed"), "abandoned": N_("Abandoned"), "requested": N_("Asked for a callback")}
CLOSE_LABELS = {"reached": N_("Reached"), "unsafe": N_("Unsafe: someone else answered"),
                "wrong_number": N_("Wrong number"), "attempts": N_("No answer after the last attempt"),
                "answered_since": N_("The caller called again and was answered"),
                "do_not_call": N_("Marked do not call back"), "blocked": N_("The number is blocked"),
                "expired": N_("Expired")}
DO_NOT_CALL_FLAG = "do_not_call_back"
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_CHUNK = 1000


@dataclass(frozen=True)
class CliActor:
    """The ``hotline callbacks`` command: an administrator of every centre."""

    id: int = 0
    username: str = "cli"
    role: str = "administrator"
    centre_id: int | None = None


# ---------------------------------------------------------------------- settings and time
def _tz(session: Session, centre_id: int) -> ZoneInfo:
    centre = session.get(Centre, centre_id)
    return ZoneInfo(centre.timezone if centre is not None and centre.timezone else "Asia/Ho_Chi_Minh")


def centre_zone(session: Session, centre_id: int) -> ZoneInfo:
    return _tz(session, centre_id)


@dataclass(frozen=True)
class Hours:
    """Callback hours in a centre's time zone, as minutes after midnight; an end at or before the start runs
    past midnight (``20:00-02:00``), ``00:00-24:00`` is the whole day."""

    start: int
    end: int

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    @property
    def start_time(self) -> time:
        return time(self.start // 60, self.start % 60)

    def text(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}–{self.end // 60:02d}:{self.end % 60:02d}"

    def setting(self) -> str:
        return self.text().replace("–", "-")


def parse_hours(raw: str | None) -> Hours | None:
    """``HH:MM-HH:MM`` (``07:30-21:00``; ``24:00`` may end a day), else None."""
    m = _HOURS.match(raw or "")
    if m is None:
        return None
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        return None
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end or (start == 0 and end == 0):
        return None
    return Hours(start, end)


def default_hours() -> Hours:
    """``HOTLINE_CALLBACK_HOURS`` (``07:30-21:00``): the hours of a centre that has not set its own."""
    raw = get_settings().callback_hours
    hours = parse_hours(raw)
    if hours is None:
        raise ValueError(f"HOTLINE_CALLBACK_HOURS must look like 07:30-21:00 (got {raw!r})")
    return hours


def own_hours(session: Session, centre_id: int) -> Hours | None:
    """The centre's own callback hours, if its supervisors set them."""
    row = session.get(CentreCallbackHours, centre_id)
    return parse_hours(row.hours) if row is not None else None


def centre_hours(session: Session, centre_id: int | None) -> Hours:
    """The centre's callback hours, falling back to ``HOTLINE_CALLBACK_HOURS``."""
    return (own_hours(session, centre_id) if centre_id is not None else None) or default_hours()


def hours_text(session: Session | None = None, centre_id: int | None = None) -> str:
    if session is None or centre_id is None:
        return default_hours().text()
    return centre_hours(session, centre_id).text()


def within_hours(session: Session, centre_id: int, now: datetime) -> bool:
    local = now.astimezone(_tz(session, centre_id))
    return centre_hours(session, centre_id).contains(local.hour * 60 + local.minute)


def next_open(session: Session, centre_id: int, at: datetime) -> datetime:
    """The earliest moment at or after ``at`` inside the centre's callback hours."""
    zone = _tz(session, centre_id)
    local = at.astimezone(zone)
    hours = centre_hours(session, centre_id)
    if hours.contains(local.hour * 60 + local.minute):
        return at
    opening = datetime.combine(local.date(), hours.start_time, tzinfo=zone)
    if opening <= local:
        opening = datetime.combine(local.date() + timedelta(days=1), hours.start_time, tzinfo=zone)
    return opening.astimezone(timezone.utc)


def not_before(session: Session, centre_id: int, now: datetime, next_attempt_at: datetime | None = None) -> datetime | None:
    """When a call may next be placed, if not now: after the spacing since the last attempt, inside the
    centre's callback hours."""
    earliest = max(now, _aware(next_attempt_at)) if next_attempt_at is not None else now
    at = next_open(session, centre_id, earliest)
    return at if at > now else None


def when_text(session: Session, centre_id: int, at: datetime, now: datetime) -> str:
    """``21:30`` today, ``07:30 04/12`` another day (the centre's time zone)."""
    zone = _tz(session, centre_id)
    local = at.astimezone(zone)
    return local.strftime("%H:%M") if local.date() == now.astimezone(zone).date() else local.strftime("%H:%M %d/%m")


def why_not_now(session: Session, centre_id: int, now: datetime, next_attempt_at: datetime | None = None) -> Text | None:
    """Why a call may not be placed now, and from when it may (shown beside the disabled button, and as the
    refusal if it is asked for anyway)."""
    at = not_before(session, centre_id, now, next_attempt_at)
    if at is None:
        return None
    if not within_hours(session, centre_id, now) or not within_hours(session, centre_id, at - timedelta(minutes=1)):
        return Text("Callbacks are made only between %(hours)s; this one may be placed from %(time)s.",
                    hours=hours_text(session, centre_id), time=when_text(session, centre_id, at, now))
    return Text("The next attempt may be made from %(time)s.", time=when_text(session, centre_id, at, now))


def _expiry() -> timedelta:
    return timedelta(hours=get_settings().callback_expiry_hours)


def _spacing() -> timedelta:
    return timedelta(minutes=get_settings().callback_spacing_minutes)


def _max_attempts() -> int:
    return int(get_settings().callback_max_attempts)


def _claim_stale(now: datetime) -> datetime:
    return now - timedelta(minutes=get_settings().callback_claim_minutes)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------- who may not be called
#: the hashes to look at: a list (one caller, a few items), or a query selecting them (a build over a day's
#: missed calls: the database joins, no list of thousands of parameters is sent)
Hashes = list[str] | Select[Any]


def _chunks(hashes: Hashes) -> list[Any]:
    if isinstance(hashes, Select):
        return [hashes]
    return [hashes[i:i + _CHUNK] for i in range(0, len(hashes), _CHUNK)]


def _flagged_hashes(session: Session, hashes: Hashes) -> set[str]:
    """Hashes of numbers with a record flagged "do not call back (unsafe)", or marked after an unsafe callback."""
    out: set[str] = set()
    for chunk in _chunks(hashes):
        out.update(session.scalars(select(DoNotCallBack.number_hash).where(DoNotCallBack.number_hash.in_(chunk),
                                                                           DoNotCallBack.lifted_at.is_(None))))
        flagged = session.execute(
            select(Call.number_hash, CallRecord.flags).join(CallRecord, CallRecord.call_id == Call.id)
            .where(Call.number_hash.in_(chunk), cast(CallRecord.flags, SqlText()).like(f"%{DO_NOT_CALL_FLAG}%")))
        for number_hash, flags in flagged:
            if number_hash and isinstance(flags, list) and DO_NOT_CALL_FLAG in flags:
                out.add(str(number_hash))
    return out


def _answered_after(session: Session, hashes: Hashes, since: datetime) -> dict[str, datetime]:
    """For each hash, the latest answered call from it received after ``since`` (the calls hotline placed
    itself, callbacks, do not count: the counsellor's own phone answers those first)."""
    out: dict[str, datetime] = {}
    for chunk in _chunks(hashes):
        rows = session.execute(select(Call.number_hash, func.max(Call.received_at))
                               .where(Call.number_hash.in_(chunk), Call.answered_at.is_not(None),
                                      Call.received_at >= since,
                                      Call.facts["callback"].as_string().is_(None))  # not our own callbacks
                               .group_by(Call.number_hash))
        out.update({h: _aware(t) for h, t in rows if h})
    return out


def _blocked_hashes(session: Session, hashes: Hashes, now: datetime) -> set[str]:
    from blocking import service as blocking

    if isinstance(hashes, Select):
        return blocking.blocked_hashes(session, hashes, now)
    return blocking.blocked_hashes(session, list(hashes), now)


def _hashes_of(call: Call) -> list[str]:
    from hotline.security.crypto import caller_hashes

    return caller_hashes(call.caller_number, call.number_hash)


def _why_not(session: Session, call: Call, after: datetime, now: datetime) -> str | None:
    """Why this caller may not be called back now (a close reason), or None."""
    if call.caller_id_status != CallerIdStatus.PRESENT or not call.caller_number:
        return "do_not_call"
    hashes = _hashes_of(call)
    if _flagged_hashes(session, hashes):
        return "do_not_call"
    if _blocked_hashes(session, hashes, now):
        return "blocked"
    if _answered_after(session, hashes, after):
        return "answered_since"
    return None


# ---------------------------------------------------------------------- building the list
@dataclass
class BuildResult:
    made: int = 0
    merged: int = 0
    closed: int = 0
    expired: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"made": self.made, "merged": self.merged, "closed": self.closed, "expired": self.expired}


def build(session: Session, *, now: datetime | None = None, centre_id: int | None = None) -> BuildResult:
    """Make, merge, close and expire callback items (safe to run again at any time: it changes nothing twice)."""
    now = now or utcnow()
    result = BuildResult()
    centre_filter = [CallbackItem.centre_id == centre_id] if centre_id is not None else []
    result.expired = rowcount(session.execute(
        update(CallbackItem).where(CallbackItem.status.in_(OPEN), CallbackItem.expires_at <= now, *centre_filter)
        .values(status="expired", closed_at=now, close_reason="expired", claimed_by_id=None)
        .execution_options(synchronize_session=False)))
    # the items already waiting first (those made below are checked as they are made)
    result.closed += _recheck_open(session, now=now, centre_id=centre_id)

    covered = exists().where(CallbackItem.centre_id == Call.centre_id, CallbackItem.number_hash == Call.number_hash,
                             CallbackItem.last_missed_at >= Call.received_at)
    requested = Call.facts["callback_requested"].as_string().is_not(None)
    # a caller who reached a closed line and did not press the key did not ask to be called: ringing them back
    # unasked could endanger them (the issue: "the caller can press a key to ask for a callback")
    in_hours = and_(Call.facts["out_of_hours"].as_string().is_(None),
                    or_(Call.end_reason.is_(None), Call.end_reason != "out_of_hours"))
    q = (select(Call.id, Call.centre_id, Call.number_hash, Call.caller_masked, Call.received_at, Call.status,
                requested.label("requested"))
         .where(Call.received_at > now - _expiry(), Call.received_at <= now,
                or_(and_(Call.status.in_(("missed", "abandoned")), in_hours), requested),
                Call.caller_id_status == CallerIdStatus.PRESENT.value, Call.number_hash.is_not(None),
                Call.facts["callback"].as_string().is_(None), ~covered)
         .order_by(Call.received_at, Call.id))
    if centre_id is not None:
        q = q.where(Call.centre_id == centre_id)
    groups: dict[tuple[int, str], list[Any]] = {}
    for row in session.connection().execute(q):  # plain rows (10,000 a busy day): no ORM bookkeeping
        groups.setdefault((row.centre_id, row.number_hash), []).append(row)

    if groups:
        # the candidates' hashes as a query: the database joins (no list of thousands of parameters)
        hashes = q.with_only_columns(Call.number_hash).order_by(None)
        earliest = min(rows[0].received_at for rows in groups.values())
        flagged = _flagged_hashes(session, hashes)
        blocked = _blocked_hashes(session, hashes, now)
        answered = _answered_after(session, hashes, _aware(earliest))
        open_items = {(i.centre_id, i.number_hash): i for i in session.scalars(select(CallbackItem).where(
            CallbackItem.status.in_(OPEN), CallbackItem.number_hash.in_(hashes)))}
        new_rows: list[dict[str, Any]] = []
        for key, rows in groups.items():
            first, last = rows[0], rows[-1]
            first_at, last_at = _aware(first.received_at), _aware(last.received_at)
            item = open_items.get(key)
            if item is not None:
                item.missed_calls += len(rows)
                item.last_missed_at = max(_aware(item.last_missed_at), last_at)
                item.expires_at = max(_aware(item.expires_at), last_at + _expiry())
                if any(r.requested for r in rows) and item.kind != "requested":
                    item.kind = "requested"
                result.merged += len(rows)
                continue
            reason = None
            if key[1] in flagged:
                reason = "do_not_call"
            elif key[1] in blocked:
                reason = "blocked"
            elif key[1] in answered and answered[key[1]] > last_at:
                reason = "answered_since"
            kind = "requested" if any(r.requested for r in rows) else first.status
            new_rows.append({
                "centre_id": key[0], "call_id": first.id, "kind": kind, "number_hash": key[1],
                "number_masked": first.caller_masked or "", "missed_at": first_at, "last_missed_at": last_at,
                "missed_calls": len(rows), "created_at": now, "expires_at": last_at + _expiry(),
                "status": "closed" if reason else "open", "attempts": 0,
                "closed_at": now if reason else None, "close_reason": reason})
            result.made += 0 if reason else 1
            result.closed += 1 if reason else 0
        if new_rows:
            _insert_items(session, new_rows)
        session.flush()
    return result


def _insert_items(session: Session, rows: list[dict[str, Any]]) -> None:
    """Thousands of items at once: PostgreSQL's COPY (in the session's transaction), else one executemany."""
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        columns = list(rows[0])
        driver: Any = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(
                f"COPY {CallbackItem.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        return
    session.execute(insert(CallbackItem.metadata.tables[CallbackItem.__tablename__]), rows)


def _recheck_open(session: Session, *, now: datetime, centre_id: int | None) -> int:
    """Open items whose caller has since been answered, blocked or marked do not call back leave the list."""
    q = select(CallbackItem.id, CallbackItem.number_hash, CallbackItem.missed_at, CallbackItem.last_missed_at).where(
        CallbackItem.status == "open")
    if centre_id is not None:
        q = q.where(CallbackItem.centre_id == centre_id)
    items = session.execute(q).all()
    if not items:
        return 0
    hashes = q.with_only_columns(CallbackItem.number_hash)
    flagged = _flagged_hashes(session, hashes)
    blocked = _blocked_hashes(session, hashes, now)
    answered = _answered_after(session, hashes, min(_aware(i.missed_at) for i in items))
    never = datetime.min.replace(tzinfo=timezone.utc)
    closing: dict[str, list[int]] = {}
    for item in items:
        reason = ("do_not_call" if item.number_hash in flagged else "blocked" if item.number_hash in blocked
                  else "answered_since" if answered.get(item.number_hash, never) > _aware(item.last_missed_at)
                  else None)
        if reason:
            closing.setdefault(reason, []).append(item.id)
    for reason, ids in closing.items():
        for i in range(0, len(ids), _CHUNK):
            session.execute(update(CallbackItem).where(CallbackItem.id.in_(ids[i:i + _CHUNK]),
                                                       CallbackItem.status == "open")
                            .values(status="closed", closed_at=now, close_reason=reason)
                            .execution_options(synchronize_session=False))
    return sum(len(ids) for ids in closing.values())


def build_all(now: datetime | None = None) -> dict[str, int]:
    """The worker's periodic job."""
    with session_scope() as session:
        return build(session, now=now).as_dict()


# ---------------------------------------------------------------------- reading the list
def _scope(actor: Any) -> int | None:
    if actor.role not in STAFF:
        raise NotAllowed(Text("Your account does not have access to this page."))
    if actor.centre_id is None and actor.role != "administrator":
        raise NotAllowed(Text("Your account belongs to no centre; ask an administrator to set one."))
    return actor.centre_id


def _centre_for(actor: Any, centre_id: int | None) -> int | None:
    if centre_id is not None and actor.role == "administrator":
        return centre_id
    return _scope(actor)


def open_items(session: Session, *, actor: Any, now: datetime | None = None, centre_id: int | None = None,
               limit: int = 200) -> list[CallbackItem]:
    """The centre's callback list: open and claimed items not yet expired, the oldest missed call first."""
    now = now or utcnow()
    centre = _centre_for(actor, centre_id)
    q = select(CallbackItem).where(CallbackItem.status.in_(OPEN), CallbackItem.expires_at > now)
    if centre is not None:
        q = q.where(CallbackItem.centre_id == centre)
    return list(session.scalars(q.order_by(CallbackItem.kind != "requested", CallbackItem.missed_at,
                                           CallbackItem.id).limit(limit)))


def sizes(session: Session, *, centre_id: int, now: datetime | None = None) -> dict[str, Any]:
    """How many callbacks and follow-ups wait, and since when the oldest callback waits."""
    now = now or utcnow()
    n, oldest = session.execute(select(func.count(), func.min(CallbackItem.missed_at)).where(
        CallbackItem.centre_id == centre_id, CallbackItem.status.in_(OPEN), CallbackItem.expires_at > now)).one()
    today = now.astimezone(_tz(session, centre_id)).date()
    due = session.execute(select(func.count(), func.min(CallRecord.follow_up_date)).select_from(CallRecord)
                          .outerjoin(FollowUp, FollowUp.record_id == CallRecord.id)
                          .where(*_follow_up_open(centre_id), CallRecord.follow_up_date <= today)).one()
    return {"callbacks": int(n or 0), "oldest_callback": _aware(oldest) if oldest else None,
            "follow_ups_due": int(due[0] or 0), "oldest_follow_up": due[1]}


def item_state(session: Session, item: CallbackItem, *, actor: Any, now: datetime) -> dict[str, Any]:
    """What the page shows about one item: who holds it, whether the actor may call now and if not why."""
    mine = item.status == "claimed" and item.claimed_by_id == actor.id
    stale = item.status == "claimed" and item.claimed_at is not None and _aware(item.claimed_at) < _claim_stale(now)
    blocked_reason = why_not_now(session, item.centre_id, now, item.next_attempt_at)
    wait_until = not_before(session, item.centre_id, now, item.next_attempt_at)
    attempt = current_attempt(session, ref=f"cb:{item.id}")
    return {"mine": mine, "claimable": item.status == "open" or stale or mine,
            "held_by_other": item.status == "claimed" and not mine and not stale,
            "may_call": mine and blocked_reason is None and attempt is None, "why_not": blocked_reason,
            "attempt": attempt, "attempts_left": max(0, _max_attempts() - item.attempts),
            "not_before": wait_until,
            "not_before_text": when_text(session, item.centre_id, wait_until, now) if wait_until else ""}


def _item(session: Session, *, actor: Any, item_id: int) -> CallbackItem:
    centre = _scope(actor)
    item = session.get(CallbackItem, item_id)
    if item is None or (actor.role != "administrator" and item.centre_id != centre):
        raise NotFound(Text("No such callback."))
    return item


def get_item(session: Session, *, actor: Any, item_id: int) -> CallbackItem:
    return _item(session, actor=actor, item_id=item_id)


def user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    from hotline.auth.models import User

    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {u.id: u.display_name or u.username for u in session.scalars(select(User).where(User.id.in_(wanted)))}


# ---------------------------------------------------------------------- claiming
def claim(session: Session, *, actor: Any, item_id: int, request: Any = None,
          now: datetime | None = None) -> CallbackItem:
    """Only one counsellor holds an item: the UPDATE succeeds for the first, the second gets a 409."""
    now = now or utcnow()
    item = _item(session, actor=actor, item_id=item_id)
    if item.status == "claimed" and item.claimed_by_id == actor.id:
        return item
    if item.status not in OPEN or _aware(item.expires_at) <= now:
        raise Conflict(Text("This callback is no longer on the list."))
    won = rowcount(session.execute(
        update(CallbackItem).where(CallbackItem.id == item.id, or_(
            CallbackItem.status == "open",
            and_(CallbackItem.status == "claimed", CallbackItem.claimed_at < _claim_stale(now))))
        .values(status="claimed", claimed_by_id=actor.id, claimed_at=now)
        .execution_options(synchronize_session=False)))
    session.refresh(item)
    if not won:
        holder = user_names(session, [item.claimed_by_id]).get(item.claimed_by_id or 0, "")
        raise Conflict(Text("%(name)s has already claimed this callback.", name=holder or "?"))
    audit.record(session, actor=actor, action="callback.claim", object_type="callback_item", object_id=item.id,
                 request=request, detail={"number": item.number_masked})
    return item


def release(session: Session, *, actor: Any, item_id: int, request: Any = None) -> CallbackItem:
    item = _item(session, actor=actor, item_id=item_id)
    if item.status != "claimed":
        return item
    if item.claimed_by_id != actor.id and actor.role not in SUPERVISORS:
        raise NotAllowed(Text("Only the counsellor who claimed this callback, or a supervisor, may release it."))
    item.status, item.claimed_by_id, item.claimed_at = "open", None, None
    audit.record(session, actor=actor, action="callback.release", object_type="callback_item", object_id=item.id,
                 request=request)
    return item


# ---------------------------------------------------------------------- calling
def current_attempt(session: Session, *, ref: str) -> CallbackAttempt | None:
    """The attempt under way for this ref (placing or placed, no outcome yet)."""
    return session.scalars(select(CallbackAttempt).where(CallbackAttempt.ref == ref,
                                                         CallbackAttempt.status.in_(("placing", "placed")))
                           .order_by(CallbackAttempt.id.desc()).limit(1)).first()


def last_attempt(session: Session, *, ref: str) -> CallbackAttempt | None:
    return session.scalars(select(CallbackAttempt).where(CallbackAttempt.ref == ref)
                           .order_by(CallbackAttempt.id.desc()).limit(1)).first()


def _place(session: Session, *, actor: Any, centre_id: int, number: str, ref: str) -> Any:
    from hotline.pbx import service as pbx

    return pbx.place_call(session, actor=actor, centre_id=centre_id, number=number, ref=ref)


def _check_hours(session: Session, centre_id: int, now: datetime, next_attempt_at: datetime | None = None) -> None:
    """Refuse a call outside the centre's callback hours (422) or too soon after the last attempt (409),
    saying from when it may be placed."""
    reason = why_not_now(session, centre_id, now, next_attempt_at)
    if reason is None:
        return
    if not within_hours(session, centre_id, now):
        raise Invalid({"": reason})
    raise Conflict(reason)


def _start_attempt(session: Session, *, actor: Any, centre_id: int, number: str, ref: str,
                   item_id: int | None = None, record_id: int | None = None) -> CallbackAttempt:
    attempt = CallbackAttempt(centre_id=centre_id, ref=ref, item_id=item_id, record_id=record_id,
                              counsellor_id=actor.id or None, started_at=utcnow(), status="placing")
    session.add(attempt)
    session.flush()
    command = _place(session, actor=actor, centre_id=centre_id, number=number, ref=ref)
    attempt.command_id = command.id
    if command.status in ("placed", "failed"):
        _apply_result(session, attempt, command)
    return attempt


def call(session: Session, *, actor: Any, item_id: int, request: Any = None) -> CallbackAttempt:
    """"Gọi lại": the PBX rings the counsellor's phone, then the caller, with the hotline number shown."""
    now = utcnow()
    item = _item(session, actor=actor, item_id=item_id)
    if item.status != "claimed" or item.claimed_by_id != actor.id:
        raise Conflict(Text("Claim this callback before calling."))
    if _aware(item.expires_at) <= now:
        raise Conflict(Text("This callback is no longer on the list."))
    _check_hours(session, item.centre_id, now, item.next_attempt_at)
    if current_attempt(session, ref=f"cb:{item.id}") is not None:
        raise Conflict(Text("A call to this caller is already under way; record its outcome first."))
    missed = session.get(Call, item.call_id) if item.call_id else None
    if missed is None or not missed.caller_number:
        raise Conflict(Text("The number of this missed call is no longer kept; it cannot be called back."))
    reason = _why_not(session, missed, _aware(item.last_missed_at), now)
    if reason is not None:
        item.status, item.closed_at, item.close_reason, item.claimed_by_id = "closed", now, reason, None
        session.commit()  # the item leaves the list even though this request is refused
        raise Conflict(Text("This caller must not be called back: %(reason)s.", reason=Text(CLOSE_LABELS[reason])))
    attempt = _start_attempt(session, actor=actor, centre_id=item.centre_id, number=missed.caller_number,
                             ref=f"cb:{item.id}", item_id=item.id)
    audit.record(session, actor=actor, action="callback.call", object_type="callback_item", object_id=item.id,
                 request=request, detail={"number": item.number_masked, "attempt": attempt.id})
    return attempt


def _person_not_answering(command: Any) -> bool:
    """The counsellor was connected and the person called did not answer or was busy (Twilio's
    ``<Dial>`` to them): a "no answer" attempt, as the counsellor records it on Asterisk."""
    from hotline.pbx.service import PERSON_BUSY, PERSON_NO_ANSWER

    return command.status == "failed" and command.reason in (PERSON_NO_ANSWER, PERSON_BUSY)


def _no_answer_by_pbx(session: Session, attempt: CallbackAttempt, command: Any) -> None:
    """Count the attempt as "no answer" with the PBX's reason: spaced, limited, as if recorded by hand."""
    now = utcnow()
    attempt.status, attempt.outcome, attempt.ended_at = "done", "no_answer", now
    attempt.reason = (command.reason or "")[:255]
    if attempt.item_id is not None:
        item = session.get(CallbackItem, attempt.item_id)
        if item is None or item.status not in OPEN:
            return
        item.attempts += 1
        item.last_outcome, item.last_reason = "no_answer", attempt.reason
        item.claimed_by_id, item.claimed_at = None, None
        if item.attempts < _max_attempts():
            item.status, item.next_attempt_at = "open", now + _spacing()
        else:
            item.status, item.closed_at, item.close_reason = "closed", now, "attempts"
    elif attempt.record_id is not None:
        fu = session.scalar(select(FollowUp).where(FollowUp.record_id == attempt.record_id))
        if fu is not None:
            fu.attempts += 1
            fu.last_outcome = "no_answer"


def _apply_result(session: Session, attempt: CallbackAttempt, command: Any) -> None:
    if attempt.status not in ("placing", "placed"):
        return
    if _person_not_answering(command):
        _no_answer_by_pbx(session, attempt, command)
    elif command.status == "failed":
        attempt.status, attempt.outcome, attempt.ended_at = "failed", "failed", utcnow()
        attempt.reason = (command.reason or "")[:255]
        if attempt.item_id is not None:
            item = session.get(CallbackItem, attempt.item_id)
            if item is not None and item.status in OPEN:
                item.status, item.claimed_by_id, item.claimed_at = "open", None, None
                item.last_outcome, item.last_reason = "failed", attempt.reason
        elif attempt.record_id is not None:
            fu = session.scalar(select(FollowUp).where(FollowUp.record_id == attempt.record_id))
            if fu is not None:
                fu.last_outcome = "failed"
    elif command.status == "placed":
        attempt.status = "placed"
        attempt.call_uid = (getattr(command, "call_uid", None) or None)


def on_pbx_result(session: Session, command: Any) -> None:
    """``pbx_results`` hook (refs ``cb:`` and ``fu:``): the PBX placed the call or could not."""
    attempt = session.scalars(select(CallbackAttempt).where(CallbackAttempt.command_id == command.id)
                              .order_by(CallbackAttempt.id.desc()).limit(1)).first()
    if attempt is not None:
        _apply_result(session, attempt, command)


def _mark_do_not_call(session: Session, *, actor: Any, centre_id: int, number_hash: str, masked: str, ref: str) -> None:
    if session.scalar(select(DoNotCallBack.id).where(DoNotCallBack.number_hash == number_hash,
                                                     DoNotCallBack.lifted_at.is_(None))) is None:
        session.add(DoNotCallBack(centre_id=centre_id, number_hash=number_hash, number_masked=masked,
                                  created_by=actor.username[:128], source=ref[:64]))


def _finish_attempt(session: Session, *, ref: str, outcome: str) -> CallbackAttempt:
    if outcome not in OUTCOMES:
        raise Invalid({"outcome": Text("Choose an outcome: reached, no answer, unsafe or wrong number.")})
    attempt = current_attempt(session, ref=ref)
    if attempt is None:
        last = last_attempt(session, ref=ref)
        if last is not None and last.status == "failed":
            raise Conflict(Text("The call could not be placed: %(reason)s.", reason=Text(last.reason or N_("unknown reason"))))
        raise Conflict(Text("No call is under way to record an outcome for."))
    attempt.status, attempt.outcome, attempt.ended_at = "done", outcome, utcnow()
    return attempt


def record_outcome(session: Session, *, actor: Any, item_id: int, outcome: str, request: Any = None) -> CallbackItem:
    now = utcnow()
    item = _item(session, actor=actor, item_id=item_id)
    if item.claimed_by_id is None:
        raise Conflict(Text("No call is under way to record an outcome for."))
    if item.claimed_by_id != actor.id and actor.role not in SUPERVISORS:
        raise NotAllowed(Text("Only the counsellor who claimed this callback may record its outcome."))
    attempt = _finish_attempt(session, ref=f"cb:{item.id}", outcome=outcome)
    item.attempts += 1
    item.last_outcome, item.last_reason = outcome, None
    if outcome == "no_answer" and item.attempts < _max_attempts():
        item.status, item.claimed_by_id, item.claimed_at = "open", None, None
        item.next_attempt_at = now + _spacing()
    else:
        item.status = "done" if outcome == "reached" else "closed"
        item.closed_at, item.close_reason = now, ("attempts" if outcome == "no_answer" else outcome)
        item.claimed_by_id = None
    if outcome == "unsafe":
        _mark_do_not_call(session, actor=actor, centre_id=item.centre_id, number_hash=item.number_hash,
                          masked=item.number_masked, ref=attempt.ref)
    audit.record(session, actor=actor, action="callback.outcome", object_type="callback_item", object_id=item.id,
                 request=request, detail={"outcome": outcome, "attempt": attempt.id, "number": item.number_masked})
    return item


# ---------------------------------------------------------------------- "do not call back (unsafe)" marks
def marks_of_call(session: Session, call: Any) -> list[DoNotCallBack]:
    """The marks (not lifted) on this call's number: someone else answered when it was called back."""
    if call is None or not call.caller_number or call.caller_id_status != CallerIdStatus.PRESENT:
        return []
    return list(session.scalars(select(DoNotCallBack).where(DoNotCallBack.number_hash.in_(_hashes_of(call)),
                                                            DoNotCallBack.lifted_at.is_(None))
                                .order_by(DoNotCallBack.created_at)))


def caller_marks(session: Session, call: Any, actor: Any) -> list[dict[str, Any]]:
    """``caller_marks`` hook (the live screen's caller history): the mark, shown to every staff member who
    may see the call, so nobody rings the number back by hand."""
    if getattr(actor, "role", None) not in STAFF:
        return []
    out = []
    for mark in marks_of_call(session, call)[:1]:
        when = _aware(mark.created_at).astimezone(_tz(session, mark.centre_id or call.centre_id))
        out.append({"code": DO_NOT_CALL_FLAG, "id": mark.id, "label": Text("Do not call back (unsafe)"),
                    "text": Text("Do not call back (unsafe): someone else answered a callback to this number on "
                                 "%(date)s.", date=when.strftime("%d/%m/%Y"))})
    return out


def marks(session: Session, *, actor: Any, centre_id: int | None = None, limit: int = 200) -> list[DoNotCallBack]:
    """The centre's marks in force (supervisors: to review and lift)."""
    if actor.role not in SUPERVISORS:
        raise NotAllowed(Text("Only a supervisor may lift a do-not-call-back mark."))
    centre = _centre_for(actor, centre_id)
    q = select(DoNotCallBack).where(DoNotCallBack.lifted_at.is_(None))
    if centre is not None:
        q = q.where(DoNotCallBack.centre_id == centre)
    return list(session.scalars(q.order_by(DoNotCallBack.created_at.desc()).limit(limit)))


def lift_mark(session: Session, *, actor: Any, mark_id: int, reason: str, request: Any = None) -> DoNotCallBack:
    """A supervisor lifts the mark (the caller asked to be called, the other person has left): audited, kept
    as history; the number's next missed call makes a callback item again."""
    if actor.role not in SUPERVISORS:
        raise NotAllowed(Text("Only a supervisor may lift a do-not-call-back mark."))
    mark = session.get(DoNotCallBack, mark_id)
    if mark is None or (actor.role != "administrator" and mark.centre_id != _scope(actor)):
        raise NotFound(Text("No such mark."))
    if mark.lifted_at is not None:
        raise Conflict(Text("This mark was already lifted."))
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({"reason": Text("Say why the mark is lifted (for the audit log).")})
    if len(reason) > 255:
        raise Invalid({"reason": Text("The reason is too long (255 characters at most).")})
    mark.lifted_at, mark.lifted_by, mark.lift_reason = utcnow(), actor.username[:128], reason
    audit.record(session, actor=actor, action="callback.do_not_call_lift", object_type="callback_do_not_call",
                 object_id=mark.id, request=request, detail={"number": mark.number_masked, "reason": reason})
    return mark


# ---------------------------------------------------------------------- each centre's callback hours
def set_hours(session: Session, *, actor: Any, centre_id: int | None, hours: str, request: Any = None) -> Hours | None:
    """A supervisor sets the centre's callback hours (``HH:MM-HH:MM``), or clears them (empty: the default)."""
    if actor.role not in SUPERVISORS:
        raise NotAllowed(Text("Only a supervisor may change the callback hours."))
    centre = _centre_for(actor, centre_id)
    if centre is None or session.get(Centre, centre) is None:
        raise Invalid({"centre_id": Text("Choose a centre.")})
    raw = (hours or "").strip()
    row = session.get(CentreCallbackHours, centre)
    before = row.hours if row is not None else ""
    if not raw:
        if row is not None:
            session.delete(row)
        parsed = None
    else:
        parsed = parse_hours(raw)
        if parsed is None:
            raise Invalid({"hours": Text("Write the hours as HH:MM-HH:MM, for example 07:30-21:00 (24:00 may end "
                                         "the day; an end before the start runs past midnight).")})
        if row is None:
            row = CentreCallbackHours(centre_id=centre, hours=parsed.setting())
            session.add(row)
        row.hours, row.updated_at, row.updated_by = parsed.setting(), utcnow(), actor.username[:128]
    audit.record(session, actor=actor, action="callback.hours", object_type="centre", object_id=centre,
                 request=request, detail={"before": before, "after": parsed.setting() if parsed else ""})
    return parsed


# ---------------------------------------------------------------------- a placed call's record
def link_of(session: Session, ref: str | None) -> dict[str, Any] | None:
    """What a placed call's ``facts["callback"]`` points at: the missed call (cb:) or the record (fu:)."""
    if not ref or ":" not in ref:
        return None
    prefix, _, raw = ref.partition(":")
    if not raw.isdigit() or len(raw) > 12:
        return None
    if prefix == "cb":
        item = session.get(CallbackItem, int(raw))
        return None if item is None else {"kind": "cb", "item": item, "missed_at": _aware(item.missed_at),
                                           "call_id": item.call_id}
    if prefix == "fu":
        return {"kind": "fu", "record_id": int(raw)}
    return None


# ---------------------------------------------------------------------- follow-ups
def _follow_up_open(centre_id: int | None) -> list[Any]:
    conds: list[Any] = [CallRecord.follow_up_needed.is_(True), CallRecord.follow_up_date.is_not(None),
                        or_(FollowUp.id.is_(None), FollowUp.done_at.is_(None),
                            FollowUp.due != CallRecord.follow_up_date)]
    if centre_id is not None:
        conds.append(CallRecord.centre_id == centre_id)
    return conds


def follow_ups(session: Session, *, actor: Any, today: date | None = None, limit: int = 300,
               centre_id: int | None = None) -> list[dict[str, Any]]:
    """Records with a follow-up date not yet done: due today, overdue, or coming (counsellors: their own)."""
    centre = _centre_for(actor, centre_id)
    if today is None:
        today = utcnow().astimezone(_tz(session, centre) if centre else ZoneInfo("Asia/Ho_Chi_Minh")).date()
    assignee = func.coalesce(FollowUp.assignee_id, CallRecord.counsellor_id)
    q = (select(CallRecord, FollowUp, assignee.label("assignee")).outerjoin(FollowUp, FollowUp.record_id == CallRecord.id)
         .where(*_follow_up_open(centre)))
    if actor.role == "counsellor":
        q = q.where(assignee == actor.id)
    rows = session.execute(q.order_by(CallRecord.follow_up_date, CallRecord.id).limit(limit)).all()
    names = user_names(session, [a for _, _, a in rows])
    out = []
    for record, fu, who in rows:
        due = record.follow_up_date
        assert due is not None  # _follow_up_open
        marker = "overdue" if due < today else "due" if due == today else "upcoming"
        out.append({"record": record, "follow_up": fu, "assignee_id": who, "assignee": names.get(who or 0, ""),
                    "due": due, "marker": marker, "attempts": fu.attempts if fu and fu.due == due else 0,
                    "last_outcome": fu.last_outcome if fu and fu.due == due else None,
                    "attempt": current_attempt(session, ref=f"fu:{record.id}"),
                    "used_up": attempts_used_up(fu if fu and fu.due == due else None)})
    return out


def _record(session: Session, *, actor: Any, record_id: int) -> CallRecord:
    centre = _scope(actor)
    record = session.get(CallRecord, record_id)
    if record is None or (actor.role != "administrator" and record.centre_id != centre):
        raise NotFound(Text("No such follow-up."))
    return record


def _follow_up_row(session: Session, record: CallRecord) -> FollowUp:
    fu = session.scalar(select(FollowUp).where(FollowUp.record_id == record.id))
    if fu is None:
        fu = FollowUp(record_id=record.id, centre_id=record.centre_id, assignee_id=record.counsellor_id,
                      assigned_by="", assigned_at=utcnow(), due=record.follow_up_date, attempts=0)
        session.add(fu)
        session.flush()
    elif fu.due != record.follow_up_date:  # a new follow-up date: a new follow-up
        fu.due, fu.done_at, fu.done_reason, fu.attempts, fu.last_outcome = record.follow_up_date, None, None, 0, None
        fu.attempts_base = 0
        fu.reminded_due = fu.reminded_overdue = None
    return fu


def _effective_assignee(session: Session, record: CallRecord) -> int | None:
    fu = session.scalar(select(FollowUp).where(FollowUp.record_id == record.id))
    return fu.assignee_id if fu is not None else record.counsellor_id


def reassign(session: Session, *, actor: Any, record_id: int, user_id: int, request: Any = None) -> FollowUp:
    from hotline.auth.models import User

    if actor.role not in SUPERVISORS:
        raise NotAllowed(Text("Only a supervisor may reassign a follow-up."))
    record = _record(session, actor=actor, record_id=record_id)
    user = session.get(User, user_id)
    if user is None or user.role not in STAFF or user.centre_id != record.centre_id or not getattr(user, "active", True):
        raise Invalid({"assignee": Text("Choose a counsellor or supervisor of the record's centre.")})
    fu = _follow_up_row(session, record)
    fu.assignee_id, fu.assigned_by, fu.assigned_at = user.id, actor.username[:128], utcnow()
    fu.reminded_due = None
    audit.record(session, actor=actor, action="follow_up.assign", object_type="call_record", object_id=record.id,
                 request=request, detail={"assignee": user.username})
    return fu


def assignable(session: Session, *, centre_id: int) -> list[Any]:
    from hotline.auth import service as users

    return [u for u in users.list_users(session, centre_id=centre_id, include_disabled=False) if u.role in STAFF]


def _follow_up_state(session: Session, record: CallRecord) -> FollowUp | None:
    """The record's follow-up row, if it is about the record's current follow-up date."""
    fu = session.scalar(select(FollowUp).where(FollowUp.record_id == record.id))
    return fu if fu is not None and fu.due == record.follow_up_date else None


def attempts_used_up(fu: FollowUp | None) -> bool:
    """The follow-up's tries through the phone system reached ``HOTLINE_CALLBACK_MAX_ATTEMPTS`` without
    reaching the caller: it stays on the list for the assignee to decide (try again, a new date, done)."""
    return fu is not None and fu.done_at is None and fu.attempts - (fu.attempts_base or 0) >= _max_attempts()


def _must_not_call(session: Session, record: CallRecord) -> bool:
    """The record's number is marked "do not call back (unsafe)" (a mark in force, or a record's flag)."""
    call = session.get(Call, record.call_id) if record.call_id else None
    return call is not None and bool(call.caller_number) and bool(_flagged_hashes(session, _hashes_of(call)))


def follow_up_blocker(session: Session, record: CallRecord, now: datetime) -> Text | None:
    """Why a follow-up call may not be placed (shown beside a disabled button), or None."""
    if not record.consent_callback:
        return Text("The caller did not agree to be called back.")
    call = session.get(Call, record.call_id) if record.call_id else None
    if call is None or not call.caller_number or call.caller_id_status != CallerIdStatus.PRESENT:
        return Text("There is no number to call back for this record.")
    if _must_not_call(session, record):
        return Text("This caller must not be called back: %(reason)s.", reason=Text(CLOSE_LABELS["do_not_call"]))
    if attempts_used_up(_follow_up_state(session, record)):
        return Text("%(n)s attempts without reaching the caller. Decide: try again, set a new follow-up date on "
                    "the record, or mark the follow-up done.", n=_max_attempts())
    last = last_attempt(session, ref=f"fu:{record.id}")
    after = (_aware(last.ended_at) + _spacing() if last is not None and last.outcome == "no_answer"
             and last.ended_at is not None else None)
    return why_not_now(session, record.centre_id, now, after)


def call_follow_up(session: Session, *, actor: Any, record_id: int, request: Any = None) -> CallbackAttempt:
    now = utcnow()
    record = _record(session, actor=actor, record_id=record_id)
    if not record.follow_up_needed or record.follow_up_date is None:
        raise Conflict(Text("This record has no follow-up to make."))
    if actor.role == "counsellor" and _effective_assignee(session, record) != actor.id:
        raise NotAllowed(Text("This follow-up is assigned to someone else."))
    blocker = follow_up_blocker(session, record, now)
    if blocker is not None:
        if attempts_used_up(_follow_up_state(session, record)) or _must_not_call(session, record):
            raise Conflict(blocker)
        raise Invalid({"": blocker})
    ref = f"fu:{record.id}"
    if current_attempt(session, ref=ref) is not None:
        raise Conflict(Text("A call to this caller is already under way; record its outcome first."))
    call_row = session.get(Call, record.call_id)
    assert call_row is not None and call_row.caller_number  # follow_up_blocker checked
    reason = _why_not(session, call_row, _aware(call_row.received_at), now)
    if reason in ("do_not_call", "blocked"):
        raise Conflict(Text("This caller must not be called back: %(reason)s.", reason=Text(CLOSE_LABELS[reason])))
    _follow_up_row(session, record)
    attempt = _start_attempt(session, actor=actor, centre_id=record.centre_id, number=call_row.caller_number,
                             ref=ref, record_id=record.id)
    audit.record(session, actor=actor, action="follow_up.call", object_type="call_record", object_id=record.id,
                 request=request, detail={"number": call_row.caller_masked, "attempt": attempt.id})
    return attempt


def follow_up_outcome(session: Session, *, actor: Any, record_id: int, outcome: str, request: Any = None) -> FollowUp:
    now = utcnow()
    record = _record(session, actor=actor, record_id=record_id)
    if actor.role == "counsellor" and _effective_assignee(session, record) != actor.id:
        raise NotAllowed(Text("This follow-up is assigned to someone else."))
    attempt = _finish_attempt(session, ref=f"fu:{record.id}", outcome=outcome)
    fu = _follow_up_row(session, record)
    fu.attempts += 1
    fu.last_outcome = outcome
    if outcome != "no_answer":
        fu.done_at, fu.done_reason = now, outcome
    if outcome == "unsafe":
        call_row = session.get(Call, record.call_id) if record.call_id else None
        if call_row is not None and call_row.number_hash:
            _mark_do_not_call(session, actor=actor, centre_id=record.centre_id, number_hash=call_row.number_hash,
                              masked=call_row.caller_masked, ref=attempt.ref)
    audit.record(session, actor=actor, action="follow_up.outcome", object_type="call_record", object_id=record.id,
                 request=request, detail={"outcome": outcome, "attempt": attempt.id})
    return fu


def follow_up_retry(session: Session, *, actor: Any, record_id: int, request: Any = None) -> FollowUp:
    """After the last attempt, the assignee (or a supervisor) chooses to try again: a new round of
    ``HOTLINE_CALLBACK_MAX_ATTEMPTS`` attempts, with the same spacing and hours."""
    record = _record(session, actor=actor, record_id=record_id)
    if actor.role == "counsellor" and _effective_assignee(session, record) != actor.id:
        raise NotAllowed(Text("This follow-up is assigned to someone else."))
    fu = _follow_up_state(session, record)
    if fu is None or not attempts_used_up(fu):
        raise Conflict(Text("This follow-up still has attempts left; call again when the time comes."))
    fu.attempts_base = fu.attempts
    audit.record(session, actor=actor, action="follow_up.retry", object_type="call_record", object_id=record.id,
                 request=request, detail={"attempts": fu.attempts})
    return fu


def follow_up_done(session: Session, *, actor: Any, record_id: int, request: Any = None) -> FollowUp:
    """The follow-up was made another way (in person, a partner called): it leaves the list."""
    record = _record(session, actor=actor, record_id=record_id)
    if actor.role == "counsellor" and _effective_assignee(session, record) != actor.id:
        raise NotAllowed(Text("This follow-up is assigned to someone else."))
    fu = _follow_up_row(session, record)
    fu.done_at, fu.done_reason = utcnow(), "done"
    audit.record(session, actor=actor, action="follow_up.done", object_type="call_record", object_id=record.id,
                 request=request)
    return fu


def send_reminders(session: Session, *, now: datetime | None = None) -> dict[str, int]:
    """Follow-ups due today remind their assignee, overdue ones the centre's supervisors: once a day each
    (in the inbox, ``hotline.notifications``)."""
    from hotline.notifications import service as notifications

    now = now or utcnow()
    sent = {"due": 0, "overdue": 0}
    zones: dict[int, ZoneInfo] = {}
    rows = session.execute(select(CallRecord).outerjoin(FollowUp, FollowUp.record_id == CallRecord.id)
                           .where(*_follow_up_open(None)).order_by(CallRecord.id)).scalars().all()
    for record in rows:
        zone = zones.setdefault(record.centre_id, _tz(session, record.centre_id))
        today, due = now.astimezone(zone).date(), record.follow_up_date
        if due is None or due > today:
            continue
        fu = _follow_up_row(session, record)
        link = f"/callbacks/follow-ups/{record.id}"
        if due == today and fu.reminded_due != today and fu.assignee_id:
            notifications.notify(session, user_ids=[fu.assignee_id], kind="follow_up.due", link=link,
                                 title=Text("Follow-up of record #%(id)s is due today.", id=record.id))
            fu.reminded_due = today
            sent["due"] += 1
        elif due < today and fu.reminded_overdue != today:
            notifications.notify(session, centre_id=record.centre_id, roles=("supervisor",), kind="follow_up.overdue",
                                 link=link, title=Text("Follow-up of record #%(id)s is overdue (due %(due)s).",
                                                       id=record.id, due=due.strftime("%d/%m/%Y")))
            fu.reminded_overdue = today
            sent["overdue"] += 1
    return sent


def send_all_reminders() -> dict[str, int]:
    with session_scope() as session:
        return send_reminders(session)


# ---------------------------------------------------------------------- counts (daily log, reports)
def counts(session: Session, *, centre_id: int, since: datetime, until: datetime) -> dict[str, Any]:
    """What happened in ``[since, until)``: missed callers called back (first attempt that reached the phone
    system in the window), reached (callbacks ending "reached" in it), the median minutes from the missed
    call to that first callback, and the out-of-hours callers who asked for a callback."""
    first = func.min(CallbackAttempt.started_at)
    rows = session.execute(
        select(CallbackItem.id, CallbackItem.missed_at, first).join(CallbackAttempt, CallbackAttempt.item_id == CallbackItem.id)
        .where(CallbackItem.centre_id == centre_id, CallbackAttempt.status.in_(("placed", "done")))
        .group_by(CallbackItem.id, CallbackItem.missed_at).having(first >= since, first < until)).all()
    waits = [(_aware(t) - _aware(missed)).total_seconds() / 60 for _, missed, t in rows]
    reached = session.scalar(select(func.count()).select_from(CallbackItem).where(
        CallbackItem.centre_id == centre_id, CallbackItem.close_reason == "reached",
        CallbackItem.closed_at >= since, CallbackItem.closed_at < until))
    requests = session.scalar(select(func.count()).select_from(Call).where(
        Call.centre_id == centre_id, Call.received_at >= since, Call.received_at < until,
        Call.facts["callback_requested"].as_string().is_not(None)))
    return {"called_back": len(rows), "reached": int(reached or 0),
            "median_minutes_to_callback": round(statistics.median(waits), 1) if waits else None,
            "callback_requests": int(requests or 0)}


# ---------------------------------------------------------------------- retention
def retain(*, now: datetime, notes_cutoff: datetime | None, numbers_cutoff: datetime | None,
           dry_run: bool) -> int:
    """Ended items and their attempts, and do-not-call marks, older than ``numbers_cutoff`` go (they hold
    number hashes); a do-not-call mark stays while that number has called within the period."""
    if numbers_cutoff is None:
        return 0
    with session_scope() as session:
        ended = select(CallbackItem.id).where(CallbackItem.status.not_in(OPEN), CallbackItem.missed_at < numbers_cutoff)
        ids = list(session.scalars(ended))
        recent = exists().where(Call.number_hash == DoNotCallBack.number_hash, Call.received_at >= numbers_cutoff)
        marks = list(session.scalars(select(DoNotCallBack.id).where(DoNotCallBack.created_at < numbers_cutoff, ~recent)))
        if not dry_run:
            for i in range(0, len(ids), _CHUNK):
                session.execute(delete(CallbackAttempt).where(CallbackAttempt.item_id.in_(ids[i:i + _CHUNK])))
                session.execute(delete(CallbackItem).where(CallbackItem.id.in_(ids[i:i + _CHUNK])))
            if marks:
                session.execute(delete(DoNotCallBack).where(DoNotCallBack.id.in_(marks)))
        return len(ids) + len(marks)
