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
from hotline.settings import get_settings

log = logging.getLogger(__name__)
_lock = threading.Lock()

DB_ERRORS = (OperationalError, DBAPIError, ConnectionError, TimeoutError)


def _encode(item: RawIn) -> dict[str, Any]:
    data = asdict(item)
    data["received_at"] = item.received_at.isoformat()
    data["payload_bytes"] = base64.b64encode(item.payload_bytes).decode() if item.payload_bytes else None
    for ev in data["events"]:
        ev["at"] = ev["at"].isoformat()
        for live in ev["live"]:
            live["started_at"] = live["started_at"].isoformat() if live["started_at"] else None
    return data


def _decode(data: dict[str, Any]) -> RawIn:
    events = []
    for ev in data.pop("events"):
        live = [LiveCall(**{**lc, "started_at": datetime.fromisoformat(lc["started_at"]) if lc["started_at"] else None})
                for lc in ev.pop("live")]
        events.append(CallEvent(**{**ev, "kind": Kind(ev["kind"]), "at": datetime.fromisoformat(ev["at"]), "live": live}))
    raw = data.pop("payload_bytes")
    return RawIn(**{**data, "received_at": datetime.fromisoformat(data["received_at"]),
                    "payload_bytes": base64.b64decode(raw) if raw else None, "events": events})


def spool_dir() -> Path:
    return get_settings().spool_dir


def write(items: Sequence[RawIn]) -> Path:
    path = spool_dir() / f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(_encode(item), ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(path)
    return path


def pending_files() -> list[Path]:
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


def drain(*, ingest: Callable[[Sequence[RawIn]], IngestResult] = ingest_and_commit) -> int:
    """Replay every spooled file; returns how many events were replayed. Stops at the first outage."""
    replayed = 0
    with _lock:
        for path in pending_files():
            try:
                items = [_decode(json.loads(line)) for line in path.read_text("utf-8").splitlines() if line.strip()]
            except (ValueError, KeyError, TypeError) as exc:
                bad = path.with_suffix(".bad")
                path.rename(bad)
                log.error("ingest.spool_unreadable", extra={"spool": bad.name, "reason": str(exc)})
                continue
            try:
                ingest(items)
            except DB_ERRORS:
                return replayed
            path.unlink()
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
            except Exception:  # noqa: BLE001 - keep draining later
                log.exception("ingest.spool_drain_failed")

    thread = threading.Thread(target=loop, name="spool-drainer", daemon=True)
    thread.start()
    return stop.set
