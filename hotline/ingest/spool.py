"""A disk spool for provider events that arrive while the database is unreachable.

``submit()`` is what adapters call: it ingests at once, and if the database is down it
appends the raw events to a JSON-lines file (fsynced) instead.  A drainer thread replays the
spool when the database is back; the ingestor's dedupe keys make a replay harmless.

Webhooks answer once their events are on disk (``hold()``: an in-flight file, removed by
``release()`` at the commit); a file left by a process killed before its commit is moved into the
spool and replayed (``recover_inflight()``, from the drainer).

When the spool cannot be written either (disk full, I/O error, read-only), ``keep()`` holds the
events in a bounded in-memory backlog of this process instead of failing the caller: the drainer
offers them to the database first and to the disk spool next, every few seconds, until one takes
them.  The backlog shows in ``/readyz`` (``checks.spool``), in the metrics
(``hotline_spool_memory_events``, ``hotline_spool_disk_failures_total``,
``hotline_spool_events_lost_total``) and in a CRITICAL log line; ``hotline check`` warns when the
spool's disk is nearly full.  Only beyond ``MEMORY_BACKLOG_MAX`` events (the process would run out
of memory first) is an event given up, counted and logged.  A half-written ``.tmp`` file is removed
when its write fails, and stray ones (a process killed mid-write) when a drainer starts and as it runs.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from hotline.ingest.events import CallEvent, Kind, LiveCall, RawIn
from hotline.ingest.service import IngestResult, ingest_and_commit
from hotline.security import crypto
from hotline.settings import get_settings

log = logging.getLogger(__name__)
_lock = threading.Lock()

DB_ERRORS = (OperationalError, DBAPIError, ConnectionError, TimeoutError)


_LIVE_TIMES = ("started_at", "queued_at", "answered_at")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _encode(item: RawIn) -> dict[str, Any]:
    data = asdict(item)
    data["received_at"] = item.received_at.isoformat()
    data["payload_bytes"] = base64.b64encode(item.payload_bytes).decode() if item.payload_bytes else None
    for ev in data["events"]:
        ev["at"] = ev["at"].isoformat()
        ev["requested_at"] = _iso(ev.get("requested_at"))
        for live in ev["live"]:
            for name in _LIVE_TIMES:
                live[name] = _iso(live.get(name))
    return data


def _decode(data: dict[str, Any]) -> RawIn:
    events = []
    for ev in data.pop("events"):
        live = [LiveCall(**{**lc, **{n: _time(lc.get(n)) for n in _LIVE_TIMES if n in lc}}) for lc in ev.pop("live")]
        events.append(CallEvent(**{**ev, "kind": Kind(ev["kind"]), "at": datetime.fromisoformat(ev["at"]),
                                   "requested_at": _time(ev.get("requested_at")), "live": live}))
    raw = data.pop("payload_bytes")
    return RawIn(**{**data, "received_at": datetime.fromisoformat(data["received_at"]),
                    "payload_bytes": base64.b64decode(raw) if raw else None, "events": events})


def spool_dir() -> Path:
    return get_settings().spool_dir


def write(items: Sequence[RawIn], folder: Path | None = None) -> Path:
    """Write events to a new spool file (fsynced, then renamed into place); raises OSError when the
    disk refuses, leaving no partial file behind.  Adapters call ``keep()``, which never raises."""
    path = (folder or spool_dir()) / f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
    tmp = path.with_suffix(".tmp")
    ring = crypto.keyring()  # a key problem shows before a file is started
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for item in items:
                # Each line is encrypted like a database column: events carry callers' numbers.
                fh.write(ring.encrypt_text(json.dumps(_encode(item), ensure_ascii=False)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(path)
    except OSError:
        _remove(tmp)
        raise
    return path


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # reported; the next sweep tries again
        log.error("ingest.spool_tmp_left", extra={"spool": path.name, "reason": _os_reason(exc)})


def _os_reason(exc: OSError) -> str:
    return f"{errno.errorcode.get(exc.errno or 0, 'OSError')}: {exc.strerror or exc}"


# ---------------------------------------------------------------------- events in flight
# A webhook may answer once its events are on disk, before the database has them: ``hold()`` writes
# them to ``<spool>/inflight/`` (fsynced, ~0.4 ms here), the batcher applies them, and ``release()``
# removes the file once they are committed.  A file left behind (the process was killed between the
# answer and the commit, or the batch was spooled instead) is moved into the spool by the drainer,
# which replays it: the dedupe keys make a second copy harmless.
INFLIGHT_STALE_SECONDS = 30.0  # a batch commits in milliseconds; an older file was left behind


def inflight_dir() -> Path:
    return spool_dir() / "inflight"


def hold(items: Sequence[RawIn]) -> Path | None:
    """Write events about to be applied to an in-flight file; None when the disk refuses (then the
    caller waits for the database, as without it)."""
    folder = inflight_dir()
    try:
        try:
            return write(items, folder)
        except FileNotFoundError:
            folder.mkdir(parents=True, exist_ok=True)
            return write(items, folder)
    except OSError as exc:
        log.warning("ingest.inflight_not_written", extra={"reason": _os_reason(exc), "events": len(items)})
        return None


def release(path: Path) -> None:
    """The events of an in-flight file are committed: the file goes."""
    _remove(path)


def recover_inflight(max_age: float = INFLIGHT_STALE_SECONDS) -> int:
    """Move in-flight files left behind (their process is gone, or older than ``max_age``) into the
    spool, where ``drain()`` replays them; returns how many moved."""
    moved = 0
    now = time.time()
    try:
        found = sorted(inflight_dir().glob("*.jsonl"))
    except OSError as exc:
        log.error("ingest.inflight_sweep_failed", extra={"reason": _os_reason(exc)})
        return 0
    for path in found:
        try:
            if _left_behind(path, max_age, now):
                path.rename(spool_dir() / path.name)
                moved += 1
        except FileNotFoundError:  # released (or moved by another process) meanwhile
            continue
        except OSError as exc:
            log.error("ingest.inflight_sweep_failed", extra={"reason": _os_reason(exc), "spool": path.name})
    if moved:
        log.warning("ingest.inflight_recovered", extra={"files": moved})
    return moved


# ---------------------------------------------------------------------- the in-memory backlog
MEMORY_BACKLOG_MAX = 50_000  # raw events held by one process while neither database nor disk takes them
BACKLOG_BATCH = 500  # events offered to the database (or the disk) at a time
TMP_STALE_SECONDS = 60.0  # a write takes milliseconds: an older .tmp file is left from a killed process

_backlog: deque[RawIn] = deque()
_backlog_lock = threading.Lock()
_counters = {"disk_failures": 0, "lost": 0}
_last_disk_error = ""


@dataclass(frozen=True)
class Kept:
    """Where ``keep()`` put events: ``disk`` (a spool file), ``memory`` (the backlog: the disk
    refused) or ``lost`` (the backlog is full too: counted and logged)."""

    where: str
    name: str
    events: int

    @property
    def safe(self) -> bool:
        return self.where != "lost"


def keep(items: Sequence[RawIn]) -> Kept:
    """Keep events for a later replay: the disk spool, else this process's memory.  Never raises
    for a disk problem, so a caller (a Twilio webhook, the AMI listener) always answers its call."""
    global _last_disk_error
    try:
        path = write(items)
    except OSError as exc:
        reason = _os_reason(exc)
        with _backlog_lock:
            _counters["disk_failures"] += 1
            _last_disk_error = reason
            if len(_backlog) + len(items) > MEMORY_BACKLOG_MAX:
                _counters["lost"] += len(items)
                held, kept = len(_backlog), Kept("lost", "", len(items))
            else:
                _backlog.extend(items)
                held, kept = len(_backlog), Kept("memory", "memory backlog", len(items))
        if kept.safe:
            if _loud_now():
                log.critical("ingest.spool_disk_failed", extra={
                    "reason": f"cannot write the spool ({reason}); events held in memory until the database "
                              "or the disk takes them", "events": len(items), "held": held})
        else:
            log.critical("ingest.events_lost", extra={
                "reason": f"cannot write the spool ({reason}) and {MEMORY_BACKLOG_MAX} events are already held "
                          "in memory", "events": len(items), "held": held})
        return kept
    return Kept("disk", path.name, len(items))


LOUD_EVERY_SECONDS = 30.0  # while the disk refuses, one CRITICAL line this often (not one per event)
_last_loud = [0.0]


def _loud_now() -> bool:
    now = time.monotonic()
    with _backlog_lock:
        if now - _last_loud[0] < LOUD_EVERY_SECONDS:
            return False
        _last_loud[0] = now
        return True


def held() -> int:
    """Events this process holds in memory because the disk spool refused them."""
    return len(_backlog)


def status() -> dict[str, Any]:
    """This process's spool health, for ``/readyz`` and the metrics."""
    with _backlog_lock:
        return {"memory_events": len(_backlog), "disk_failures": _counters["disk_failures"],
                "lost": _counters["lost"], "last_disk_error": _last_disk_error}


def _drain_backlog(ingest: Callable[[Sequence[RawIn]], IngestResult]) -> tuple[int, bool]:
    """Offer the backlog to the database, else to the disk spool.  (events applied, database up)."""
    applied, database_up = 0, True
    while True:
        with _backlog_lock:
            batch = [_backlog[i] for i in range(min(BACKLOG_BATCH, len(_backlog)))]
        if not batch:
            return applied, database_up
        if database_up:
            try:
                ingest(batch)
            except DB_ERRORS:
                database_up = False
            except Exception as exc:  # noqa: BLE001 - to a spool file, whose drain sets it aside as .bad
                log.error("ingest.backlog_failed", extra={"events": len(batch), "error": type(exc).__name__})
                if not _to_disk(batch):
                    return applied, database_up
                continue
            else:
                _pop(len(batch))
                applied += len(batch)
                log.warning("ingest.backlog_applied", extra={"events": len(batch), "held": held()})
                continue
        if not _to_disk(batch):
            return applied, database_up


def _to_disk(batch: list[RawIn]) -> bool:
    try:
        path = write(batch)
    except OSError as exc:
        if _loud_now():
            log.critical("ingest.spool_disk_failed", extra={
                "reason": f"cannot write the spool ({_os_reason(exc)}); events still held in memory",
                "events": len(batch), "held": held()})
        return False
    _pop(len(batch))
    log.warning("ingest.backlog_spooled", extra={"events": len(batch), "spool": path.name, "held": held()})
    return True


def _pop(count: int) -> None:
    with _backlog_lock:
        for _ in range(count):
            _backlog.popleft()


def sweep_stray(max_age: float = TMP_STALE_SECONDS) -> int:
    """Remove half-written ``.tmp`` files left by a process that died while writing (its pid is gone,
    or the file is older than ``max_age``); returns how many went."""
    removed = 0
    now = time.time()
    try:
        found = [*spool_dir().glob("*.tmp"), *inflight_dir().glob("*.tmp")]
    except OSError as exc:  # the backlog still drains to the database
        log.error("ingest.spool_sweep_failed", extra={"reason": _os_reason(exc)})
        return 0
    for tmp in found:
        try:
            stale = _left_behind(tmp, max_age, now)
        except FileNotFoundError:
            continue
        if stale:
            _remove(tmp)
            removed += 1
    if removed:
        log.warning("ingest.spool_tmp_removed", extra={"files": removed})
    return removed


def _left_behind(path: Path, max_age: float, now: float) -> bool:
    """A file named ``<ns>-<pid>-…`` whose writer is gone (another process's pid, not alive) or that
    is older than ``max_age`` seconds.  Raises FileNotFoundError when it went meanwhile."""
    try:
        pid = int(path.name.split("-")[1])
    except (IndexError, ValueError):
        pid = 0
    return now - path.stat().st_mtime > max_age or (pid != os.getpid() and not _alive(pid))


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pending_files() -> list[Path]:
    """Every spooled file not yet applied, including those a drainer is replaying right now."""
    folder = spool_dir()
    return sorted([*folder.glob("*.jsonl"), *folder.glob("*.claimed-*")])


def _unclaimed() -> list[Path]:
    return sorted(spool_dir().glob("*.jsonl"))


def submit(items: Sequence[RawIn], *, ingest: Callable[[Sequence[RawIn]], IngestResult] = ingest_and_commit
           ) -> IngestResult | None:
    """Ingest now, or spool if the database is unavailable. Returns None when spooled."""
    try:
        return ingest(items)
    except DB_ERRORS as exc:
        kept = keep(items)
        log.error("ingest.spooled", extra={"reason": f"database unavailable: {type(exc).__name__}",
                                           "events": len(items), "spool": kept.name, "kept": kept.where})
        return None


STALE_CLAIM_SECONDS = 300


def _claim(path: Path) -> Path | None:
    """Take a spool file for this process with an atomic rename; None if another process has it."""
    claimed = path.with_name(f"{path.stem}.claimed-{os.getpid()}")
    try:
        path.rename(claimed)
    except FileNotFoundError:
        return None
    return claimed


def _release(claimed: Path) -> None:
    """Give a claimed file back (the database went away again while replaying it)."""
    original = claimed.with_name(claimed.name.split(".claimed-", 1)[0] + ".jsonl")
    claimed.rename(original)


def _reclaim_stale() -> None:
    """Files claimed by a process that died mid-replay go back to the spool after a while."""
    now = time.time()
    for claimed in spool_dir().glob("*.claimed-*"):
        try:
            if now - claimed.stat().st_mtime > STALE_CLAIM_SECONDS:
                _release(claimed)
        except FileNotFoundError:
            continue


def drain(*, ingest: Callable[[Sequence[RawIn]], IngestResult] = ingest_and_commit) -> int:
    """Replay the memory backlog, then every spooled file; returns how many events were replayed.

    Safe with several processes draining at once: each file is claimed by an atomic rename.
    Stops at the first database outage (the file goes back; the backlog goes to disk if it can);
    an unreadable file is set aside as ``.bad`` with a log line and the others still drain.
    """
    with _lock:
        sweep_stray()
        recover_inflight()
        replayed, database_up = _drain_backlog(ingest)
        if not database_up:
            return replayed
        _reclaim_stale()
        for path in _unclaimed():
            claimed = _claim(path)
            if claimed is None:
                continue
            try:
                items = [_decode(json.loads(crypto.decrypt_text(line) or ""))
                         for line in claimed.read_text("utf-8").splitlines() if line.strip()]
            except (ValueError, KeyError, TypeError) as exc:
                bad = path.with_suffix(".bad")
                claimed.rename(bad)
                log.error("ingest.spool_unreadable", extra={"spool": bad.name, "reason": str(exc)[:200]})
                continue
            try:
                ingest(items)
            except DB_ERRORS:
                _release(claimed)
                return replayed
            except Exception as exc:  # noqa: BLE001 - set aside, keep draining the rest
                bad = path.with_suffix(".bad")
                claimed.rename(bad)
                log.error("ingest.spool_failed", extra={"spool": bad.name, "error": type(exc).__name__})
                continue
            claimed.unlink(missing_ok=True)
            replayed += len(items)
            log.info("ingest.spool_replayed", extra={"spool": path.name, "events": len(items)})
    return replayed


def start_drainer(interval: float = 5.0) -> Callable[[], None]:
    """Run ``drain()`` every ``interval`` seconds in a daemon thread; returns a stop function."""
    stop = threading.Event()
    sweep_stray()
    recover_inflight()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                drain()
            except Exception:  # keep draining later
                log.exception("ingest.spool_drain_failed")

    thread = threading.Thread(target=loop, name="spool-drainer", daemon=True)
    thread.start()

    def finish() -> None:
        """On the way out, a last try for events still held in memory (they die with the process)."""
        stop.set()
        thread.join(interval + 5)
        if held():
            try:
                drain()
            except Exception:  # reported just below with what stays
                log.exception("ingest.spool_drain_failed")
        if held():
            log.critical("ingest.events_lost", extra={
                "reason": "the process stops while neither the database nor the disk spool takes its events",
                "events": held()})

    return finish
