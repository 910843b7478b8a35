"""This process's copy of the lines callers dial, so a provider's voice webhook routes a caller
without waiting for the database.

``NumberLines.find(provider, number)`` answers from a dictionary built from every active ``number``
line with what the route needs of its centre and overflow centre (the line itself, detached, for
``routing.route_at``: hours, holidays, overflow), and the default centre's code for a number no line
claims.  Lines are few (tens), so the copy is simply reloaded whole:

* in this process, a line or centre added, changed or removed marks the copy stale when its
  transaction commits (``after_flush`` sees the rows, ``after_commit`` marks): the next call
  reloads first, so a change made here applies to the very next call;
* in every process, a refresher thread (``start_refresher``, started with the web app) reloads it
  every ``HOTLINE_ROUTES_REFRESH_SECONDS``: a change made by another process (another web worker,
  the ``hotline`` command) applies within that interval;
* a copy not reloaded for ``STALE_AFTER`` intervals (the refresher stopped, the database is slow) is
  not trusted: ``find`` raises ``Stale`` and the caller reloads first, on its own thread, or routes
  from the database as before.

What depends on the moment of the call is still computed per call: opening hours and holidays
(``route_at`` with the clock), and, for a line with an overflow centre, whether a counsellor is free
(one query, by the caller).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, aliased

from hotline import periodic
from hotline.centres.models import Centre, Line
from hotline.centres.service import ensure_default_centre
from hotline.db import get_engine, session_scope
from hotline.phone import normalize_line_identifier

log = logging.getLogger(__name__)

STALE_AFTER = 3  # refresh intervals: an older copy is reloaded before it answers


def _clock() -> float:
    """Monotonic seconds (read directly: a frozen test clock must not make the copy look fresh)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class Stale(Exception):
    """The copy may be out of date: ``reload()`` it and ask again."""


@dataclass(frozen=True)
class NumberLine:
    """A dialled number's line (detached from its session) and what the route needs of its centres."""

    line: Line
    centre_code: str
    timezone: str
    overflow_id: int | None
    overflow_code: str | None
    overflow_active: bool


_OVERFLOW = aliased(Centre)
_NUMBER_LINES = (
    select(Line, Centre.code, Centre.timezone, _OVERFLOW.id, _OVERFLOW.code, _OVERFLOW.active)
    .join(Centre, Centre.id == Line.centre_id)
    .outerjoin(_OVERFLOW, _OVERFLOW.id == Line.overflow_centre_id)
    .where(Line.active.is_(True), Line.kind == "number")
    .order_by(Line.provider == "any", Line.id))


class NumberLines:
    def __init__(self) -> None:
        self._by_number: dict[tuple[str, str], NumberLine] = {}  # (provider, identifier) → line
        self._default_code = ""
        self._checked_at = float("-inf")
        self._dirty = True
        self._engine: object = None  # the engine it was read from (another database: not this copy)
        self._lock = threading.Lock()  # one reload at a time; readers never wait for it

    def interval(self) -> float:
        from hotline.settings import get_settings

        return float(get_settings().routes_refresh_seconds)

    def fresh(self) -> bool:
        return (not self._dirty and _clock() - self._checked_at <= STALE_AFTER * self.interval()
                and self._engine is get_engine())

    def find(self, provider: str, dialled: str | None) -> NumberLine | str:
        """The line of a dialled number on ``provider`` (its own line before an ``any`` one), else
        the default centre's code; ``Stale`` when the copy is not known to be current."""
        if not self.fresh():
            raise Stale()
        ident = normalize_line_identifier(dialled) if dialled else ""
        by_number = self._by_number  # replaced whole by a reload, never changed in place
        found = by_number.get((provider, ident)) or by_number.get(("any", ident)) if ident else None
        return found if found is not None else self._default_code

    def invalidate(self) -> None:
        self._dirty = True

    def reload(self, *, default_code: str, default_name: str, default_timezone: str) -> None:
        """Read every active number line (and make the default centre if it is missing, as the
        lookup it replaces did).  Raises what the database raises."""
        with self._lock:
            dirty = self._dirty
            self._dirty = False  # a change committed from now on marks it again
            try:
                with session_scope() as session:
                    default = ensure_default_centre(session, code=default_code, name=default_name,
                                                    timezone=default_timezone)
                    rows = session.execute(_NUMBER_LINES).all()
                    by_number: dict[tuple[str, str], NumberLine] = {}
                    for line, code, tz, other_id, other_code, other_active in rows:
                        session.expunge(line)  # its loaded columns stay readable after the session ends
                        by_number.setdefault((line.provider, line.identifier), NumberLine(
                            line, code, tz, other_id, other_code, bool(other_active)))
                    default_centre_code = default.code
            except BaseException:
                self._dirty = self._dirty or dirty
                raise
            self._by_number, self._default_code = by_number, default_centre_code
            self._checked_at, self._engine = _clock(), get_engine()

    def start_refresher(self, reload: Callable[[], None]) -> Callable[[], None]:
        """Call ``reload`` every interval in a daemon thread; returns a stop function."""
        return periodic.start("centres.number_lines", self.interval, reload)


number_lines = NumberLines()


@event.listens_for(Session, "after_flush")
def _lines_changed(session: Session, _context: Any) -> None:
    """A line or centre written in this process: the copy is stale once the transaction commits."""
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, (Line, Centre)):
            event.listen(session, "after_commit", lambda _s: number_lines.invalidate(), once=True)
            return
