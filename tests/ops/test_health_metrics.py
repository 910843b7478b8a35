"""/healthz, /readyz and /metrics through HTTP: TestClient, and a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hotline.settings import reset_settings
from tests.conftest import _configure
from tests.live.conftest import feed_call
from tests.twilio.conftest import CALL_SID, base_params, sign

TOKEN = "metrics-token-for-the-tests-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def app_client(env):
    from hotline.app import create_app

    with TestClient(create_app()) as c:
        yield c


def test_healthz_and_readyz_on_a_good_installation(app_client):
    r = app_client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = app_client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "redis": "not configured", "spool": "ok"}}
    assert r.headers["cache-control"] == "no-store"


def test_readyz_says_not_ready_on_an_unmigrated_database(tmp_path: Path, monkeypatch):
    _configure(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    from hotline.app import create_app

    with TestClient(create_app()) as c:
        assert c.get("/healthz").status_code == 200  # alive all the same
        r = c.get("/readyz")
    reset_settings()
    assert r.status_code == 503
    assert r.json()["status"] == "not ready" and "run hotline db upgrade" in r.json()["checks"]["database"]


def test_readyz_says_not_ready_when_redis_is_down(env, monkeypatch):
    monkeypatch.setenv("HOTLINE_REDIS_URL", "redis://127.0.0.1:9/0")
    reset_settings()
    from hotline.app import create_app

    with TestClient(create_app()) as c:
        r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"] == {"database": "ok",
                                                           "redis": "redis unreachable (ConnectionError)",
                                                           "spool": "ok"}


def test_metrics_need_the_token_when_one_is_set(env, monkeypatch):
    from hotline.app import create_app

    with TestClient(create_app()) as c:
        r = c.get("/metrics")  # TestClient is not a direct local connection
        assert r.status_code == 403 and "HOTLINE_METRICS_TOKEN" in r.text
        monkeypatch.setenv("HOTLINE_METRICS_TOKEN", TOKEN)
        reset_settings()
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


def test_metrics_count_calls_events_dead_letters_and_time_webhooks(env, monkeypatch):
    monkeypatch.setenv("HOTLINE_METRICS_TOKEN", TOKEN)
    reset_settings()
    from hotline.app import create_app
    from hotline.ops import metrics as metrics_module

    monkeypatch.setattr(metrics_module, "CACHE_SECONDS", 0.0)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app()) as c:
        before = samples(c.get("/metrics", headers=auth).text)
        assert value(before, "hotline_database_up") == 1
        assert ("hotline_redis_up", ()) not in before  # no Redis configured: no Redis figures
        feed_call(agent="PJSIP/tvv1", answered=True)
        feed_call(agent="PJSIP/tvv1", answered=True, ended=True)
        feed_call(agent=None)
        # a signed Twilio call, and one with a bad signature (kept as a dead letter)
        params = base_params()
        path = "/webhooks/twilio/voice"
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        r = c.post(path, content=urlencode(params), headers={**hdrs, "X-Twilio-Signature": sign(path, params)})
        assert r.status_code == 200 and "<Enqueue" in r.text
        bad = base_params(CallSid=CALL_SID[:-1] + "9")
        r = c.post(path, content=urlencode(bad), headers={**hdrs, "X-Twilio-Signature": "forged"})
        assert r.status_code == 403
        found = samples(c.get("/metrics", headers=auth).text)

    from sqlalchemy import func, select

    from hotline.calls.models import Call, DeadLetter, RawEvent
    from hotline.db import session_scope

    with session_scope() as db:
        by_status = dict(db.execute(select(Call.status, func.count()).group_by(Call.status)).all())
        raw = dict(db.execute(select(RawEvent.provider, func.count()).group_by(RawEvent.provider)).all())
        dead = db.scalar(select(func.count()).select_from(DeadLetter))
    assert sum(v for (n, _), v in found.items() if n == "hotline_calls") == 4
    for status, n in by_status.items():
        assert value(found, "hotline_calls", centre="default", status=status) == n
    assert value(found, "hotline_calls", centre="default", status="completed") == 1
    assert value(found, "hotline_events_ingested_total", provider="asterisk") == raw["asterisk"] >= 9
    assert value(found, "hotline_events_ingested_total", provider="twilio") == raw["twilio"]
    assert value(found, "hotline_dead_letters", state="unresolved") == dead >= 1
    assert value(found, "hotline_last_event_timestamp_seconds", provider="twilio") > 1.7e9
    ok = value(found, "hotline_webhook_request_duration_seconds_count", hook="twilio/voice", status="200")
    refused = value(found, "hotline_webhook_request_duration_seconds_count", hook="twilio/voice", status="403")
    assert ok >= 1 and refused >= 1
    assert value(found, "hotline_webhook_request_duration_seconds_bucket", hook="twilio/voice", status="200",
                 le="+Inf") == ok
    assert value(found, "hotline_spool_files") == 0 and value(found, "hotline_live_screens") == 0


def test_metrics_report_queue_lengths_and_failed_jobs_from_redis(sqlite_env, redis_url, monkeypatch):
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    monkeypatch.setenv("HOTLINE_METRICS_TOKEN", TOKEN)
    reset_settings()
    from rq import Queue

    from hotline.app import create_app
    from hotline.cli import main
    from hotline.ops import metrics as metrics_module
    from hotline.queue import enqueue, get_redis

    # Scrapes are cached for a few seconds: an earlier test's scrape must not answer for this one.
    monkeypatch.setattr(metrics_module, "CACHE_SECONDS", 0.0)
    enqueue(os.path.getsize, "/nonexistent/file", queue="low")  # fails when run
    enqueue(os.path.exists, "/", queue="default")
    enqueue(os.path.exists, "/", queue="default")
    with TestClient(create_app()) as c:
        found = samples(c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text)
    assert value(found, "hotline_redis_up") == 1 and value(found, "hotline_workers") == 0
    assert value(found, "hotline_queue_jobs", queue="default") == 2
    assert value(found, "hotline_queue_jobs", queue="low") == 1
    assert value(found, "hotline_jobs_failed", queue="low") == 0
    assert main(["worker", "--burst"]) == 0
    assert Queue("low", connection=get_redis()).failed_job_registry.count == 1
    with TestClient(create_app()) as c:
        found = samples(c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text)
    assert value(found, "hotline_queue_jobs", queue="default") == 0
    assert value(found, "hotline_jobs_failed", queue="low") == 1


def test_metrics_are_open_to_a_direct_local_scrape_only(sqlite_env):
    """Over real TCP: 127.0.0.1 may read them; the same request forwarded by a proxy may not."""
    from tests.live.sse_helpers import LiveServer

    with LiveServer() as server:
        r = httpx.get(f"{server.url}/metrics")
        assert r.status_code == 200 and "hotline_database_up 1.0" in r.text
        r = httpx.get(f"{server.url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 403
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{server.url}/readyz").status_code == 200


MULTIPROC_SCRIPT = """
import os, sys
from hotline.ops import metrics
assert metrics.MULTIPROC
metrics.WEBHOOK_LATENCY.labels("twilio/voice", "200").observe(0.02)
children = []
for n in range(2):  # two more worker processes, as uvicorn --workers forks them
    pid = os.fork()
    if pid == 0:
        for _ in range(n + 1):
            metrics.WEBHOOK_LATENCY.labels("twilio/voice", "200").observe(0.2)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
sys.stdout.write(metrics.render().decode())
"""


def test_one_server_with_several_workers_adds_up_every_workers_timings(sqlite_env, tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, whichever worker answers the scrape reports all of them."""
    import subprocess

    from tests.ops.conftest import hotline_env

    folder = tmp_path / "prom"
    folder.mkdir()
    result = subprocess.run([sys.executable, "-c", MULTIPROC_SCRIPT], capture_output=True, text=True, timeout=60,
                            env=hotline_env(PROMETHEUS_MULTIPROC_DIR=str(folder)))
    assert result.returncode == 0, result.stderr
    found = samples(result.stdout)
    assert value(found, "hotline_webhook_request_duration_seconds_count", hook="twilio/voice", status="200") == 4
    assert value(found, "hotline_webhook_request_duration_seconds_bucket", hook="twilio/voice", status="200",
                 le="0.025") == 1
    assert value(found, "hotline_database_up") == 1  # the shared figures come along
