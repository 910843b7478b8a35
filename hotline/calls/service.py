"""Reading calls back, and the references counsellors give callers.

Everything that leaves through here shows caller numbers masked; the full number is never
part of a listing or an export.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from hotline.calls.models import CALL_STATUSES, Call, CallRecord
from hotline.centres.models import Centre, Line

EXPORT_FIELDS = (
    "id", "provider", "provider_key", "centre", "line", "unrouted", "queue", "caller_id_status",
    "caller_masked", "received_at", "queued_at", "answered_at", "ended_at", "queue_wait_seconds",
    "talk_seconds", "status", "answered_by", "counsellor_id", "end_reason", "callback", "parts",
)


@dataclass(frozen=True)
class CallFilter:
    since: datetime | None = None
    until: datetime | None = None
    statuses: Sequence[str] = ()
    line_id: int | None = None
    centre_ids: Sequence[int] | None = None  # None: every centre (administrators, exports)
    with_overflow: bool = False  # also the calls that overflowed to these centres from another's line

    def __post_init__(self) -> None:
        unknown = [s for s in self.statuses if s not in CALL_STATUSES]
        if unknown:
            raise ValueError(f"unknown status {', '.join(unknown)}; use one of {', '.join(CALL_STATUSES)}")
        if self.since and self.until and self.since > self.until:
            raise ValueError("the start of the range is after its end")


def day_start(d: date, tz: str = "Asia/Ho_Chi_Minh") -> datetime:
    """Local midnight of ``d`` in ``tz``, as UTC: date ranges are the centre's days."""
    return datetime.combine(d, time(0), ZoneInfo(tz)).astimezone(timezone.utc)


def date_range(since: date | None, until: date | None, tz: str = "Asia/Ho_Chi_Minh") -> tuple[datetime | None, datetime | None]:
    """Inclusive local dates → [start, end) in UTC."""
    return (day_start(since, tz) if since else None,
            day_start(until + timedelta(days=1), tz) if until else None)


def _query(flt: CallFilter) -> Select[Any]:
    q = select(Call)
    if flt.since:
        q = q.where(Call.received_at >= flt.since)
    if flt.until:
        q = q.where(Call.received_at < flt.until)
    if flt.statuses:
        q = q.where(Call.status.in_(list(flt.statuses)))
    if flt.line_id is not None:
        q = q.where(Call.line_id == flt.line_id)
    if flt.centre_ids is not None:
        if flt.with_overflow:
            q = q.where(or_(Call.centre_id.in_(list(flt.centre_ids)), Call.overflow_centre_id.in_(list(flt.centre_ids))))
        else:
            q = q.where(Call.centre_id.in_(list(flt.centre_ids)))
    return q


def list_calls(session: Session, *, flt: CallFilter, limit: int = 100, offset: int = 0) -> list[Call]:
    q = _query(flt).order_by(Call.received_at.desc(), Call.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(q))


def iter_calls(session: Session, *, flt: CallFilter, chunk: int = 1000) -> Iterator[Call]:
    """Every matching call, oldest first, in chunks (exports of a whole year stay in memory bounds)."""
    last_id = 0
    while True:
        rows: list[Call] = list(session.scalars(_query(flt).where(Call.id > last_id).order_by(Call.id).limit(chunk)))
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id
        session.expunge_all()


def _labels(session: Session) -> tuple[dict[int, str], dict[int, str]]:
    centres = dict(session.execute(select(Centre.id, Centre.code)).all())
    lines = dict(session.execute(select(Line.id, Line.identifier)).all())
    return centres, lines


def to_dict(call: Call, centres: dict[int, str], lines: dict[int, str]) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {
        "id": call.id, "provider": call.provider, "provider_key": call.provider_key,
        "centre": centres.get(call.centre_id), "line": lines.get(call.line_id) if call.line_id else None,
        "unrouted": call.unrouted, "queue": call.queue, "caller_id_status": call.caller_id_status,
        "caller_masked": call.caller_masked, "received_at": iso(call.received_at),
        "queued_at": iso(call.queued_at), "answered_at": iso(call.answered_at), "ended_at": iso(call.ended_at),
        "queue_wait_seconds": call.queue_wait_seconds, "talk_seconds": call.talk_seconds,
        "status": call.status, "answered_by": call.answered_by, "counsellor_id": call.counsellor_id,
        "end_reason": call.end_reason,
    }


def call_dicts(session: Session, calls: Sequence[Call]) -> list[dict[str, Any]]:
    centres, lines = _labels(session)
    return [to_dict(c, centres, lines) for c in calls]


def parts_of(session: Session, call_id: int) -> list[dict[str, Any]]:
    """Each counsellor's (or outside party's) part of a call, in order: who, when, talk time."""
    from hotline.auth.models import User
    from hotline.calls.models import CallPart

    rows = session.execute(
        select(CallPart, User.username, User.display_name).outerjoin(User, User.id == CallPart.counsellor_id)
        .where(CallPart.call_id == call_id).order_by(CallPart.started_at, CallPart.id)).all()
    merged: list[dict[str, Any]] = []
    for p, username, display in rows:
        last = merged[-1] if merged else None
        if (last is not None and last["agent"] == p.agent and last["ended"] is not None and p.started_at is not None
                and (p.started_at - last["ended"]).total_seconds() <= 1.0):
            # the same person on a new channel at once (Asterisk optimised a Local channel away)
            last["ended"] = max(last["ended"], p.ended_at) if p.ended_at else None
        else:
            merged.append({"agent": p.agent, "counsellor_id": p.counsellor_id, "counsellor": username,
                           "name": display or username or "", "started": p.started_at, "ended": p.ended_at})
    out = []
    for m in merged:
        started, ended = m.pop("started"), m.pop("ended")
        m["started_at"] = started.isoformat() if started else None
        m["ended_at"] = ended.isoformat() if ended else None
        m["talk_seconds"] = round((ended - started).total_seconds()) if started and ended else None
        out.append(m)
    return out


def parts_text_by_call(session: Session, call_ids: list[int]) -> dict[int, str]:
    """"tvv1 5s; tvv2 7s" for each call with more than one part (transfers, conferences)."""
    from sqlalchemy import func

    from hotline.calls.models import CallPart

    several = session.scalars(select(CallPart.call_id).where(CallPart.call_id.in_(call_ids))
                              .group_by(CallPart.call_id).having(func.count() > 1)).all() if call_ids else []
    out = {}
    for call_id in several:
        parts = parts_of(session, call_id)
        if len(parts) > 1:
            out[call_id] = _parts_text(parts)
    return out


def _parts_text(parts: list[dict[str, Any]]) -> str:
    return "; ".join(f"{p['counsellor'] or p['agent']} {p['talk_seconds'] if p['talk_seconds'] is not None else '?'}s"
                     for p in parts)


def export(session: Session, *, flt: CallFilter, fmt: str, out: TextIO) -> int:
    """Write calls as JSON lines or CSV; returns how many."""
    if fmt not in {"jsonl", "csv"}:
        raise ValueError("format must be jsonl or csv")
    centres, lines = _labels(session)
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    count = 0
    for call in iter_calls(session, flt=flt):
        row = to_dict(call, centres, lines)
        parts = parts_of(session, call.id)
        row["callback"] = bool((call.facts or {}).get("callback"))
        row["parts"] = _parts_text(parts) if writer else [
            {k: p[k] for k in ("agent", "counsellor", "talk_seconds", "started_at", "ended_at")} for p in parts]
        if writer:
            writer.writerow(row)
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


# ---------------------------------------------------------------------- references
REFERENCE_KINDS = ("directory", "legal")


def add_reference(session: Session, *, record: CallRecord, kind: str, ref_id: str, label: str,
                  given_by: int | None) -> dict[str, Any]:
    """Note that an address or an article was given to the caller (once per item)."""
    if kind not in REFERENCE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(REFERENCE_KINDS)}")
    if not ref_id or not label.strip():
        raise ValueError("a reference needs an id and a label")
    refs: list[dict[str, Any]] = list(record.references_given or [])
    for ref in refs:
        if ref["kind"] == kind and str(ref["ref_id"]) == str(ref_id):
            return ref
    ref = {"kind": kind, "ref_id": str(ref_id), "label": label.strip()[:500],
           "given_at": datetime.now(timezone.utc).isoformat(), "given_by": given_by}
    refs.append(ref)
    record.references_given = refs
    session.flush()
    return ref
