"""Faults (#17 "No caller lost"): Twilio's webhooks answer once a call's events are on disk, before
the database has committed them, and a web process killed (SIGKILL) in between loses nothing.

A real ``hotline serve`` on PostgreSQL.  The test holds a lock on ``raw_events`` (a statement that
would insert there waits), so the batch that carries a caller's events cannot commit: the voice
webhook must still answer with TwiML that enqueues the caller, leaving an in-flight file and no
spool file (before, it waited its 4 s database budget and spooled).  A status callback ending the
call is answered the same way.  Then the process is killed, the lock released, and a new process on
the same data directory replays the files it left: the call is recorded once, ended (missed: nobody
answered it), with each event stored once."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text

from hotline.calls.models import Call, RawEvent
from hotline.db import session_scope
from hotline.settings import Settings, reset_settings
from tests.conftest import _configure
from tests.helpers import wait_for
from tests.ops.conftest import Proc, free_port, hotline_env, wait_http
from tests.twilio.conftest import base_params, sign

pytestmark = pytest.mark.slow
CALL_SID = "CA" + "7" * 32


@pytest.fixture
def pg_env(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield _configure(monkeypatch, tmp_path, pg_url)
    reset_settings()


def _post(c: httpx.Client, path: str, params: dict[str, str]) -> httpx.Response:
    return c.post(path, content=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sign(path, params)})


def _calls() -> list[Call]:
    with session_scope() as db:
        return list(db.scalars(select(Call).where(Call.provider_key == CALL_SID)))


def _raw_events() -> int:
    with session_scope() as db:
        return int(db.scalar(select(func.count()).select_from(RawEvent).where(RawEvent.provider_key == CALL_SID))
                   or 0)


def test_a_web_process_killed_between_the_answer_and_the_commit_loses_no_caller(pg_env: Settings,
                                                                                  tmp_path: Path) -> None:
    spool_dir, inflight = pg_env.spool_dir, pg_env.spool_dir / "inflight"
    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = hotline_env()
    base = f"http://127.0.0.1:{port}"
    web = Proc("web", ["serve", "--port", str(port)], env, logs)
    again = None
    locker = create_engine(pg_env.database_url)
    try:
        wait_http(f"{base}/readyz", web, 120)
        with httpx.Client(base_url=base, timeout=30) as c, locker.connect() as lock:
            lock.execute(text("LOCK TABLE raw_events IN EXCLUSIVE MODE"))  # held until the rollback below
            voice = _post(c, "/webhooks/twilio/voice", base_params(CallSid=CALL_SID, CallStatus="ringing"))
            assert voice.status_code == 200, voice.text
            assert ET.fromstring(voice.text).find("Enqueue") is not None, voice.text  # the caller is queued
            ended = _post(c, "/webhooks/twilio/status", base_params(
                CallSid=CALL_SID, CallStatus="completed", CallDuration="95", SequenceNumber="3", CallbackSource="call-progress-events"))
            assert ended.status_code == 200, ended.text
            # Answered while nothing could be committed: the events are in flight on disk, not spooled.
            assert len(list(inflight.glob("*.jsonl"))) == 2, sorted(p.name for p in spool_dir.rglob("*"))
            assert not list(spool_dir.glob("*.jsonl"))
            assert _calls() == []
            web.proc.kill()  # SIGKILL between the answer and the commit
            web.proc.wait(10)
            web.stop()
            lock.rollback()
        again = Proc("web-again", ["serve", "--port", str(port)], env, logs)
        wait_http(f"{base}/readyz", again, 120)

        def replayed() -> bool:
            calls = _calls()
            return bool(calls) and calls[0].ended_at is not None and not list(spool_dir.rglob("*.jsonl"))

        try:
            wait_for(replayed, timeout=60, interval=0.5, what="the killed process's calls replayed from its files")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; calls {[(c.status, c.id) for c in _calls()]}, files "
                                 f"{sorted(p.name for p in spool_dir.rglob('*'))}; log: {again.output()[-3000:]}") from None
        calls = _calls()
        print(f"faults/twilio-answer-before-commit: calls recorded {len(calls)}, raw events {_raw_events()}, "
              f"files left {len(list(spool_dir.rglob('*.jsonl')))}")
        assert len(calls) == 1 and calls[0].status == "missed"  # ended in the queue: a missed call
        assert _raw_events() == 2  # each event once
        assert "ingest.inflight_recovered" in again.output()
    finally:
        locker.dispose()
        web.stop()
        if again is not None:
            again.stop()
