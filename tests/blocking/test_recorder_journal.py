"""The blocked calls' write-ahead journal (#17 part 3; ``blocking.recorder``): each web process
appends a blocked call (and a key press) to its own journal file, fsynced, before the answer, and
empties it once the call is written. A journal whose process is gone (its lock is free: a kill
releases it too) is replayed by the next process that starts, or by a living one within
``RETRY_SECONDS``; a call already recorded is not recorded twice, a line torn by the kill is
skipped, and the journal of a living process is left alone. When the disk refuses the journal, the
caller is answered and the call recorded as before; a slow disk delays the answer by
``WAL_BUDGET`` at most. (The kill itself, on a real server:
tests/faults/test_blocked_call_killed.py.)"""

from __future__ import annotations

import fcntl
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from blocking import recorder as recorder_module
from blocking.models import BlockedCall
from blocking.recorder import Entry, recorder
from hotline.db import session_scope
from hotline.settings import get_settings
from tests.helpers import wait_for

API = {"Authorization": "Bearer test-api-token"}
NUMBER = "0912345678"
AT = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=3)


def _rows() -> list[tuple[str, str, bool]]:
    with session_scope() as db:
        return sorted((r.provider, r.call_ref, r.pressed_for_supervisor) for r in db.scalars(select(BlockedCall)))


def _folder() -> Path:
    folder = get_settings().spool_dir / "blocked-calls"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _dead_journal(*entries: Entry, torn: str = "") -> Path:
    """A journal as a process killed outright leaves it (nobody holds its lock)."""
    path = _folder() / f"{1_000_000 + len(entries)}-99999-deadbeef.wal"
    path.write_text("".join(e.to_json() + "\n" for e in entries) + torn, "utf-8")
    return path


def _block() -> None:
    from hotline.cli import main

    assert main(["block", "add", NUMBER, "--for", "2d", "--reason", "quấy rối"]) == 0


def test_a_dead_process_journal_is_replayed_at_start_each_call_once(env):
    from hotline.app import create_app

    _block()
    with session_scope() as db:  # this one reached the database before the kill
        db.add(BlockedCall(at=AT, provider="asterisk", call_ref="ast-written", block_id=1))
    journal = _dead_journal(
        Entry("blocked", "asterisk", "ast-written", AT, 1),
        Entry("blocked", "twilio", "CA" + "1" * 32, AT, 1),
        Entry("pressed", "twilio", "CA" + "1" * 32, AT + timedelta(seconds=4)),
        torn='{"kind": "blocked", "provider": "aster')  # the kill came in the middle of this write
    with TestClient(create_app()):
        wait_for(lambda: not journal.exists() and recorder.idle() and len(_rows()) == 2,
                 what="the dead process's journal replayed")
        assert _rows() == [("asterisk", "ast-written", False), ("twilio", "CA" + "1" * 32, True)]
        with session_scope() as db:
            at = db.scalars(select(BlockedCall.at).where(BlockedCall.provider == "twilio")).one()
        assert at == AT  # dated when the call came
        assert not list(_folder().glob("*.jsonl")) and not list(_folder().glob("*.wal"))


def test_a_living_process_journal_is_left_alone_until_its_process_is_gone(env, monkeypatch):
    from hotline.app import create_app

    monkeypatch.setattr(recorder_module, "RETRY_SECONDS", 0.2)
    _block()
    journal = _dead_journal(Entry("blocked", "asterisk", "ast-alive", AT, 1))
    owner = os.open(journal, os.O_RDONLY)  # its owner lives: it holds the journal's lock
    try:
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with TestClient(create_app()):
            assert wait_for(lambda: recorder.idle(), what="the start's replay")
            for _ in range(3):  # a few rounds of retries
                assert recorder.idle() and journal.exists() and _rows() == []
                time.sleep(0.3)
            os.close(owner)  # the owner dies (a kill releases the lock as well)
            owner = -1
            wait_for(lambda: _rows() == [("asterisk", "ast-alive", False)], timeout=10,
                     what="the journal replayed once its process is gone")
            assert not journal.exists()
    finally:
        if owner >= 0:
            os.close(owner)


def test_the_journal_holds_a_blocked_call_until_it_is_written(env):
    from hotline.app import create_app

    _block()
    with TestClient(create_app()) as client:
        answer = client.get("/api/blocking/check", params={"number": NUMBER, "call": "ast-1"}, headers=API)
        assert answer.text == "blocked=1"
        wait_for(lambda: _rows() == [("asterisk", "ast-1", False)] and recorder.idle(), what="the call written")
        journals = list(_folder().glob("*.wal"))
        assert len(journals) == 1 and journals[0].stat().st_size == 0  # emptied after the write
    assert not list(_folder().glob("*.wal"))  # removed when the process stops with nothing pending


def test_a_disk_that_refuses_the_journal_never_fails_the_caller(env):
    from hotline.app import create_app

    _block()
    folder = get_settings().spool_dir / "blocked-calls"
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a directory")  # no journal can be written under it (even as root)
    with TestClient(create_app()) as client:
        answer = client.get("/api/blocking/check", params={"number": NUMBER, "call": "ast-nodisk"}, headers=API)
        assert answer.status_code == 200 and answer.text == "blocked=1"
        wait_for(lambda: _rows() == [("asterisk", "ast-nodisk", False)], what="the call written all the same")


def test_a_slow_disk_delays_the_answer_by_the_budget_at_most(env, monkeypatch):
    from hotline.app import create_app

    def stalled(fd: int) -> None:  # a disk that takes 1.5 s to sync
        time.sleep(1.5)
        os.fsync(fd)

    monkeypatch.setattr(recorder_module, "_sync", stalled)
    _block()
    with TestClient(create_app()) as client:
        started = time.monotonic()
        answer = client.get("/api/blocking/check", params={"number": NUMBER, "call": "ast-slow"}, headers=API)
        took = time.monotonic() - started
        assert answer.text == "blocked=1"
        assert took < recorder_module.WAL_BUDGET + 0.5, f"answered after {took:.2f} s"
        wait_for(lambda: _rows() == [("asterisk", "ast-slow", False)], what="the call written once the disk synced")


@pytest.fixture(autouse=True)
def _fresh_journal():
    """The recorder is one per process: each test starts without a journal file of its own."""
    recorder.stop()
    yield
    recorder.stop()
