"""The calls a block turned away, journalled before the answer, recorded after it, never lost.

The voice path (Twilio's webhook, the Asterisk lookup) hands a blocked call to ``recorder.add()``
(``add_async()`` from the event loop: on a thread of its own, the answer waiting at most
``WAL_BUDGET`` for it) before it answers: the entry is appended to this process's write-ahead
journal (``<data dir>/spool/blocked-calls/<time>-<pid>-<random>.wal``, one JSON line, fsynced:
~0.4 ms), then queued in memory for a writer thread that records it in one transaction per batch
(usually a few milliseconds after the answer) and empties the journal once nothing it holds is
waiting.  A key press for a supervisor goes the same way, after the call it belongs to.

The journal file is locked (``flock``) by its process while it lives; a process killed outright
(``SIGKILL``, power) releases the lock, so a journal whose lock is free is a dead process's, whatever
its pid became: the next process that starts (at once), or a living one (every ``RETRY_SECONDS``),
turns it into a journal file as below and replays it.  A line torn by the kill is skipped (its
caller was never answered).  When the disk refuses the write-ahead journal, the entry is only
queued in memory (the caller is never failed), as before the journal: a kill then loses it.

When the database cannot take a batch, it is written to a journal file under the same directory
(``*.jsonl``, fsynced, then renamed into place), and replayed every ``RETRY_SECONDS`` once the
database is back, by whichever process claims the file first (an atomic rename).  When the disk
refuses too, the batch stays in this process's memory (and in its write-ahead journal, which is not
emptied meanwhile) and is offered to the database, then to the disk, at each retry.  When the
process stops it writes what it still holds.  Replaying is harmless: a call reference already
recorded is not recorded twice (an entry without a reference, which the dialplan and Twilio always
send, could be counted twice if a process died between its write and the journal's emptying).

Each entry keeps the moment of the call (``at``), so the daily log and the reports count it on the
right day whenever it is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
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
WAL_BUDGET = 0.25  # seconds the async voice path waits for the write-ahead journal before answering anyway
WAL_NEW_STALE_SECONDS = 60.0  # a ``.wal-new`` file (a process died creating its journal) is removed after this
# Test only (tests/faults/test_blocked_call_killed.py): the writer waits this long before each
# batch, so that a kill lands between the answer and the database write.  Unset in production.
TEST_DELAY_ENV = "HOTLINE_TEST_RECORDER_DELAY_SECONDS"
_sync = getattr(os, "fdatasync", os.fsync)


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


def _test_delay() -> float:
    try:
        return max(0.0, float(os.environ.get(TEST_DELAY_ENV) or 0))
    except ValueError:
        return 0.0


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Recorder:
    def __init__(self) -> None:
        self._queue: deque[Entry] = deque()
        self._held: deque[Entry] = deque()  # neither the database nor the disk took these yet
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._stopping = False
        self._last_retry = 0.0
        # this process's write-ahead journal (``<time>-<pid>-<random>.wal``, locked while it lives)
        self._wal_lock = threading.Lock()  # taken before ``_cond``, never inside it
        self._wal_fd: int | None = None
        self._wal_path: Path | None = None
        self._wal_pid = 0
        self._wal_size = 0
        self._wal_failing = False
        self._wal_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blocking-wal")

    # ------------------------------------------------------------------ the request's side
    def add(self, entry: Entry) -> None:
        """Append an entry to this process's write-ahead journal (fsynced; when the disk refuses, the
        entry is only in memory), then queue it: the writer thread records it."""
        with self._wal_lock:
            self._wal_append(entry)
            with self._cond:
                self._queue.append(entry)
                self._cond.notify()
        self._ensure_thread()

    async def add_async(self, entry: Entry) -> None:
        """``add()`` on a thread of its own, for the event loop: the answer waits for the journal's
        fsync (at most ``WAL_BUDGET``; a slower disk delays the record's safety, never the caller)."""
        try:
            future = self._wal_pool.submit(self.add, entry)
        except RuntimeError:  # the interpreter is shutting down: no new thread, done here
            self.add(entry)
            return
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), WAL_BUDGET)
        except TimeoutError:  # the entry is queued when the write ends
            log.error("blocking.journal_slow", extra={"budget_seconds": WAL_BUDGET})
        except Exception:  # never fails the caller
            log.exception("blocking.record_not_queued")

    def blocked(self, *, provider: str, call_ref: str, block_id: int | None, at: datetime | None = None) -> None:
        self.add(Entry("blocked", provider[:16], (call_ref or "")[:128], at or utcnow(), block_id))

    def pressed(self, *, provider: str, call_ref: str, at: datetime | None = None) -> None:
        self.add(Entry("pressed", provider[:16], (call_ref or "")[:128], at or utcnow()))

    async def blocked_async(self, *, provider: str, call_ref: str, block_id: int | None) -> None:
        await self.add_async(Entry("blocked", provider[:16], (call_ref or "")[:128], utcnow(), block_id))

    async def pressed_async(self, *, provider: str, call_ref: str) -> None:
        await self.add_async(Entry("pressed", provider[:16], (call_ref or "")[:128], utcnow()))

    def start(self) -> None:
        """Start the writer now (a web process's start): journals left by dead processes are replayed at once."""
        self._ensure_thread()

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
            self._close_wal()
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
        self._close_wal()

    # ------------------------------------------------------------------ the writer
    def _run(self) -> None:
        try:
            self.replay()  # what dead processes left, at once
        except Exception:  # the loop below retries
            log.exception("blocking.recorder_failed")
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
                    if delay := _test_delay():
                        time.sleep(delay)
                    self._write(batch)
                if time.monotonic() - self._last_retry >= RETRY_SECONDS or stopping:
                    self._last_retry = time.monotonic()
                    self.replay()
                self._settle_wal()
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

    def _journal_file(self, entries: list[Entry]) -> Path:
        """Write entries to a new journal file (fsynced, renamed into place); raises OSError."""
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
        return path

    def _journal(self, entries: list[Entry], *, from_memory: bool = False) -> None:
        try:
            self._journal_file(entries)
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
            self._adopt_dead_wals(folder)
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

    # ------------------------------------------------------------------ the write-ahead journal
    def _wal_append(self, entry: Entry) -> bool:
        """Append one entry to this process's write-ahead journal and fsync it (``_wal_lock`` held);
        False when the disk refuses (the entry is then only in memory, as before the journal)."""
        line = (entry.to_json() + "\n").encode("utf-8")
        fd: int | None = None
        try:
            fd = self._wal_open()
            if os.pwrite(fd, line, self._wal_size) != len(line):
                raise OSError(errno.ENOSPC, "short write")
            _sync(fd)
        except Exception as exc:  # noqa: BLE001 - never fails the caller: today's behaviour (memory only)
            if fd is not None:
                # No half line left behind; if even that fails, the reader skips a torn line.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._wal_size)
            if not self._wal_failing:
                log.error("blocking.wal_failed", extra={"reason": str(exc)[:200]})
            self._wal_failing = True
            return False
        self._wal_size += len(line)
        if self._wal_failing:
            log.info("blocking.wal_back")
            self._wal_failing = False
        return True

    def _wal_open(self) -> int:
        """This process's journal file, created (and locked) on first use: under a temporary name until
        the lock is held, so no other process takes a journal that is being created for a dead one's."""
        from hotline.settings import get_settings

        folder = get_settings().spool_dir / "blocked-calls"
        if self._wal_fd is not None:
            if self._wal_pid == os.getpid() and self._wal_path is not None and self._wal_path.parent == folder:
                return self._wal_fd
            with self._cond:  # another data directory (tests), or a process forked from the owner
                done = not self._queue and not self._held
            self._release_wal(remove=done)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        new = folder / f"{name}.wal-new"
        fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path = new.with_name(f"{name}.wal")
            new.rename(path)
            _fsync_dir(folder)  # the file itself survives a power cut
        except OSError:
            os.close(fd)
            new.unlink(missing_ok=True)
            raise
        self._wal_fd, self._wal_path, self._wal_pid, self._wal_size = fd, path, os.getpid(), 0
        return fd

    def _release_wal(self, *, remove: bool = False) -> None:
        """Close this process's journal (``_wal_lock`` held); ``remove`` when every entry is written.
        A copy inherited through ``fork`` is only closed: the parent still owns the file."""
        fd, path = self._wal_fd, self._wal_path
        self._wal_fd, self._wal_path, self._wal_size = None, None, 0
        if fd is None:
            return
        try:
            if remove and path is not None and self._wal_pid == os.getpid():
                path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("blocking.wal_not_removed", extra={"reason": str(exc)[:200]})
        finally:
            os.close(fd)

    def _settle_wal(self) -> None:
        """Empty the journal once everything in it is written to the database or to a journal file
        (the writer, after a batch): nothing queued, nothing held in memory only."""
        with self._wal_lock:
            if self._wal_fd is None or self._wal_size == 0 or self._wal_pid != os.getpid():
                return
            with self._cond:
                if self._queue or self._held:
                    return
            try:
                os.ftruncate(self._wal_fd, 0)
                self._wal_size = 0
            except OSError as exc:  # kept: replaying it again is harmless
                log.error("blocking.wal_not_emptied", extra={"reason": str(exc)[:200]})

    def _close_wal(self) -> None:
        with self._wal_lock:
            with self._cond:
                done = not self._queue and not self._held
            self._release_wal(remove=done)

    def _adopt_dead_wals(self, folder: Path) -> None:
        """Turn the write-ahead journals of processes that are gone (their lock is free: a process
        killed outright releases it too, whatever its pid became) into journal files, replayed next."""
        now = time.time()
        for path in sorted(folder.glob("*.wal-new")):
            try:
                if now - path.stat().st_mtime > WAL_NEW_STALE_SECONDS:
                    self._take_dead_wal(path)
            except OSError:
                continue
        for path in sorted(folder.glob("*.wal")):
            if path == self._wal_path:
                continue
            try:
                self._take_dead_wal(path)
            except OSError as exc:
                log.error("blocking.wal_not_replayed", extra={"file": path.name, "reason": str(exc)[:200]})

    def _take_dead_wal(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its process is alive
            try:
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    return  # another process took it first
            except FileNotFoundError:
                return
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0) if size else b""
            entries: list[Entry] = []
            for raw in data.splitlines():
                try:
                    entries.append(Entry.from_json(raw.decode("utf-8")))
                except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                    continue  # a line torn by the kill: its caller was never answered
            if entries:
                self._journal_file(entries)  # OSError: left in place, taken at the next retry
                log.warning("blocking.wal_adopted", extra={"file": path.name, "entries": len(entries)})
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


recorder = Recorder()
