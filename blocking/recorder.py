"""The calls a block turned away, recorded after the answer, never lost.

The voice path (Twilio's webhook, the Asterisk lookup) answers a blocked caller first and hands the
fact to ``recorder.add()``: an in-memory queue that a writer thread empties in one transaction per
batch (usually a few milliseconds after the answer).  A key press for a supervisor goes the same
way, after the call it belongs to.

When the database cannot take a batch, it is written to a journal file under the spool directory
(``<data dir>/spool/blocked-calls/``, JSON lines, fsynced, then renamed into place), and replayed
every ``RETRY_SECONDS`` once the database is back, by whichever process claims the file first (an
atomic rename).  When the disk refuses too, the batch stays in this process's memory and is offered
to the database, then to the disk, at each retry.  When the process stops it writes what it still
holds.  Replaying is harmless: a call reference already recorded is not recorded twice.

Each entry keeps the moment of the call (``at``), so the daily log and the reports count it on the
right day whenever it is written.  The window that remains is a process killed (``SIGKILL``, power)
in the milliseconds between the answer and the write.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import Integer, String, Table, bindparam, exists, false, func, insert, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from blocking.models import BlockedCall
from hotline.db import UTCDateTime, rowcount, session_scope, utcnow

log = logging.getLogger(__name__)

DB_ERRORS = (OperationalError, DBAPIError, ConnectionError, TimeoutError)
RETRY_SECONDS = 5.0  # how often journalled entries are offered to the database again
ORPHAN_KEEP = timedelta(hours=1)  # a key press whose call is not recorded (yet) waits this long
STALE_CLAIM_SECONDS = 300.0
MEMORY_MAX = 100_000  # entries held while neither the database nor the disk takes them


@dataclass(frozen=True)
class Entry:
    kind: str  # "blocked": a block turned the call away; "pressed": its caller asked for a supervisor
    provider: str
    call_ref: str
    at: datetime
    block_id: int | None = None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "at": self.at.isoformat()})

    @classmethod
    def from_json(cls, line: str) -> Entry:
        data = json.loads(line)
        return cls(kind=str(data["kind"]), provider=str(data["provider"]), call_ref=str(data["call_ref"]),
                   at=datetime.fromisoformat(data["at"]), block_id=data.get("block_id"))


_TABLE = cast(Table, BlockedCall.__table__)
_SAME_CALL = (_TABLE.c.provider == bindparam("p_provider")) & (_TABLE.c.call_ref == bindparam("p_ref"))
# Built once, plain Core (the recorder's cost is CPU the voice path shares): a blocked call is
# inserted unless its reference was recorded before (a replay, Twilio asking twice); a key press
# marks the call's latest row.
_RECORD = insert(_TABLE).from_select(
    ["at", "provider", "call_ref", "block_id", "pressed_for_supervisor"],
    select(bindparam("p_at", type_=UTCDateTime()), bindparam("p_provider", type_=String()),
           bindparam("p_ref", type_=String()), bindparam("p_block", type_=Integer()), false())
    .where((bindparam("p_ref", type_=String()) == "") | ~exists().where(_SAME_CALL)))
_PRESSED = (update(_TABLE).values(pressed_for_supervisor=True)
            .where(_TABLE.c.id == select(func.max(_TABLE.c.id)).where(_SAME_CALL).scalar_subquery()))


def apply(session: Session, entries: list[Entry]) -> list[Entry]:
    """Write entries in order; returns the key presses whose call is not recorded yet (to retry)."""
    orphans: list[Entry] = []
    for e in entries:
        if e.kind == "blocked":
            session.execute(_RECORD, {"p_at": e.at, "p_provider": e.provider, "p_ref": e.call_ref,
                                      "p_block": e.block_id})
        elif rowcount(session.execute(_PRESSED, {"p_provider": e.provider, "p_ref": e.call_ref})) == 0:
            if utcnow() - e.at < ORPHAN_KEEP:
                orphans.append(e)
            else:
                log.warning("blocking.press_without_call", extra={"provider": e.provider})
    return orphans


class Recorder:
    def __init__(self) -> None:
        self._queue: deque[Entry] = deque()
        self._held: deque[Entry] = deque()  # neither the database nor the disk took these yet
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._stopping = False
        self._last_retry = 0.0

    # ------------------------------------------------------------------ the request's side
    def add(self, entry: Entry) -> None:
        """Queue an entry (no database, no disk): the writer thread records it."""
        with self._cond:
            self._queue.append(entry)
            self._cond.notify()
        self._ensure_thread()

    def blocked(self, *, provider: str, call_ref: str, block_id: int | None, at: datetime | None = None) -> None:
        self.add(Entry("blocked", provider[:16], (call_ref or "")[:128], at or utcnow(), block_id))

    def pressed(self, *, provider: str, call_ref: str, at: datetime | None = None) -> None:
        self.add(Entry("pressed", provider[:16], (call_ref or "")[:128], at or utcnow()))

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="blocking-recorder", daemon=True)
                self._thread.start()

    def idle(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far was written (or journalled); True if it was."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def stop(self) -> None:
        """Write what is queued, then end the thread; what the database refuses goes to the journal."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        with self._cond:
            self._stopping = True
            self._cond.notify()
        thread.join(30)
        if self._held:
            self._journal(list(self._held), from_memory=True)
        if self._held:
            log.critical("blocking.records_lost", extra={
                "reason": "the process stops while neither the database nor the disk takes its blocked calls",
                "entries": len(self._held)})

    # ------------------------------------------------------------------ the writer
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    if not self._cond.wait(timeout=RETRY_SECONDS):
                        break
                batch = list(self._queue)
                self._queue.clear()
                stopping = self._stopping
                self._busy = bool(batch)
            try:
                if batch:
                    self._write(batch)
                if time.monotonic() - self._last_retry >= RETRY_SECONDS or stopping:
                    self._last_retry = time.monotonic()
                    self.replay()
            except Exception:  # the thread carries on; what it held is journalled or in memory
                log.exception("blocking.recorder_failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            if stopping:
                with self._cond:
                    if not self._queue:
                        return

    def _write(self, batch: list[Entry]) -> bool:
        """Record a batch in one transaction, else journal it.  True when the database took it."""
        try:
            with session_scope() as session:
                orphans = apply(session, batch)
        except DB_ERRORS as exc:
            log.error("blocking.record_deferred", extra={"reason": f"database unavailable: {type(exc).__name__}",
                                                         "entries": len(batch)})
            self._journal(batch)
            return False
        except Exception as exc:  # noqa: BLE001 - kept on disk with the reason; never dropped
            log.error("blocking.record_failed", extra={"reason": type(exc).__name__, "entries": len(batch)})
            self._journal(batch)
            return False
        if orphans:
            self._journal(orphans)
        return True

    # ------------------------------------------------------------------ the journal
    def directory(self) -> Path:
        from hotline.settings import get_settings

        path = get_settings().spool_dir / "blocked-calls"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _journal(self, entries: list[Entry], *, from_memory: bool = False) -> None:
        try:
            folder = self.directory()
            path = folder / f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            tmp = path.with_suffix(".tmp")
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.writelines(e.to_json() + "\n" for e in entries)
                    fh.flush()
                    os.fsync(fh.fileno())
                tmp.rename(path)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            if not from_memory:
                if len(self._held) + len(entries) > MEMORY_MAX:
                    log.critical("blocking.records_lost", extra={"reason": f"cannot write the journal: {exc}",
                                                                 "entries": len(entries)})
                    return
                self._held.extend(entries)
            log.critical("blocking.journal_failed", extra={"reason": str(exc)[:200], "held": len(self._held)})
            return
        if from_memory:
            self._held.clear()

    def pending_files(self) -> list[Path]:
        folder = self.directory()
        return sorted([*folder.glob("*.jsonl"), *folder.glob("*.claimed-*")])

    def replay(self) -> int:
        """Offer what this process holds in memory, then every journal file, to the database;
        returns the entries written.  Stops at the first database error."""
        written = 0
        if self._held:
            held = list(self._held)
            try:
                with session_scope() as session:
                    orphans = apply(session, held)
            except DB_ERRORS:
                self._journal(held, from_memory=True)  # at least on disk, if the disk is back
                return 0
            self._held.clear()
            if orphans:
                self._journal(orphans)
            written += len(held)
        try:
            folder = self.directory()
            now = time.time()
            for claimed in folder.glob("*.claimed-*"):  # left by a process that died replaying it
                if now - claimed.stat().st_mtime > STALE_CLAIM_SECONDS:
                    claimed.rename(claimed.with_name(claimed.name.split(".claimed-", 1)[0] + ".jsonl"))
            files = sorted(folder.glob("*.jsonl"))
        except OSError as exc:
            log.error("blocking.journal_unreadable", extra={"reason": str(exc)[:200]})
            return written
        for path in files:
            claimed = path.with_name(f"{path.stem}.claimed-{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another process took it
            try:
                entries = [Entry.from_json(line) for line in claimed.read_text("utf-8").splitlines() if line.strip()]
            except (ValueError, KeyError, TypeError) as exc:
                claimed.rename(path.with_suffix(".bad"))
                log.error("blocking.journal_bad", extra={"file": path.name, "reason": str(exc)[:200]})
                continue
            try:
                with session_scope() as session:
                    orphans = apply(session, entries)
            except DB_ERRORS:
                claimed.rename(path)
                return written
            except Exception as exc:  # noqa: BLE001 - set aside with the reason; the others still replay
                claimed.rename(path.with_suffix(".bad"))
                log.error("blocking.journal_failed_to_apply", extra={"file": path.name, "reason": type(exc).__name__})
                continue
            if orphans:
                self._journal(orphans)
            claimed.unlink(missing_ok=True)
            written += len(entries)
            log.info("blocking.journal_replayed", extra={"file": path.name, "entries": len(entries)})
        return written


recorder = Recorder()
