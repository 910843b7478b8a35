"""Scaling out: whatever the number of workers, a periodic task runs once per interval
(the Redis lease in ``hotline.queue``), checked against the real Redis."""

from __future__ import annotations

import threading

from hotline.queue import LEASE_PREFIX, get_redis, take_lease
from hotline.settings import reset_settings


def test_one_lease_per_interval_among_many_concurrent_schedulers(sqlite_env, redis_url, monkeypatch):
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    reset_settings()
    start = threading.Barrier(8)
    won: list[bool] = []
    lock = threading.Lock()

    def scheduler() -> None:  # each with its own Redis connection, like separate worker processes
        start.wait()
        got = take_lease("ops-test-task", 30)
        with lock:
            won.append(got)

    threads = [threading.Thread(target=scheduler) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(won) == [False] * 7 + [True]
    ttl = get_redis().ttl(LEASE_PREFIX + "ops-test-task")
    assert 25 < ttl <= 30  # the next run may happen once the interval has passed, on any worker
    assert take_lease("ops-test-task", 30) is False
