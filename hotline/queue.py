"""Background jobs: RQ on Redis when ``HOTLINE_REDIS_URL`` is set, an in-process pool otherwise.

The in-process pool exists for the demo and single-machine trials: it runs the same job
functions with the same retry schedule, but nothing survives a restart.

Periodic tasks and worker start hooks
-------------------------------------
Each domain declared in ``hotline.domains`` may give

* ``periodic`` - ``Periodic(name, every, func)``: ``func()`` (no arguments) runs
  about every ``every`` seconds, **cluster-wide at most once per interval** however many workers
  run: before acting, a scheduler takes the Redis lease ``hotline:periodic:<name>`` with
  ``SET NX EX every``; whoever does not get it skips.  The lease outlives a crash, so a task never
  runs twice in one interval, and is taken again in the next one.
* ``worker_start`` hooks ``() -> None`` - called once when a worker starts (catch-up work, e.g. building
  days missed while no worker ran).  It should be cheap: enqueue jobs rather than do long work.

Under Redis, ``hotline worker`` calls every start hook, runs one scheduler tick, then
keeps a daemon scheduler thread ticking every ``TICK_SECONDS`` (or the shortest ``every``) while
the RQ worker (started with RQ's scheduler) works; ``--burst`` runs the hooks and one tick and
exits when the queues are empty.  Without Redis (the demo, a single machine), the web process does
the same in a daemon thread started from the application's lifespan; in-process, the lease is a
timestamp kept in memory.  ``HOTLINE_PERIODIC_IN_WEB`` turns that thread off (it is off by default
when ``HOTLINE_ENVIRONMENT=test``).  A periodic ``func`` that fails is logged and tried again at
the next interval; for retries with backoff, let ``func`` ``enqueue(...)`` its real work with
``retry_intervals``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hotline.settings import get_settings

log = logging.getLogger(__name__)

QUEUES = ("high", "default", "low")
TICK_SECONDS = 30
LEASE_PREFIX = "hotline:periodic:"
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


_clients: dict[str, redis.Redis] = {}


if TYPE_CHECKING:
    import redis


def get_redis() -> redis.Redis | None:
    """One client (and connection pool) per Redis URL per process: a new client per enqueue
    made queueing cost ~11 ms a job.  redis-py resets the pool in a forked child by itself."""
    url = get_settings().redis_url
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        import redis

        client = _clients.setdefault(url, redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10))
    return client


def _inprocess() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="job")
        return _pool


def enqueue(func: Callable[..., Any], *args: Any, queue: str = "default", job_id: str | None = None,
            retry_intervals: Sequence[int] = (), **kwargs: Any) -> str | None:
    """Queue ``func(*args, **kwargs)``; retries wait ``retry_intervals`` seconds in turn."""
    conn = get_redis()
    if conn is not None:
        from rq import Queue, Retry

        retry = Retry(max=len(retry_intervals), interval=list(retry_intervals)) if retry_intervals else None
        job = Queue(queue, connection=conn).enqueue(func, *args, job_id=job_id, retry=retry, **kwargs)
        return job.id

    def run() -> None:
        for attempt, wait in enumerate([0, *retry_intervals]):
            if wait:
                time.sleep(wait)
            try:
                func(*args, **kwargs)
                return
            except Exception:  # logged, retried
                log.exception("job.failed", extra={"job": getattr(func, "__name__", str(func)), "attempt": attempt + 1})

    _inprocess().submit(run)
    return job_id


def run_worker(queues: Sequence[str] = QUEUES, *, burst: bool = False, fork: bool = False) -> None:
    """``hotline worker``: an RQ worker with RQ's scheduler.

    Jobs run in the worker process itself (RQ's SimpleWorker) unless ``fork`` is set: forking
    this process costs ~140 ms per job, which capped two workers at under ten referral
    deliveries a second (bench/referral_bench.py).  Our jobs are idempotent and claim their
    work in the database, so a crash loses nothing; ``--fork`` isolates each job instead."""
    conn = get_redis()
    if conn is None:
        raise RuntimeError(
            "hotline worker needs Redis: set HOTLINE_REDIS_URL (for example redis://127.0.0.1:6379/0). "
            "The demo runs its jobs in-process and needs no worker."
        )
    from rq import Queue, SimpleWorker, Worker

    worker_class = Worker if fork else SimpleWorker
    run_start_hooks()
    tick()
    stop = None if burst else start_scheduler()
    try:
        worker = worker_class([Queue(q, connection=conn) for q in queues], connection=conn)
        worker.work(with_scheduler=True, burst=burst)
    finally:
        if stop is not None:
            stop()


# ---------------------------------------------------------------------- periodic tasks
@dataclass(frozen=True)
class Periodic:
    """``func()`` runs about every ``every`` seconds, cluster-wide at most once per interval."""

    name: str
    every: int  # seconds
    func: Callable[[], object]  # what it returns (e.g. a count) is ignored


def periodic_tasks() -> list[Periodic]:
    from hotline import domains

    return domains.periodic_tasks()


def start_hooks() -> list[tuple[str, Callable[[], None]]]:
    """``(domain name, hook)`` for every worker start hook."""
    from hotline import domains

    return domains.worker_start_hooks()


def run_start_hooks() -> None:
    """Call every start hook; one failing hook is logged and does not stop the others."""
    for domain, hook in start_hooks():
        try:
            hook()
        except Exception:  # logged; the worker still starts
            log.exception("worker.start_hook_failed", extra={"domain": domain})


_local_leases: dict[str, float] = {}
_local_lock = threading.Lock()


def take_lease(name: str, seconds: int) -> bool:
    """True for exactly one caller per ``seconds`` (Redis ``SET NX EX``; in memory without Redis)."""
    seconds = max(1, int(seconds))
    conn = get_redis()
    if conn is not None:
        return bool(conn.set(LEASE_PREFIX + name, str(time.time()), nx=True, ex=seconds))
    now = time.monotonic()
    with _local_lock:
        if _local_leases.get(name, 0.0) > now:
            return False
        _local_leases[name] = now + seconds
        return True


def tick() -> list[str]:
    """Run every periodic task whose lease is free; returns the names that ran here."""
    ran = []
    for task in periodic_tasks():
        try:
            if not take_lease(task.name, task.every):
                continue
        except Exception:  # Redis unreachable: try at the next tick
            log.exception("periodic.lease_failed", extra={"task": task.name})
            continue
        ran.append(task.name)
        try:
            task.func()
        except Exception:  # logged; runs again next interval
            log.exception("periodic.failed", extra={"task": task.name})
    return ran


def start_scheduler(*, run_hooks: bool = False, interval: float | None = None) -> Callable[[], None]:
    """A daemon thread that ticks (after the start hooks when ``run_hooks``); returns a stop function."""
    stop = threading.Event()
    if interval is None:
        everies = [t.every for t in periodic_tasks()]
        interval = max(1, min([TICK_SECONDS, *everies]))

    def loop() -> None:
        if run_hooks:
            run_start_hooks()
            tick()
        while not stop.wait(interval):
            tick()

    threading.Thread(target=loop, name="periodic-scheduler", daemon=True).start()
    return stop.set


def web_scheduler_hook(app: Any) -> Callable[[], None] | None:
    """Lifespan hook: without Redis the web process runs start hooks and periodic tasks itself."""
    settings = get_settings()
    if settings.redis_url or not settings.periodic_in_web_enabled:
        return None
    return start_scheduler(run_hooks=True)
