"""Prometheus metrics.

Two kinds, so that several web processes on several machines all give correct figures:

* **Shared state, computed at scrape time** from PostgreSQL and Redis: calls by state, events
  ingested, dead letters, queue lengths, failed jobs, workers, the time of the last event per
  provider.  Every web process reports the same values; aggregate them with ``max`` (not ``sum``)
  across instances, or scrape one instance for them.
* **Per process**: the webhook latency histogram and the live screens connected to this process.
  Each process is its own scrape target (the systemd units run one uvicorn process per port).  When
  one uvicorn runs several workers (``hotline serve --workers N``) set ``PROMETHEUS_MULTIPROC_DIR`` to
  an empty directory writable by the service; the histogram is then shared through it and any worker
  answers for all of them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
CACHE_SECONDS = 5.0  # scrapes closer together than this reuse the database figures

_process_registry = CollectorRegistry(auto_describe=True)
WEBHOOK_LATENCY = Histogram(
    "hotline_webhook_request_duration_seconds",
    "Time to answer a provider webhook (Twilio), by hook and HTTP status",
    ["hook", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
    registry=None if MULTIPROC else _process_registry,
)


class SharedStateCollector(Collector):
    """Figures every process computes the same way from the database and Redis, when scraped."""

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > CACHE_SECONDS:
                self._cached = (now, [*self._database(), *self._redis()])
            metrics = list(self._cached[1])
        yield from metrics
        yield from self._process()

    # -- PostgreSQL / SQLite
    def _database(self) -> list[Metric]:
        from sqlalchemy import func, select

        from hotline.calls.models import Call, DeadLetter, RawEvent
        from hotline.centres.models import Centre
        from hotline.db import session_scope

        up = GaugeMetricFamily("hotline_database_up", "1 when the database answered this scrape")
        calls = GaugeMetricFamily("hotline_calls", "Calls by centre and state", labels=["centre", "status"])
        events = CounterMetricFamily("hotline_events_ingested", "Provider events stored (append-only)",
                                     labels=["provider"])
        last = GaugeMetricFamily("hotline_last_event_timestamp_seconds",
                                 "When the newest provider event arrived (alert when a listener falls silent)",
                                 labels=["provider"])
        dead = GaugeMetricFamily("hotline_dead_letters", "Events that could not be applied", labels=["state"])
        try:
            with session_scope() as db:
                centres = dict(db.execute(select(Centre.id, Centre.code)).all())
                for centre_id, status, n in db.execute(
                        select(Call.centre_id, Call.status, func.count()).group_by(Call.centre_id, Call.status)):
                    calls.add_metric([centres.get(centre_id, str(centre_id)), status], n)
                for provider, n, newest in db.execute(
                        select(RawEvent.provider, func.count(), func.max(RawEvent.received_at))
                        .group_by(RawEvent.provider)):
                    events.add_metric([provider], n)
                    if newest is not None:
                        last.add_metric([provider], _timestamp(newest))
                unresolved = db.scalar(select(func.count()).select_from(DeadLetter)
                                       .where(DeadLetter.resolved_at.is_(None))) or 0
                resolved = db.scalar(select(func.count()).select_from(DeadLetter)
                                     .where(DeadLetter.resolved_at.is_not(None))) or 0
                dead.add_metric(["unresolved"], unresolved)
                dead.add_metric(["resolved"], resolved)
        except Exception as exc:  # noqa: BLE001 - a scrape reports the outage rather than failing
            log.warning("metrics.database_failed", extra={"reason": type(exc).__name__})
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, calls, events, last, dead]

    # -- Redis / RQ
    def _redis(self) -> list[Metric]:
        from hotline.queue import QUEUES, get_redis

        conn = get_redis()
        if conn is None:
            return []
        up = GaugeMetricFamily("hotline_redis_up", "1 when Redis answered this scrape")
        length = GaugeMetricFamily("hotline_queue_jobs", "Jobs waiting in each queue", labels=["queue"])
        failed = GaugeMetricFamily("hotline_jobs_failed", "Jobs that failed after their retries (RQ failed registry)",
                                   labels=["queue"])
        scheduled = GaugeMetricFamily("hotline_jobs_scheduled", "Jobs waiting for a retry or a set time",
                                      labels=["queue"])
        workers = GaugeMetricFamily("hotline_workers", "hotline worker processes registered in Redis")
        try:
            from rq import Queue, Worker

            for name in QUEUES:
                q = Queue(name, connection=conn)
                length.add_metric([name], q.count)
                failed.add_metric([name], q.failed_job_registry.count)
                scheduled.add_metric([name], q.scheduled_job_registry.count)
            workers.add_metric([], Worker.count(connection=conn))
        except Exception as exc:  # noqa: BLE001 - a scrape reports Redis down (up=0) rather than failing
            log.warning("metrics.redis_failed", extra={"reason": type(exc).__name__})
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, length, failed, scheduled, workers]

    # -- this process
    def _process(self) -> list[Metric]:
        out: list[Metric] = []
        from hotline.settings import get_settings

        spool = Path(get_settings().data_dir) / "spool"
        files = GaugeMetricFamily("hotline_spool_files", "Event files waiting on this machine's disk spool "
                                  "(written while the database was unreachable)")
        files.add_metric([], len([*spool.glob("*.jsonl"), *spool.glob("*.claimed-*")]) if spool.is_dir() else 0)
        out.append(files)
        from hotline.ingest import spool as ingest_spool

        state = ingest_spool.status()
        held = GaugeMetricFamily("hotline_spool_memory_events", "Events this process holds in memory because "
                                 "the disk spool could not be written (disk full, I/O error)")
        held.add_metric([], state["memory_events"])
        failures = CounterMetricFamily("hotline_spool_disk_failures", "Writes to the disk spool that failed "
                                       "in this process")
        failures.add_metric([], state["disk_failures"])
        lost = CounterMetricFamily("hotline_spool_events_lost", "Events this process could keep neither on "
                                   "disk nor in memory")
        lost.add_metric([], state["lost"])
        out.extend([held, failures, lost])
        hub = getattr(getattr(self.app, "state", None), "live_hub", None)
        if hub is not None:
            screens = GaugeMetricFamily("hotline_live_screens", "Live screens connected to this web process")
            screens.add_metric([], hub.connected())
            out.append(screens)
        return out


def _timestamp(value: Any) -> float:
    from datetime import timezone

    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return float(value.timestamp())


def render(app: Any = None) -> bytes:
    """The text exposition of every metric, for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    state = getattr(app, "state", None)
    collector = getattr(state, "ops_metrics", None)
    if collector is None:
        collector = SharedStateCollector(app)
        if state is not None:
            state.ops_metrics = collector  # one per process: its short cache spares the database
    registry.register(collector)
    if MULTIPROC:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client is untyped here
    else:
        for collector in list(_process_registry._collector_to_names):  # our own registry
            registry.register(collector)
    return generate_latest(registry)


class WebhookTimer:
    """Pure ASGI middleware timing ``/webhooks/…`` requests (streaming responses pass untouched)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope.get("type") != "http" or not path.startswith("/webhooks/"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_status(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                status["code"] = message.get("status", 500)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            hook = path.removeprefix("/webhooks/").strip("/") or "-"
            if status["code"] == 404 or len(hook) > 48 or hook.count("/") > 2:
                hook = "unknown"  # bounded labels: made-up paths do not grow the series
            WEBHOOK_LATENCY.labels(hook, str(status["code"])).observe(time.perf_counter() - start)
