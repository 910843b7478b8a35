"""The daily call log: build a centre's summary of one local day, review it, comment, sign it off.

A **day** is a calendar day in the centre's own timezone: from local midnight to the next local
midnight (23 or 25 hours on daylight-saving switch days).  A call belongs to the day it was
*received*, even when it was still open at midnight (those are flagged ``open_at_midnight``); a
record without a telephony call (walk-in, personal phone, 111 transfer) belongs to the day it was
created.  Each call is one ``Call`` row (merged legs are one call) with at most one record, so no
call is counted twice.

What is counted where:

* telephony totals (received, answered, missed, abandoned, …) and waiting / talk times count every
  call: they carry nothing about the caller;
* **missed** and **abandoned** are callers who reached the line while it was open and were not
  answered, each counted once, by the call's status (a queue timeout is missed: the caller did not
  give up, ``hotline.ingest.service.caller_gave_up``); a call that reached a closed line (``out_of_hours``: it heard the closed message) counts
  only on its own line, ``out_of_hours`` (its key presses: out-of-hours callback requests), never as
  missed: nobody could have answered it.  The periodic reports and the wallboard count the same way;
* everything taken from what the counsellor recorded (issues, level, sex, age group, province,
  caller role, outcome, non-counselling, referrals, per-counsellor records) counts only
  **completed records whose caller consented to statistics**; the others are listed in the day's
  log but left out of every count (``records.excluded_no_consent``);
* free-text notes never enter a summary, so they can never reach an export.

States of a day: ``not_built``, ``built``, ``signed_off``, ``changed_after_sign_off`` (a record of
the day was changed after the sign-off, which needs a reason and is audited by
``hotline.records``, or the day was rebuilt into something other than what was signed).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select, union_all, update
from sqlalchemy.orm import Session, defer

from daily_log.models import DailyLog, DailyLogComment, DailyLogFailure
from hotline import errors
from hotline.auth.models import User
from hotline.calls.models import OPEN_STATUSES, Call, CallRecord, CallRecordIssue
from hotline.centres.models import Centre
from hotline.db import utcnow
from hotline.errors import Actor, Invalid
from hotline.i18n import N_, Text
from hotline.records.models import CallRecordRevision
from hotline.taxonomy import non_counselling_codes

SUMMARY_VERSION = 1
STATES = ("not_built", "provisional", "built", "signed_off", "changed_after_sign_off")
VIEW_ROLES = ("supervisor", "administrator")
COMMENT_MAX = 4000
CHUNK = 900  # ids per IN (...) list


class DayRefused(Invalid):
    """A day that cannot be built or signed off; raised with a ``Text`` that says why and what to do
    (views show ``error_text(exc, lang)``)."""


class NotAllowed(errors.NotAllowed):
    pass


class NotFound(errors.NotFound):
    default = N_("No such centre, or you may not see its daily log.")


# ---------------------------------------------------------------------- days and timezones
def zone(centre: Centre) -> ZoneInfo:
    return ZoneInfo(centre.timezone or "Asia/Ho_Chi_Minh")


def day_window(centre: Centre, day: date) -> tuple[datetime, datetime]:
    """[start, end) of the local day in UTC; 23 or 25 hours long on daylight-saving switch days."""
    tz = zone(centre)
    start = datetime.combine(day, time.min, tzinfo=tz).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(timezone.utc)
    return start, end


def local_today(centre: Centre, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(zone(centre)).date()


def first_day(centre: Centre) -> date:
    """The centre's first day: the local date it was created."""
    created = centre.created_at or utcnow()
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return created.astimezone(zone(centre)).date()


def fmt_day(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def parse_day(text: str) -> date:
    value = (text or "").strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise DayRefused(Text("'%(value)s' is not a date (dd/mm/yyyy or yyyy-mm-dd).", value=value))


def check_buildable(centre: Centre, day: date, now: datetime | None = None) -> None:
    """Refuse a day that has not ended yet or that is before the centre existed."""
    today = local_today(centre, now)
    if day > today:
        raise DayRefused(Text("%(day)s is in the future (today at %(centre)s is %(today)s).",
                              day=fmt_day(day), centre=centre.code, today=fmt_day(today)))
    if day == today:
        _, end = day_window(centre, day)
        local_end = end.astimezone(zone(centre)).strftime("%H:%M %d/%m/%Y")
        raise DayRefused(Text("%(day)s has not ended yet; it can be built after %(end)s (%(zone)s).",
                              day=fmt_day(day), end=local_end, zone=centre.timezone))
    first = first_day(centre)
    if day < first:
        raise DayRefused(Text("Centre %(centre)s exists since %(first)s; %(day)s is before that.",
                              centre=centre.code, first=fmt_day(first), day=fmt_day(day)))


# ---------------------------------------------------------------------- figures
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``)."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return round(data[lo] + (data[hi] - data[lo]) * (pos - lo), 1)


def spread(values: Sequence[float]) -> dict[str, Any]:
    return {"n": len(values), "median": percentile(values, 0.5), "p90": percentile(values, 0.9)}


def _counter(values: Iterable[Any]) -> dict[str, int]:
    counts = Counter("" if v is None else str(v) for v in values)
    return {k or "unknown": v for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def referral_states(session: Session, record_ids: Sequence[int]) -> tuple[bool, dict[int, list[dict[str, Any]]]]:
    """Referrals of these records through ``referral.service``; the flag says they could be read (summaries
    built before the referral domain existed keep ``available: false``)."""
    from referral.service import states_for_records

    out: dict[int, list[dict[str, Any]]] = {}
    for chunk in _chunks(list(record_ids)):
        out.update(states_for_records(session, record_ids=list(chunk)))
    return True, out


def referral_counts(session: Session, *, centre_id: int, since: datetime,
                    until: datetime) -> tuple[bool, dict[str, int]]:
    """Referrals created in ``[since, until)`` by their state now."""
    from referral.service import counts_by_state

    return True, counts_by_state(session, centre_id=centre_id, since=since, until=until)


def callback_counts(session: Session, *, centre_id: int, since: datetime, until: datetime) -> dict[str, Any]:
    """Missed callers called back, reached, the median minutes to the callback, out-of-hours callback
    requests, in ``[since, until)`` (``callbacks.service``)."""
    from callbacks.service import counts

    return counts(session, centre_id=centre_id, since=since, until=until)


def referral_state_label(state: str, lang: str) -> str:
    from referral.service import state_labels

    return state_labels(lang).get(state, state)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


_REC_COLS = (CallRecord.id, CallRecord.state, CallRecord.counsellor_id, CallRecord.channel,
             CallRecord.caller_role, CallRecord.caller_sex, CallRecord.caller_age_group,
             CallRecord.province_code, CallRecord.consent_statistics, CallRecord.primary_issue,
             CallRecord.service_level, CallRecord.outcome, CallRecord.follow_up_needed,
             CallRecord.follow_up_date, CallRecord.risk, CallRecord.created_at)
_TOTALS = ("received", "answered", "missed", "abandoned", "failed", "unknown_outcome", "open_at_midnight",
           "non_counselling", "other_channels", "records", "records_counted", "records_draft", "excluded_no_consent",
           # lines' routing (#17): blocked callers, overflow between centres, out of hours
           # (out-of-hours callback requests: summary["callbacks"]["callback_requests"], from callbacks)
           "blocked", "blocked_to_supervisor", "overflow_out", "overflow_in", "out_of_hours")


def out_of_hours_call() -> ColumnElement[bool]:
    """SQL: the call reached a closed line (``_closed`` of the ingestor sets both; never NULL)."""
    return or_(Call.facts["out_of_hours"].as_string().is_not(None),
               func.coalesce(Call.end_reason, "") == "out_of_hours")


def is_out_of_hours(facts: dict[str, Any] | None, end_reason: str | None) -> bool:
    """The same rule for a row already read."""
    return bool((facts or {}).get("out_of_hours")) or end_reason == "out_of_hours"


def summarise(session: Session, *, centre: Centre, day: date) -> dict[str, Any]:
    """The summary of one local day (JSON-ready; codes, counts and masked numbers only)."""
    tz = zone(centre)
    start, end = day_window(centre, day)
    call_rows, walkin_rows = _day_rows(session, centre, start, end)
    record_ids = [r.id for r in call_rows if r.id is not None] + [r.id for r in walkin_rows]
    issues = _day_issues(session, centre, start, end)
    available, referrals = referral_states(session, record_ids)

    def part(r: Any) -> dict[str, Any]:
        return _record_part(r, issues, referrals)

    totals: Counter[str] = Counter()
    waits: list[float] = []
    talks: list[float] = []
    entries = [_call_entry(r, tz, end, totals, waits, talks, part(r)) for r in call_rows]
    for r in walkin_rows:
        totals["other_channels"] += 1
        entries.append(_walkin_entry(r, tz, part(r)))
    rows_by_record = {r.id: r for r in [*call_rows, *walkin_rows] if r.id is not None}
    counted = _count_records(entries, rows_by_record, totals)
    overflow_in = routing_counts(session, centre=centre, start=start, end=end, call_rows=call_rows, totals=totals)

    users = _user_names(session, {e["counsellor_id"] for e in entries if e["counsellor_id"]})
    for e in entries:
        e["counsellor"] = users.get(e["counsellor_id"], "") if e["counsellor_id"] else ""
    ref_counted = [ref for c in counted for ref in c["entry"]["referrals"]]
    per_counsellor = _per_counsellor(entries, counted, users)
    follow_rows = _follow_ups_due(session, centre, day)
    users.update(_user_names(session, {f.counsellor_id for f in follow_rows if f.counsellor_id} - set(users)))

    rows = [c["row"] for c in counted]
    summary = {
        "version": SUMMARY_VERSION,
        "centre": {"id": centre.id, "code": centre.code, "name": centre.name, "timezone": centre.timezone},
        "date": day.isoformat(),
        "window": {"start": _iso(start), "end": _iso(end), "hours": round((end - start).total_seconds() / 3600, 2)},
        "totals": {k: totals.get(k, 0) for k in _TOTALS},
        "by_issue": _counter(code for c in counted for code in dict.fromkeys(c["entry"]["issues"])),
        "by_primary_issue": _counter(r.primary_issue for r in rows),
        "by_level": _counter(r.service_level for r in rows),
        "by_sex": _counter(r.caller_sex for r in rows),
        "by_age_group": _counter(r.caller_age_group for r in rows),
        "by_province": _counter(r.province_code for r in rows),
        "by_caller_role": _counter(r.caller_role for r in rows),
        "by_outcome": _counter(r.outcome for r in rows),
        "referrals": {"available": available, "made": len(ref_counted),
                      "by_state": _counter(ref.get("state") for ref in ref_counted)},
        "follow_ups_due": [{"record_id": f.id, "due": _iso(f.follow_up_date), "primary_issue": f.primary_issue,
                            "risk": f.risk, "counsellor": users.get(f.counsellor_id, ""),
                            "consent_callback": bool(f.consent_callback)} for f in follow_rows],
        "waiting_seconds": spread(waits),
        "talk_seconds": spread(talks),
        "per_counsellor": per_counsellor,
        "calls": entries,
        "overflow_in_calls": overflow_in,
        "record_ids": sorted(record_ids),
    }
    from hotline.calls.service import parts_text_by_call
    from hotline.ingest.gaps import gaps_between

    parts = parts_text_by_call(session, [e["call_id"] for e in entries if e.get("call_id")])
    for e in entries:
        if e.get("call_id") in parts:
            e["parts"] = parts[e["call_id"]]  # each counsellor's part of a transferred call
    # listener outages in the day: telephony counts may have a hole (issue #16)
    summary["telephony_gaps"] = gaps_between(session, start, end)
    summary["callbacks"] = callback_counts(session, centre_id=centre.id, since=start, until=end)
    return summary


def _day_rows(session: Session, centre: Centre, start: datetime, end: datetime) -> tuple[list[Any], list[Any]]:
    """The day's calls (with their record, if any) and its records made without a call."""
    call_rows = session.execute(
        select(Call.id.label("call_id"), Call.received_at, Call.answered_at, Call.ended_at, Call.status,
               Call.abandoned, Call.queue_wait_seconds, Call.talk_seconds, Call.caller_masked,
               Call.caller_id_status, Call.counsellor_id.label("call_counsellor"), Call.overflow_centre_id,
               Call.facts, Call.end_reason, *_REC_COLS)
        .outerjoin(CallRecord, CallRecord.call_id == Call.id)
        .where(Call.centre_id == centre.id, Call.received_at >= start, Call.received_at < end)
        .order_by(Call.received_at, Call.id)
    ).all()
    walkin_rows = session.execute(
        select(*_REC_COLS).where(CallRecord.centre_id == centre.id, CallRecord.call_id.is_(None),
                                 CallRecord.created_at >= start, CallRecord.created_at < end)
        .order_by(CallRecord.created_at, CallRecord.id)
    ).all()
    return list(call_rows), list(walkin_rows)


def routing_counts(session: Session, *, centre: Centre, start: datetime, end: datetime, call_rows: Sequence[Any],
                   totals: Counter[str]) -> list[dict[str, Any]]:
    """Blocked calls, overflow out (this centre's lines) and in (another centre's line, answered
    here) and out-of-hours calls, counted into ``totals``; returns the
    calls that overflowed in (they count in both centres' logs, marked as overflow)."""
    from blocking import service as blocking

    totals.update(blocking.blocked_counts(session, centre_id=centre.id, since=start, until=end))
    for r in call_rows:
        totals["overflow_out"] += 1 if r.overflow_centre_id is not None else 0
        totals["out_of_hours"] += 1 if is_out_of_hours(r.facts, r.end_reason) else 0
    tz = zone(centre)
    came = session.execute(
        select(Call.id, Call.received_at, Call.status, Call.answered_at, Call.queue_wait_seconds, Call.talk_seconds,
               Call.counsellor_id, Centre.code)
        .join(Centre, Centre.id == Call.centre_id)
        .where(Call.overflow_centre_id == centre.id, Call.received_at >= start, Call.received_at < end)
        .order_by(Call.received_at, Call.id)).all()
    totals["overflow_in"] += len(came)
    return [{"call_id": c.id, "time": c.received_at.astimezone(tz).strftime("%H:%M"), "status": c.status,
             "overflow_from": c.code, "wait_seconds": c.queue_wait_seconds,
             "talk_seconds": c.talk_seconds if c.answered_at else None, "counsellor_id": c.counsellor_id}
            for c in came]


def _day_issues(session: Session, centre: Centre, start: datetime, end: datetime) -> dict[int, list[str]]:
    issues: dict[int, list[str]] = defaultdict(list)
    day_ids = day_record_ids(centre, start, end).subquery()
    for rid, code in session.execute(select(CallRecordIssue.record_id, CallRecordIssue.code)
                                     .join(day_ids, day_ids.c.id == CallRecordIssue.record_id)
                                     .order_by(CallRecordIssue.id)):
        issues[rid].append(code)
    return issues


def _record_part(r: Any, issues: dict[int, list[str]], referrals: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """The record's side of a day entry (empty when the call has no record)."""
    if r.id is None:
        return {"record_id": None, "record_state": None, "issues": [], "primary_issue": None, "level": None,
                "outcome": None, "statistics": False, "follow_up_date": None, "referrals": []}
    refs = [{k: _iso(v) for k, v in ref.items()} for ref in referrals.get(r.id, [])]
    return {"record_id": r.id, "record_state": r.state, "issues": issues.get(r.id, []),
            "primary_issue": r.primary_issue, "level": r.service_level, "outcome": r.outcome,
            "statistics": bool(r.consent_statistics), "follow_up_date": _iso(r.follow_up_date),
            "referrals": refs}


def _call_entry(r: Any, tz: ZoneInfo, end: datetime, totals: Counter[str], waits: list[float],
                talks: list[float], record: dict[str, Any]) -> dict[str, Any]:
    """One call of the day, counted into ``totals``, ``waits`` and ``talks``."""
    totals["received"] += 1
    if r.answered_at is not None:
        totals["answered"] += 1
    status = r.status
    closed = is_out_of_hours(r.facts, r.end_reason)  # counted as out_of_hours (routing_counts), not as lost
    if status == "missed" and not closed:
        totals["missed"] += 1
    if status == "abandoned" and not closed:  # a queue timeout (QueueCallerAbandon too) is missed, not also this
        totals["abandoned"] += 1
    if status in ("failed", "unknown_outcome"):
        totals[status] += 1
    open_at_midnight = status in OPEN_STATUSES or (r.ended_at is not None and r.ended_at >= end)
    if open_at_midnight:
        totals["open_at_midnight"] += 1
    if r.queue_wait_seconds is not None:
        waits.append(r.queue_wait_seconds)
    if r.talk_seconds is not None and r.answered_at is not None:
        talks.append(r.talk_seconds)
    return {"call_id": r.call_id, "time": r.received_at.astimezone(tz).strftime("%H:%M"),
            "received_at": _iso(r.received_at), "channel": "telephony",
            "caller": r.caller_masked or "", "caller_id_status": r.caller_id_status, "status": status,
            "wait_seconds": r.queue_wait_seconds, "talk_seconds": r.talk_seconds if r.answered_at else None,
            "open_at_midnight": open_at_midnight,
            "overflow": "out" if r.overflow_centre_id is not None else None,
            "out_of_hours": closed,
            "counsellor_id": r.counsellor_id or r.call_counsellor,
            **record}


def _walkin_entry(r: Any, tz: ZoneInfo, record: dict[str, Any]) -> dict[str, Any]:
    """A record made without a call (walk-in, letter, chat...)."""
    return {"call_id": None, "time": r.created_at.astimezone(tz).strftime("%H:%M"),
            "received_at": _iso(r.created_at), "channel": r.channel, "caller": "",
            "caller_id_status": None, "status": None, "wait_seconds": None, "talk_seconds": None,
            "open_at_midnight": False, "counsellor_id": r.counsellor_id, **record}


def _count_records(entries: list[dict[str, Any]], rows_by_record: dict[int, Any],
                   totals: Counter[str]) -> list[dict[str, Any]]:
    """Counts the records into ``totals``; returns those in the statistics (completed, with consent)."""
    nc_codes = non_counselling_codes()
    counted: list[dict[str, Any]] = []
    for e in entries:
        rid = e["record_id"]
        if rid is None:
            continue
        totals["records"] += 1
        if e["record_state"] != "completed":
            totals["records_draft"] += 1
            continue
        if not e["statistics"]:
            totals["excluded_no_consent"] += 1
            continue
        totals["records_counted"] += 1
        r = rows_by_record[rid]
        counted.append({"entry": e, "row": r})
        if r.primary_issue in nc_codes:
            totals["non_counselling"] += 1
    return counted


def _per_counsellor(entries: list[dict[str, Any]], counted: list[dict[str, Any]],
                    users: dict[Any, str]) -> list[dict[str, Any]]:
    per: dict[Any, dict[str, Any]] = {}
    for e in entries:
        cid = e["counsellor_id"]
        if cid is None:
            continue
        p = per.setdefault(cid, {"counsellor_id": cid, "name": users.get(cid, ""), "calls_answered": 0,
                                 "records_counted": 0, "talk": [], "by_level": Counter()})
        if e["talk_seconds"] is not None:
            p["calls_answered"] += 1
            p["talk"].append(e["talk_seconds"])
    for c in counted:
        cid = c["entry"]["counsellor_id"]
        if cid in per:
            per[cid]["records_counted"] += 1
            per[cid]["by_level"][str(c["row"].service_level)] += 1
    return [{"counsellor_id": p["counsellor_id"], "name": p["name"], "calls_answered": p["calls_answered"],
             "records_counted": p["records_counted"], "talk_seconds_total": int(sum(p["talk"])),
             "talk": spread(p["talk"]), "by_level": dict(sorted(p["by_level"].items()))}
            for p in sorted(per.values(), key=lambda p: (p["name"], p["counsellor_id"]))]


def _follow_ups_due(session: Session, centre: Centre, day: date) -> list[Any]:
    return list(session.execute(
        select(CallRecord.id, CallRecord.follow_up_date, CallRecord.primary_issue, CallRecord.counsellor_id,
               CallRecord.risk, CallRecord.consent_callback)
        .where(CallRecord.centre_id == centre.id, CallRecord.follow_up_needed.is_(True),
               CallRecord.follow_up_date == day)
        .order_by(CallRecord.id)
    ).all())


def day_record_ids(centre: Centre, start: datetime, end: datetime) -> Any:
    """SELECT of the ids of a day's records: by the call's time, or by creation without a call."""
    with_call = (select(CallRecord.id.label("id")).join(Call, Call.id == CallRecord.call_id)
                 .where(Call.centre_id == centre.id, Call.received_at >= start, Call.received_at < end))
    without = select(CallRecord.id.label("id")).where(CallRecord.centre_id == centre.id, CallRecord.call_id.is_(None),
                                                      CallRecord.created_at >= start, CallRecord.created_at < end)
    return union_all(with_call, without)


def _user_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {u.id: (u.display_name or u.username)
            for u in session.execute(select(User.id, User.display_name, User.username).where(User.id.in_(ids)))}


def digest(summary: dict[str, Any]) -> str:
    body = {k: v for k, v in summary.items() if k not in {"built_at"}}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------- building
def get_centre(session: Session, *, code: str | None = None, centre_id: int | None = None) -> Centre:
    if centre_id is not None:
        centre = session.get(Centre, centre_id)
        if centre is None:
            raise LookupError(f"no centre with id {centre_id}")
        return centre
    centre = session.scalar(select(Centre).where(Centre.code == (code or "")))
    if centre is None:
        known = ", ".join(session.scalars(select(Centre.code).order_by(Centre.code)).all()) or "none yet"
        raise LookupError(Text("No centre with code '%(code)s' (known: %(known)s).", code=code, known=known))
    return centre


def build_day(session: Session, *, centre: Centre, day: date, now: datetime | None = None,
              by: str = "worker") -> DailyLog:
    """Build (or rebuild: the summary is replaced) one day; resolves its recorded failures."""
    check_buildable(centre, day, now)
    summary = summarise(session, centre=centre, day=day)
    at = now or utcnow()
    # the previous summary is replaced without being read back (it can be large)
    log = session.scalar(select(DailyLog).options(defer(DailyLog.summary))
                         .where(DailyLog.centre_id == centre.id, DailyLog.day == day))
    first_build = log is None
    was_as_signed = log is not None and log.signed_off_at is not None and log.signed_digest == log.digest
    if log is None:
        log = DailyLog(centre_id=centre.id, day=day, summary=summary, built_at=at, build_count=1, built_by=by[:128])
        session.add(log)
    else:
        log.summary = summary
        log.built_at = at
        log.build_count = (log.build_count or 0) + 1
        log.built_by = by[:128]
    log.digest = digest(summary)
    log.received = summary["totals"]["received"]
    if first_build:
        _ask_supervisors(session, centre, day, kind="daily_log.ready",
                         title=Text("The daily call log of %(day)s is built: review it and sign it off.",
                                    day=fmt_day(day)))
    elif was_as_signed and log.digest != log.signed_digest:
        _ask_supervisors(session, centre, day, kind="daily_log.changed",
                         title=Text("The daily call log of %(day)s changed after it was signed off: review it "
                                    "and sign it off again.", day=fmt_day(day)))
    session.execute(update(DailyLogFailure)
                    .where(DailyLogFailure.centre_id == centre.id, DailyLogFailure.day == day,
                           DailyLogFailure.resolved_at.is_(None))
                    .values(resolved_at=at))
    session.flush()
    return log


def _ask_supervisors(session: Session, centre: Centre, day: date, *, kind: str, title: Text) -> None:
    """A sign-off request in the inbox of the centre's supervisors (``hotline.notifications``)."""
    from hotline.notifications import service as notifications

    notifications.notify(session, centre_id=centre.id, roles=("supervisor",), kind=kind, title=title,
                         link=_day_link(centre, day))


def _day_link(centre: Centre, day: date) -> str:
    return f"/daily-log/{quote(centre.code, safe='')}/{day.isoformat()}"


def record_failure(session: Session, *, centre_id: int, day: date, reason: str, now: datetime | None = None) -> DailyLogFailure:
    at = now or utcnow()
    row = session.scalar(select(DailyLogFailure).where(DailyLogFailure.centre_id == centre_id,
                                                       DailyLogFailure.day == day,
                                                       DailyLogFailure.resolved_at.is_(None)))
    if row is None:
        row = DailyLogFailure(centre_id=centre_id, day=day, attempts=1, reason=reason[:4000], first_at=at, last_at=at)
        session.add(row)
    else:
        row.attempts += 1
        row.reason = reason[:4000]
        row.last_at = at
    session.flush()
    return row


def open_failures(session: Session, *, centre_id: int | None = None) -> list[dict[str, Any]]:
    q = (select(DailyLogFailure, Centre.code).join(Centre, Centre.id == DailyLogFailure.centre_id)
         .where(DailyLogFailure.resolved_at.is_(None)))
    if centre_id is not None:
        q = q.where(DailyLogFailure.centre_id == centre_id)
    return [{"id": f.id, "centre_id": f.centre_id, "centre": code, "day": f.day, "attempts": f.attempts,
             "reason": f.reason, "first_at": f.first_at, "last_at": f.last_at}
            for f, code in session.execute(q.order_by(DailyLogFailure.last_at.desc()))]


def missing_days(session: Session, *, centre: Centre, now: datetime | None = None,
                 skip_failed: bool = False) -> list[date]:
    """Days since the centre existed, already ended, with no summary (oldest first)."""
    last = local_today(centre, now) - timedelta(days=1)
    first = first_day(centre)
    if last < first:
        return []
    built = set(session.scalars(select(DailyLog.day).where(DailyLog.centre_id == centre.id, DailyLog.day >= first)))
    if skip_failed:
        built |= set(session.scalars(select(DailyLogFailure.day).where(DailyLogFailure.centre_id == centre.id,
                                                                      DailyLogFailure.resolved_at.is_(None))))
    out = []
    d = first
    while d <= last:
        if d not in built:
            out.append(d)
        d += timedelta(days=1)
    return out


# ---------------------------------------------------------------------- access
def can_view_centre(actor: Actor, centre_id: int) -> bool:
    if actor.role == "administrator":
        return True
    return actor.role == "supervisor" and actor.centre_id == centre_id


def visible_centres(session: Session, *, actor: Actor) -> list[Centre]:
    if actor.role == "administrator":
        return list(session.scalars(select(Centre).order_by(Centre.code)))
    if actor.role == "supervisor" and actor.centre_id is not None:
        centre = session.get(Centre, actor.centre_id)
        return [centre] if centre else []
    return []


def require_centre(session: Session, *, actor: Actor, code: str) -> Centre:
    """The centre if this actor may see its daily log; ``NotFound`` otherwise (existence not told)."""
    centre = session.scalar(select(Centre).where(Centre.code == code))
    if centre is None or not can_view_centre(actor, centre.id):
        raise NotFound(None, code)
    return centre


# ---------------------------------------------------------------------- state, review, sign-off
def get_log(session: Session, *, centre: Centre, day: date) -> DailyLog | None:
    return session.scalar(select(DailyLog).where(DailyLog.centre_id == centre.id, DailyLog.day == day))


def changes_after_sign_off(session: Session, *, log: DailyLog, limit: int | None = None) -> list[dict[str, Any]]:
    """Record changes made after the day was signed off (each with its reason)."""
    if log.signed_off_at is None:
        return []
    centre = session.get(Centre, log.centre_id)
    if centre is None:
        return []
    ids = day_record_ids(centre, *day_window(centre, log.day)).subquery()
    out: list[dict[str, Any]] = []
    q = (select(CallRecordRevision.record_id, CallRecordRevision.at, CallRecordRevision.user_id,
                CallRecordRevision.changes, CallRecordRevision.version)
         .join(ids, ids.c.id == CallRecordRevision.record_id)
         .where(CallRecordRevision.at > log.signed_off_at).order_by(CallRecordRevision.at))
    if limit:
        q = q.limit(limit)
    for r in session.execute(q).all():
        changes = dict(r.changes or {})
        reason = (changes.pop("lock_reason", None) or [None, ""])[1]
        out.append({"record_id": r.record_id, "at": r.at, "user_id": r.user_id, "version": r.version,
                    "fields": sorted(changes), "reason": reason})
    names = _user_names(session, {c["user_id"] for c in out if c["user_id"]})
    for c in out:
        c["by"] = names.get(c["user_id"], "")
    return sorted(out, key=lambda c: c["at"])


def state_of(session: Session, log: DailyLog | None) -> str:
    if log is None:
        return "not_built"
    if log.signed_off_at is None:
        return "built"
    current = log.digest or digest(log.summary)
    if log.signed_digest != current or changes_after_sign_off(session, log=log, limit=1):
        return "changed_after_sign_off"
    return "signed_off"


def is_stale(session: Session, *, centre: Centre, log: DailyLog) -> bool:
    """True when a record of the day changed, or appeared, after the summary was built."""
    ids = day_record_ids(centre, *day_window(centre, log.day)).subquery()
    current: set[int] = set(session.scalars(select(ids.c.id)))
    if current != set(log.summary.get("record_ids") or []):
        return True
    return session.scalar(select(CallRecord.id).join(ids, ids.c.id == CallRecord.id)
                          .where(CallRecord.updated_at > log.built_at).limit(1)) is not None


@dataclass
class DayRow:
    day: date
    state: str
    log: DailyLog | None
    failure: str | None = None


def list_days(session: Session, *, centre: Centre, until: date, days: int = 31,
              now: datetime | None = None) -> list[DayRow]:
    """The ``days`` days up to ``until`` (newest first, never before the centre nor after yesterday)."""
    last = min(until, local_today(centre, now) - timedelta(days=1))
    first = max(first_day(centre), last - timedelta(days=days - 1))
    if last < first:
        return []
    logs = {log.day: log for log in session.scalars(
        select(DailyLog).options(defer(DailyLog.summary))
        .where(DailyLog.centre_id == centre.id, DailyLog.day >= first, DailyLog.day <= last))}
    failures = {f.day: f.reason for f in session.scalars(
        select(DailyLogFailure).where(DailyLogFailure.centre_id == centre.id, DailyLogFailure.resolved_at.is_(None),
                                      DailyLogFailure.day >= first, DailyLogFailure.day <= last))}
    out = []
    d = last
    while d >= first:
        log = logs.get(d)
        out.append(DayRow(d, state_of(session, log), log, failures.get(d)))
        d -= timedelta(days=1)
    return out


def sign_off(session: Session, *, centre: Centre, day: date, actor: Actor, now: datetime | None = None) -> DailyLog:
    """Sign the day off and lock its records (a later change needs a reason)."""
    if not can_view_centre(actor, centre.id):
        raise NotAllowed(centre.code)
    log = get_log(session, centre=centre, day=day)
    if log is None:
        raise DayRefused(Text("%(day)s has not been built; build and review it before signing off.",
                              day=fmt_day(day)))
    if is_stale(session, centre=centre, log=log):
        raise DayRefused(Text("Records of %(day)s changed after it was built; rebuild it, review it, then sign off.",
                              day=fmt_day(day)))
    at = now or utcnow()
    log.signed_off_at = at
    log.signed_off_by = actor.id or None
    log.signed_digest = log.digest or digest(log.summary)
    ids = day_record_ids(centre, *day_window(centre, day))
    session.execute(update(CallRecord).where(CallRecord.id.in_(ids)).values(locked_at=at)
                    .execution_options(synchronize_session=False))
    from hotline.notifications import service as notifications

    notifications.settle(session, link=_day_link(centre, day), kinds=("daily_log.ready", "daily_log.changed"))
    session.flush()
    return log


def add_comment(session: Session, *, centre: Centre, day: date, actor: Actor, text: str) -> DailyLogComment:
    if not can_view_centre(actor, centre.id):
        raise NotAllowed(centre.code)
    body = (text or "").replace("\x00", "").strip()
    if not body:
        raise DayRefused(Text("The comment is empty; write something."))
    if len(body) > COMMENT_MAX:
        raise DayRefused(Text("The comment is %(length)d characters long, at most %(max)d.",
                              length=len(body), max=COMMENT_MAX))
    row = DailyLogComment(centre_id=centre.id, day=day, user_id=actor.id or None, at=utcnow(), text=body)
    session.add(row)
    session.flush()
    return row


def comments(session: Session, *, centre: Centre, day: date) -> list[dict[str, Any]]:
    rows = list(session.scalars(select(DailyLogComment).where(DailyLogComment.centre_id == centre.id,
                                                             DailyLogComment.day == day)
                                .order_by(DailyLogComment.at, DailyLogComment.id)))
    names = _user_names(session, {c.user_id for c in rows if c.user_id})
    return [{"id": c.id, "at": c.at, "by": names.get(c.user_id or 0, ""), "text": c.text} for c in rows]


def signer_name(session: Session, log: DailyLog | None) -> str:
    if log is None or not log.signed_off_by:
        return ""
    return _user_names(session, {log.signed_off_by}).get(log.signed_off_by, "")


def is_running(centre: Centre, day: date, now: datetime | None = None) -> bool:
    """True for the centre's current local day: it has no built log yet, only a provisional one."""
    return day == local_today(centre, now)


def provisional_summary(session: Session, *, centre: Centre, day: date,
                        now: datetime | None = None) -> dict[str, Any]:
    """Today's running log, figured now and never stored: marked provisional, with the moment it
    was figured in ``built_at`` (the built log replaces it after the centre's midnight)."""
    summary = summarise(session, centre=centre, day=day)
    return {**summary, "state": "provisional", "built_at": _iso(now or utcnow()), "build_count": 0,
            "built_by": None, "signed_off_at": None, "signed_off_by": None}


def public_summary(log: DailyLog, state: str, *, signed_by: str = "") -> dict[str, Any]:
    """The summary with its build and sign-off facts (for ``show --json`` and the API)."""
    return {**log.summary, "state": state, "built_at": _iso(log.built_at), "build_count": log.build_count,
            "built_by": log.built_by, "signed_off_at": _iso(log.signed_off_at), "signed_off_by": signed_by or None}


def active_centres(session: Session) -> list[Centre]:
    return list(session.scalars(select(Centre).where(Centre.active.is_(True)).order_by(Centre.id)))


__all__ = [
    "DayRefused", "NotAllowed", "STATES", "add_comment", "build_day", "changes_after_sign_off", "check_buildable",
    "comments", "day_window", "digest", "first_day", "get_centre", "get_log", "is_stale", "list_days",
    "is_out_of_hours", "local_today", "missing_days", "open_failures", "out_of_hours_call", "parse_day", "percentile",
    "public_summary", "record_failure",
    "sign_off", "state_of", "summarise", "visible_centres",
]
