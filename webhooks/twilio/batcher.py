"""Group commit for webhook events: a few threads apply what many requests brought, in few transactions.

Each request hands its raw events to ``submit()``; the future it gets says when the batch that
carries them is committed (or, when the database is down, written to the disk spool by
``hotline.ingest.spool``).  The webhooks answer once the events are in an in-flight file on disk
(``spool.hold``) and wait for the future after the answer; without that file, before it.  Batching spends one transaction, one routing
load and one publish on many events.  Events are sharded by call key over ``SHARDS`` threads, so
one call's events stay in order on one thread and two threads never wait on each other's rows.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from hotline.ingest import spool
from hotline.ingest.events import RawIn
from hotline.ingest.service import IngestResult

log = logging.getLogger(__name__)

MAX_BATCH = 256  # raw events per transaction
SHARDS = 4  # threads applying batches; database round trips of one overlap the others' work


def describe(exc: BaseException) -> str:
    """An error for a log line or a dead letter: its type and first line only.  Database errors
    go on to quote the statement's parameters, which may hold a caller's number."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]


def _resolve(future: Future[bool], value: bool) -> None:
    """Tell the waiting request; it may have stopped waiting (its time budget ran out)."""
    if future.set_running_or_notify_cancel():
        future.set_result(value)


class Batcher:
    def __init__(self, submit: Callable[[Sequence[RawIn]], IngestResult | None] = spool.submit):
        self._submit = submit
        self._queue: queue.SimpleQueue[tuple[list[RawIn], Future[bool]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, items: list[RawIn]) -> Future[bool]:
        """Keep ``items``; the future says True once committed, False once spooled to disk."""
        self._ensure_thread()
        future: Future[bool] = Future()
        self._queue.put((items, future))
        return future

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="twilio-batcher", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Apply what is queued, then end the thread."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._apply(batch)
            if stop:
                return

    def _apply(self, batch: list[tuple[list[RawIn], Future[bool]]]) -> None:
        items = [raw for raws, _ in batch for raw in raws]
        try:
            committed = self._submit(items) is not None
        except Exception as exc:  # noqa: BLE001 - one bad request must not take the others down
            log.error("twilio.batch_failed", extra={"events": len(items), "reason": describe(exc)})
            for raws, future in batch:
                _resolve(future, self._alone(raws))
            return
        for _, future in batch:
            _resolve(future, committed)

    def _alone(self, raws: list[RawIn]) -> bool:
        try:
            return self._submit(raws) is not None
        except Exception as exc:  # noqa: BLE001 - kept as a dead letter with the reason, never dropped
            reason = f"could not be applied: {describe(exc)}"
            log.error("twilio.event_dead_lettered", extra={"reason": reason, "events": len(raws)})
            for raw in raws:
                raw.error, raw.events = reason, []
            try:
                return self._submit(raws) is not None
            except Exception as again:  # noqa: BLE001 - the disk spool is the last resort
                kept = spool.keep(raws)
                log.error("twilio.event_spooled_after_error", extra={"spool": kept.name, "kept": kept.where,
                                                                     "reason": describe(again)})
                return False


class ShardedBatcher:
    """``SHARDS`` batchers; a call's events always go to the same one."""

    def __init__(self, shards: int = SHARDS):
        self.shards = [Batcher() for _ in range(shards)]

    def submit(self, items: list[RawIn]) -> Future[bool]:
        key = next((i.provider_key for i in items if i.provider_key), "") or ""
        return self.shards[zlib.crc32(key.encode()) % len(self.shards)].submit(items)

    def stop(self) -> None:
        for shard in self.shards:
            shard.stop()


batcher = ShardedBatcher()
