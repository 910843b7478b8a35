"""This process's copy of the active blocks, so the voice path checks a caller without the database.

The Twilio voice webhook and the Asterisk lookup ask ``lookup()`` with the caller's number hashes:
a dictionary look-up, no statement, no thread.  The copy is kept right by a version stamp of
``number_blocks`` (how many rows, the newest id and start, how many were lifted and the latest lift:
every add, lift, proposal accepted and retention delete changes it), read by ``refresh()``:

* in this process, adding or lifting a block marks the copy stale when its transaction commits,
  so the next check reloads first (a block applies at once here);
* in every other process, a refresher thread (``start_refresher``, started with the web app) reads
  the stamp every ``HOTLINE_BLOCK_REFRESH_SECONDS`` and reloads the active blocks when it changed:
  a block set or lifted elsewhere applies within that interval (1 s by default) plus one query;
* a copy older than ``STALE_AFTER`` refresh intervals (the refresher stopped, the database is slow)
  is not trusted: ``lookup`` raises ``Stale`` and the caller refreshes first (or, when the database
  cannot answer, uses what it knows: a known block still applies, the rest fails open).

Expiry needs no refresh: each entry keeps its start and end, compared with the clock at each check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from blocking.models import NumberBlock
from hotline import periodic
from hotline.db import session_scope, utcnow

log = logging.getLogger(__name__)

STALE_AFTER = 3  # refresh intervals: an older copy is refreshed before it answers


def _clock() -> float:
    """Monotonic seconds (read directly: a frozen test clock must not make the copy look fresh)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# Built once: composing it for every refresh would cost more than running it.
_STAMP = select(func.count(NumberBlock.id), func.coalesce(func.max(NumberBlock.id), 0),
                func.count(NumberBlock.lifted_at), func.max(NumberBlock.starts_at), func.max(NumberBlock.lifted_at))


class Stale(Exception):
    """The copy of the active blocks may be out of date: refresh it (``refresh()``) and ask again."""


class ActiveBlocks:
    def __init__(self) -> None:
        self._by_hash: dict[str, tuple[int, datetime, datetime]] = {}  # hash → (block id, starts, expires)
        self._stamp: tuple[Any, ...] | None = None
        self._checked_at = float("-inf")
        self._dirty = True
        self._loaded = False
        self._lock = threading.Lock()  # one refresh at a time; readers never wait for it

    def interval(self) -> float:
        from hotline.settings import get_settings

        return float(get_settings().block_refresh_seconds)

    @property
    def known(self) -> bool:
        """Whether the copy was ever loaded (a stale copy still knows the blocks of that moment)."""
        return self._loaded

    def fresh(self) -> bool:
        return not self._dirty and _clock() - self._checked_at <= STALE_AFTER * self.interval()

    def lookup(self, hashes: list[str], now: datetime | None = None, *, stale_ok: bool = False) -> int | None:
        """The id of the active block of any of these number hashes, else None; ``Stale`` when the
        copy is not known to be current (unless ``stale_ok``)."""
        if not stale_ok and not self.fresh():
            raise Stale()
        by_hash = self._by_hash  # replaced whole by a reload, never changed in place
        now = now or utcnow()
        best: tuple[int, datetime] | None = None
        for h in hashes:
            hit = by_hash.get(h)
            if hit is not None and hit[1] <= now < hit[2] and (best is None or hit[2] > best[1]):
                best = (hit[0], hit[2])
        return best[0] if best is not None else None

    def invalidate(self) -> None:
        self._dirty = True

    def invalidate_on_commit(self, session: Session) -> None:
        """Mark the copy stale once ``session`` commits (a block added or lifted in this process)."""
        event.listen(session, "after_commit", lambda _s: self.invalidate(), once=True)

    def refresh(self) -> bool:
        """Read the stamp; reload the active blocks when it changed.  True when reloaded.  Raises
        what the database raises (the caller decides whether to fail open)."""
        with self._lock:
            dirty = self._dirty
            self._dirty = False  # a change committed from now on marks it again
            try:
                with session_scope() as session:
                    stamp = tuple(session.execute(_STAMP).one())
                    if stamp == self._stamp and self._loaded and not dirty:
                        self._checked_at = _clock()
                        return False
                    now = utcnow()
                    rows = session.execute(select(
                        NumberBlock.number_hash, NumberBlock.id, NumberBlock.starts_at, NumberBlock.expires_at)
                        .where(NumberBlock.lifted_at.is_(None), NumberBlock.expires_at > now)).all()
            except BaseException:
                self._dirty = self._dirty or dirty
                raise
            by_hash: dict[str, tuple[int, datetime, datetime]] = {}
            for number_hash, block_id, starts, expires in rows:
                known = by_hash.get(number_hash)
                if known is None or expires > known[2]:
                    by_hash[number_hash] = (block_id, starts, expires)
            self._by_hash, self._stamp, self._loaded = by_hash, stamp, True
            self._checked_at = _clock()
            return True

    def start_refresher(self) -> Callable[[], None]:
        """Refresh every interval in a daemon thread; returns a stop function."""
        return periodic.start("blocking", self.interval, self.refresh)


active = ActiveBlocks()
