"""``hotline worker`` against the real Redis, and a Redis outage that must not stop ingest."""

from __future__ import annotations

import logging

from sqlalchemy import select

from hotline.calls.models import Call
from hotline.cli import main
from hotline.db import session_scope
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.spool import submit
from hotline.settings import reset_settings
from tests.core.test_ingest import T0


def test_worker_runs_queued_jobs_with_the_real_redis(sqlite_env, redis_url, monkeypatch, tmp_path):
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    reset_settings()
    from hotline.queue import enqueue

    marker = tmp_path / "ran.txt"
    job_id = enqueue(marker.write_text, "done", job_id="test-job-1")
    assert job_id == "test-job-1" and not marker.exists()
    assert main(["worker", "--burst"]) == 0
    assert marker.read_text() == "done"


def test_worker_without_redis_says_what_to_set(sqlite_env, capsys):
    assert main(["worker", "--burst"]) == 1
    assert "HOTLINE_REDIS_URL" in capsys.readouterr().err


def test_a_redis_outage_does_not_stop_ingest(sqlite_env, monkeypatch, caplog):
    monkeypatch.setenv("HOTLINE_REDIS_URL", "redis://127.0.0.1:9/0")  # nothing listens there
    reset_settings()
    with caplog.at_level(logging.WARNING):
        result = submit([RawIn("asterisk", "r1", T0, "x", events=[CallEvent(Kind.STARTED, "asterisk", "L1", T0)])])
    assert result is not None and result.applied == 1
    with session_scope() as s:
        assert s.scalar(select(Call.provider_key)) == "L1"
    assert any(r.getMessage() == "bus.publish_failed" for r in caplog.records)
