"""Listener outages ("gaps"): times a telephony listener could not hear its PBX.

A call that began and ended inside a gap may be missing from the day's counts unless it was
recovered (``queue_log``).  Gaps are recorded with their start and end and shown on the wallboard,
the daily log and ``hotline check`` so a supervisor knows when the counts are incomplete.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hotline.calls.models import TelephonyGap

log = logging.getLogger(__name__)


def open_gap(source: str, at: datetime, reason: str) -> int | None:
    """Record that ``source`` stopped hearing its PBX at ``at``; None when the database is away."""
    from hotline.db import session_scope

    try:
        with session_scope() as s:
            gap = TelephonyGap(source=source[:128], started_at=at, recovery=reason[:255])
            s.add(gap)
            s.flush()
            return int(gap.id)
    except Exception as exc:  # noqa: BLE001 - recorded again when the listener reconnects
        log.warning("ingest.gap_not_recorded", extra={"source": source, "reason": type(exc).__name__})
        return None


def close_gaps(source: str, *, started: datetime | None, at: datetime, reason: str) -> list[tuple[int, datetime]]:
    """End every open gap of ``source`` at ``at`` (or record [started, at] when none was open):
    returns (id, start) of each gap closed."""
    from hotline.db import session_scope

    with session_scope() as s:
        gaps = list(s.scalars(select(TelephonyGap).where(TelephonyGap.source == source[:128],
                                                         TelephonyGap.ended_at.is_(None))))
        if not gaps and started is not None:
            gap = TelephonyGap(source=source[:128], started_at=started, recovery=reason[:255])
            s.add(gap)
            gaps = [gap]
        for gap in gaps:
            gap.ended_at = max(at, gap.started_at)
        s.flush()
        return [(int(g.id), g.started_at) for g in gaps]


def note_recovery(gap_id: int, recovered: int, note: str) -> None:
    from hotline.db import session_scope

    with session_scope() as s:
        gap = s.get(TelephonyGap, gap_id)
        if gap is not None:
            gap.recovered_calls = recovered
            gap.recovery = note[:255]


def gaps_between(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Gaps overlapping [start, end) (an open gap runs until now), oldest first."""
    rows = session.scalars(select(TelephonyGap).where(
        TelephonyGap.started_at < end, or_(TelephonyGap.ended_at.is_(None), TelephonyGap.ended_at >= start))
        .order_by(TelephonyGap.started_at, TelephonyGap.id))
    return [{"source": g.source, "started_at": g.started_at.isoformat(),
             "ended_at": g.ended_at.isoformat() if g.ended_at else None,
             "seconds": round(((g.ended_at or datetime.now(timezone.utc)) - g.started_at).total_seconds()),
             "recovered_calls": g.recovered_calls, "recovery": g.recovery} for g in rows]


def recent_gaps(session: Session, hours: int = 24) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    return gaps_between(session, now - timedelta(hours=hours), now + timedelta(seconds=1))


__all__ = ["close_gaps", "gaps_between", "note_recovery", "open_gap", "recent_gaps"]
