"""Key rotation while the service runs: every row stays readable, the old key's count drops to
zero, and caller history keeps matching across number-hash keys."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from hotline.calls.models import Call, CallRecord, RawEvent
from hotline.db import session_scope
from hotline.records.service import caller_history
from hotline.security import crypto
from hotline.security.service import key_status, rotate_keys
from tests.live.conftest import call_id, feed_call
from tests.security.helpers import raw_rows, use_keys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _numbers(n: int, start: int = 0) -> list[str]:
    return [f"09123{i:05d}" for i in range(start, start + n)]


def _add_calls(numbers: list[str]) -> dict[int, tuple[str, str]]:
    """Calls through the ingestor, each with a record holding a note; id -> (number, note)."""
    out = {}
    for number in numbers:
        cid = call_id(feed_call(caller=number, agent=None))
        note = f"ghi chú về người gọi {number}"
        with session_scope() as db:
            call = db.get(Call, cid)
            assert call is not None
            db.add(CallRecord(call_id=cid, centre_id=call.centre_id, notes=note, state="draft"))
        out[cid] = ("+84" + number[1:], note)
    return out


def _check_all(expected: dict[int, tuple[str, str]]) -> int:
    with session_scope() as db:
        rows = db.execute(select(Call.id, Call.caller_number, CallRecord.notes)
                          .join(CallRecord, CallRecord.call_id == Call.id)).all()
        payloads = list(db.scalars(select(RawEvent.payload)))
    seen = 0
    for cid, number, note in rows:
        if cid in expected:
            assert (number, note) == expected[cid]
            seen += 1
    assert all(p.startswith("test ") for p in payloads)
    return seen


def test_rotation_while_the_service_runs(env, monkeypatch):
    old_key, new_key = crypto.generate_key(), crypto.generate_key()
    use_keys(monkeypatch, encryption=old_key)
    old_kid = crypto.keyring().current
    expected = _add_calls(_numbers(15))
    with session_scope() as db:
        before = key_status(db)
    assert sum(before.encryption[old_kid].values()) >= 15 * 3  # number, raw caller, note, payloads

    # The operator puts the new key first and restarts; the old one still decrypts.
    use_keys(monkeypatch, encryption=f"{new_key},{old_key}")
    new_kid = crypto.keyring().current
    assert new_kid != old_kid
    errors: list[BaseException] = []
    reads: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def service() -> None:  # the running application: new calls arrive, screens read records
        n = 1000
        try:
            while not stop.is_set():
                added = _add_calls(_numbers(1, n))
                with lock:
                    expected.update(added)
                    snapshot = dict(expected)
                reads.append(_check_all(snapshot))
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    worker = threading.Thread(target=service)
    worker.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "hotline", "keys", "rotate", "--batch-size", "7"],
                              cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)
        reads_during = len(reads)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "re-encrypted" in proc.stdout and new_kid in proc.stdout
    assert not errors, errors
    assert reads_during >= 1 and all(r >= 15 for r in reads)

    with session_scope() as db:
        after = key_status(db)
    assert old_kid not in after.encryption and "plaintext" not in after.encryption
    assert after.rows_left() == 0
    # The old key can now go: everything still reads.
    use_keys(monkeypatch, encryption=new_key)
    assert _check_all(expected) == len(expected)
    for (value,) in raw_rows("SELECT notes FROM call_records"):
        assert value.startswith(f"enc1:{new_kid}:")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the counting SQL runs on both elsewhere
def test_status_command_counts_rows_per_key(env, monkeypatch):
    old_key, new_key = crypto.generate_key(), crypto.generate_key()
    use_keys(monkeypatch, encryption=old_key)
    old_kid = crypto.keyring().current
    _add_calls(_numbers(3))
    use_keys(monkeypatch, encryption=f"{new_key},{old_key}")
    env_vars = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "hotline", "keys", "status"], cwd=ROOT, env=env_vars,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert old_kid in run.stdout and "older key" in run.stdout and "hotline keys rotate" in run.stdout
    assert "call_records.notes" in run.stdout
    # Without the old key its rows cannot be read: the status says which key to put back.
    use_keys(monkeypatch, encryption=new_key)
    run = subprocess.run([sys.executable, "-m", "hotline", "keys", "status"], cwd=ROOT, env=dict(os.environ),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and f"Put the missing keys back into HOTLINE_ENCRYPTION_KEYS: {old_kid}" in run.stdout


def test_number_hash_rotation_keeps_caller_history(env, monkeypatch):
    use_keys(monkeypatch, hashes="first-hash-key-0123456789")
    first = crypto.hash_keyring().current
    a1 = call_id(feed_call(caller="0912345678", agent=None, ended=True))
    time.sleep(0.01)
    a2 = call_id(feed_call(caller="+84 912 345 678", agent=None, ended=True))
    other = call_id(feed_call(caller="0987000111", agent=None, ended=True))
    with session_scope() as db:  # retention removed the first call's number; its hash stays
        call = db.get(Call, a1)
        assert call is not None and call.number_hash.startswith(first + ":")
        call.caller_number = None
        call.caller_raw = None

    use_keys(monkeypatch, hashes="second-hash-key-9876543210,first-hash-key-0123456789")
    second = crypto.hash_keyring().current
    time.sleep(0.01)
    a3 = call_id(feed_call(caller="0912 345 678", agent=None))

    def history() -> set[int]:
        with session_scope() as db:
            call = db.get(Call, a3)
            assert call is not None and call.number_hash.startswith(second + ":")
            return {h["call_id"] for h in caller_history(db, call=call)}

    assert history() == {a1, a2}  # before rotation: old hashes match through the old key
    result = rotate_keys(encryption=False)
    assert result.rehashed == 2 and result.hash_kept == 1  # a2 and the other caller; a1 has no number
    assert history() == {a1, a2}
    with session_scope() as db:
        status = key_status(db)
        assert status.hashes[first] == {"rows": 1, "number_removed": 1}
        assert status.hashes[second]["rows"] == 3 and status.rows_left() == 0
        assert db.get(Call, other).number_hash.startswith(second + ":")
    # Once the old hash key is removed, the call whose number is gone no longer links (documented).
    use_keys(monkeypatch, hashes="second-hash-key-9876543210")
    assert history() == {a2}


def test_hashes_written_before_key_ids_still_match_and_are_rehashed(env, monkeypatch):
    from hotline.phone import number_hash
    from tests.security.helpers import raw_exec

    use_keys(monkeypatch, hashes="the-old-secret-key-0123456789")
    old = call_id(feed_call(caller="0912345678", agent=None, ended=True))
    # As an earlier version stored it: the bare HMAC of the secret key, no key id.
    raw_exec("UPDATE calls SET number_hash = :h WHERE id = :id",
             h=number_hash("+84912345678", "the-old-secret-key-0123456789"), id=old)
    time.sleep(0.01)
    new = call_id(feed_call(caller="0912345678", agent=None))
    with session_scope() as db:
        assert key_status(db).hashes["legacy"] == {"rows": 1, "number_removed": 0}
        call = db.get(Call, new)
        assert [h["call_id"] for h in caller_history(db, call=call)] == [old]
    assert rotate_keys(encryption=False).rehashed == 1
    with session_scope() as db:
        assert "legacy" not in key_status(db).hashes
        assert [h["call_id"] for h in caller_history(db, call=db.get(Call, new))] == [old]
