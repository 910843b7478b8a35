"""Background jobs: RQ on Redis when ``HOTLINE_REDIS_URL`` is set, an in-process pool otherwise.

The in-process pool exists for the demo and single-machine trials: it runs the same job
functions with the same retry schedule, but nothing survives a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hotline.settings import get_settings

log = logging.getLogger(__name__)

QUEUES = ("high", "default", "low")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def get_redis():  # type: ignore[no-untyped-def]
    url = get_settings().redis_url
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)


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
            except Exception:  # noqa: BLE001 - logged, retried
                log.exception("job.failed", extra={"job": getattr(func, "__name__", str(func)), "attempt": attempt + 1})

    _inprocess().submit(run)
    return job_id


def run_worker(queues: Sequence[str] = QUEUES, *, burst: bool = False) -> None:
    """``hotline worker``: an RQ worker with RQ's scheduler."""
    conn = get_redis()
    if conn is None:
        raise RuntimeError(
            "hotline worker needs Redis: set HOTLINE_REDIS_URL (for example redis://127.0.0.1:6379/0). "
            "The demo runs its jobs in-process and needs no worker."
        )
    from rq import Queue, Worker

    worker = Worker([Queue(q, connection=conn) for q in queues], connection=conn)
    worker.work(with_scheduler=True, burst=burst)
