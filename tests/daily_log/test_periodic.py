"""Periodic tasks and worker start hooks (hotline.queue): at most once per interval across every
scheduler, through the real Redis lease, and in-process without Redis."""

from __future__ import annotations

import threading
import time

import pytest

from hotline import domains, queue
from tests.daily_log import periodic_probe

# The scheduler does not touch the database: one backend is enough.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _probe_domain(name: str) -> domains.Domain:
    import tests.daily_log

    return domains.Domain(name, tests.daily_log, lambda: domains.Wiring(
        periodic=tuple(periodic_probe.PERIODIC), worker_start=(lambda: periodic_probe.on_worker_start(),)))


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.setattr(domains, "DOMAINS", (_probe_domain("probe"),))
    periodic_probe.RUNS.clear()
    queue._local_leases.clear()
    yield periodic_probe.RUNS
    periodic_probe.RUNS.clear()


def test_many_schedulers_against_redis_run_a_task_once_per_interval(env, redis_url, monkeypatch, probe):
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    from hotline.settings import reset_settings

    reset_settings()
    assert [t.name for t in queue.periodic_tasks()] == ["probe"]
    barrier = threading.Barrier(6)
    ran: list[list[str]] = []

    def scheduler() -> None:
        barrier.wait()
        ran.append(queue.tick())

    threads = [threading.Thread(target=scheduler) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(len, ran)) == [0, 0, 0, 0, 0, 1]
    assert probe == ["task"]
    assert queue.tick() == []  # the lease lives for the whole interval
    import redis

    conn = redis.Redis.from_url(redis_url)
    ttl = conn.ttl("hotline:periodic:probe")
    assert 55 <= ttl <= 60
    conn.delete("hotline:periodic:probe")  # the interval has passed
    assert queue.tick() == ["probe"] and probe == ["task", "task"]


def test_without_redis_the_web_process_runs_hooks_and_tasks(env, monkeypatch, probe):
    monkeypatch.setenv("HOTLINE_PERIODIC_IN_WEB", "true")
    from fastapi.testclient import TestClient

    from hotline.app import create_app
    from hotline.settings import reset_settings

    reset_settings()
    with TestClient(create_app()):
        deadline = time.monotonic() + 5
        while probe[:2] != ["start", "task"] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert probe[:2] == ["start", "task"]
    assert probe.count("task") == 1


def test_tests_and_redis_setups_do_not_start_the_web_scheduler(env, probe):
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    with TestClient(create_app()):
        time.sleep(0.3)
    assert probe == []


def test_a_failing_start_hook_does_not_stop_the_others(env, monkeypatch, probe):
    def boom() -> None:
        raise RuntimeError("broken hook")

    monkeypatch.setattr(periodic_probe, "on_worker_start", boom)
    monkeypatch.setattr(domains, "DOMAINS", (_probe_domain("one"), _probe_domain("two")))
    queue.run_start_hooks()  # logs, does not raise
    assert queue.tick() == ["probe"]
