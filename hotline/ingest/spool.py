"""A disk spool for provider events that arrive while the database is unreachable.

``submit()`` is what adapters call: it ingests at once, and if the database is down it
appends the raw events to a JSON-lines file (fsynced) instead.  A drainer thread replays the
spool when the database is back; the ingestor's dedupe keys make a replay harmless.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
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


def write(items: Sequence[RawIn]) -> Path:
    path = spool_dir() / f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
    tmp = path.with_suffix(".tmp")
    ring = crypto.keyring()  # a key problem shows before a file is started
    with open(tmp, "w", encoding="utf-8") as fh:
        for item in items:
            # Each line is encrypted like a database column: events carry callers' numbers.
            fh.write(ring.encrypt_text(json.dumps(_encode(item), ensure_ascii=False)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(path)
    return path


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
        path = write(items)
        log.error("ingest.spooled", extra={"reason": f"database unavailable: {type(exc).__name__}",
                                           "events": len(items), "spool": path.name})
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
    """Replay every spooled file; returns how many events were replayed.

    Safe with several processes draining at once: each file is claimed by an atomic rename.
    Stops at the first database outage (the file goes back); an unreadable file is set aside as
    ``.bad`` with a log line and the others still drain.
    """
    replayed = 0
    with _lock:
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

    def loop() -> None:
        while not stop.wait(interval):
            try:
                drain()
            except Exception:  # keep draining later
                log.exception("ingest.spool_drain_failed")

    thread = threading.Thread(target=loop, name="spool-drainer", daemon=True)
    thread.start()
    return stop.set
