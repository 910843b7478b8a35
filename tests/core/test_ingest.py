"""The one ingestor, through its entry point ``hotline.ingest.spool.submit`` (what adapters call)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from hotline.calls.models import Call, CallKey, DeadLetter, RawEvent
from hotline.centres.models import Centre
from hotline.db import session_scope
from hotline.ingest.events import CallEvent, Kind, LiveCall, RawIn
from hotline.ingest.spool import submit

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)


def raw(key: str, *events: CallEvent, error: str | None = None) -> RawIn:
    return RawIn("asterisk", key, T0, f"payload {key}", event_type="test", events=list(events), error=error)


def ev(kind: Kind, key: str = "L1", sec: float = 0, **kw) -> CallEvent:
    return CallEvent(kind, "asterisk", key, T0 + timedelta(seconds=sec), scope="pbx-1", **kw)


ANSWERED_CALL = [
    raw("1", ev(Kind.STARTED, channel="L1", caller="0901234567", dialed="1900")),
    raw("2", ev(Kind.QUEUED, sec=1, queue="hotline")),
    raw("3", ev(Kind.OFFERED, sec=1.5, agent="PJSIP/tvv1")),
    raw("4", ev(Kind.ANSWERED, sec=3, agent="PJSIP/tvv1", wait_seconds=2)),
    raw("5", ev(Kind.COMPLETED, sec=9, agent="PJSIP/tvv1", wait_seconds=2, talk_seconds=6, reason="agent")),
    raw("6", ev(Kind.ENDED, sec=9.2, channel="L1", reason="Normal Clearing")),
]


def calls() -> list[Call]:
    with session_scope() as s:
        return list(s.scalars(select(Call).order_by(Call.id)))


def count(model) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_answered_call_and_duplicates(env):
    assert submit(ANSWERED_CALL).applied == 6
    again = submit(ANSWERED_CALL)
    assert again.stored == 0 and again.duplicates == 6 and again.applied == 0
    [call] = calls()
    assert call.status == "completed"
    assert (call.queue_wait_seconds, call.talk_seconds) == (2, 6)
    assert call.caller_masked == "0901 *** 567" and call.caller_id_status == "present"
    assert call.caller_number == "+84901234567" and call.number_hash and "901234567" not in call.number_hash
    assert call.answered_by == "PJSIP/tvv1"
    assert count(RawEvent) == 6


@pytest.mark.parametrize("order", list(itertools.permutations(range(6)))[::37])
def test_any_arrival_order_gives_the_same_call(sqlite_env, order):
    for i in order:
        submit([ANSWERED_CALL[i]])
    [call] = calls()
    assert call.status == "completed"
    assert (call.queue_wait_seconds, call.talk_seconds) == (2, 6)
    assert call.received_at == T0 and call.answered_at == T0 + timedelta(seconds=3)


def test_terminal_status_is_never_overwritten_by_an_earlier_one(env):
    submit([raw("a", ev(Kind.STARTED)), raw("b", ev(Kind.QUEUED, sec=1, queue="q")),
            raw("c", ev(Kind.ABANDONED, sec=9, wait_seconds=8)), raw("d", ev(Kind.ENDED, sec=9))])
    submit([raw("late", ev(Kind.QUEUED, sec=0.5, queue="q"))])
    [call] = calls()
    assert call.status == "abandoned" and call.queue_wait_seconds == 8


def test_restamped_linkedid_merges_into_one_call(env):
    submit([raw("a", ev(Kind.STARTED, "L1", channel="L1", caller="0912345678")),
            raw("b", ev(Kind.STARTED, "L1", 1, channel="U2"))])
    # A transfer: the agent's channel U2 now reports Linkedid L7, and L7 had its own record.
    submit([raw("c", ev(Kind.STARTED, "L7", 2, channel="U9")),
            raw("d", ev(Kind.ANSWERED, "L7", 3, channel="U2", agent="PJSIP/tvv2")),
            raw("e", ev(Kind.ENDED, "L7", 30, channel="U2"))])
    [call] = calls()
    assert call.provider_key == "L1" and call.status == "completed"
    with session_scope() as s:
        keys = set(s.scalars(select(CallKey.key).where(CallKey.call_id == call.id)))
    assert {"L1", "U2", "L7", "U9"} <= keys


def test_resync_closes_vanished_calls_and_opens_unseen_ones(env):
    submit([raw("a", ev(Kind.STARTED, "gone")), raw("b", ev(Kind.QUEUED, "gone", 1, queue="hotline")),
            raw("c", ev(Kind.STARTED, "alive", 2)), raw("d", ev(Kind.QUEUED, "alive", 3, queue="hotline"))])
    snap = CallEvent(Kind.SNAPSHOT, "asterisk", "*", T0 + timedelta(seconds=60), scope="pbx-1",
                     live=[LiveCall("alive", queue="hotline"),
                           LiveCall("new", caller="anonymous", queue="hotline", started_at=T0 + timedelta(seconds=50))])
    submit([raw("snap", snap)])
    by_key = {c.provider_key: c for c in calls()}
    assert by_key["gone"].status == "unknown_outcome"
    assert by_key["alive"].status == "queued"
    assert by_key["new"].status == "queued" and by_key["new"].caller_id_status == "withheld"
    # A snapshot from another PBX does not touch this one's calls.
    submit([raw("snap2", CallEvent(Kind.SNAPSHOT, "asterisk", "*", T0 + timedelta(seconds=70), scope="pbx-2"))])
    assert {c.provider_key: c.status for c in calls()}["alive"] == "queued"


def test_unclaimed_line_goes_to_the_default_centre_flagged(env):
    submit([raw("a", ev(Kind.STARTED, dialed="02553822999")), raw("b", ev(Kind.QUEUED, sec=1, queue="unknown-q"))])
    [call] = calls()
    with session_scope() as s:
        centre = s.get(Centre, call.centre_id)
        assert centre.is_default and centre.code == "default"
    assert call.unrouted is True


def test_unreadable_and_unappliable_events_become_dead_letters(env):
    bad_time = CallEvent(Kind.STARTED, "asterisk", "L5", datetime(2026, 11, 23, 8, 0))  # naive: cannot be stored
    result = submit([raw("x", error="malformed frame: line 3 has no colon"), raw("y", bad_time),
                     raw("z", ev(Kind.STARTED, "L6"))])
    assert result.dead == 2 and result.applied == 1
    with session_scope() as s:
        reasons = sorted(s.scalars(select(DeadLetter.reason)))
    assert any("malformed frame" in r for r in reasons)
    assert any("naive datetime" in r for r in reasons)
    assert count(RawEvent) == 3  # every raw event is kept
    assert [c.provider_key for c in calls()] == ["L6"]


def test_database_outage_spools_then_replays(sqlite_env, monkeypatch):
    from hotline.ingest import spool
    from hotline.settings import reset_settings

    good_url = sqlite_env.database_url
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    reset_settings()
    assert submit(ANSWERED_CALL[:2]) is None
    assert len(spool.pending_files()) == 1
    assert spool.drain() == 0  # still down: nothing lost, file kept
    assert len(spool.pending_files()) == 1
    monkeypatch.setenv("HOTLINE_DATABASE_URL", good_url)
    reset_settings()
    assert spool.drain() == 2
    assert spool.pending_files() == []
    [call] = calls()
    assert call.status == "queued"


def test_a_spool_that_cannot_be_written_keeps_the_events_in_memory_until_disk_or_database_takes_them(
        sqlite_env, monkeypatch):
    from hotline.ingest import spool
    from hotline.settings import reset_settings

    good_url = sqlite_env.database_url
    folder = sqlite_env.spool_dir
    stray = folder / "1-4194311-deadbeef.tmp"  # a process killed mid-write (that pid does not exist)
    stray.write_text("half")
    for leftover in folder.iterdir():
        leftover.unlink()
    folder.rmdir()
    folder.write_text("not a directory")  # every spool write now fails with an OSError
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    reset_settings()
    assert submit(ANSWERED_CALL[:2]) is None and submit(ANSWERED_CALL[2:]) is None  # no exception: kept
    assert spool.held() == len(ANSWERED_CALL) and spool.status()["disk_failures"] >= 2
    assert spool.drain() == 0 and spool.held() == len(ANSWERED_CALL)  # neither takes them yet

    folder.unlink()
    folder.mkdir()
    stray.write_text("half")
    assert spool.drain() == 0  # the database is still down: the backlog moves to the disk spool
    assert spool.held() == 0 and len(spool.pending_files()) == 1 and not stray.exists()
    monkeypatch.setenv("HOTLINE_DATABASE_URL", good_url)
    reset_settings()
    assert spool.drain() == len(ANSWERED_CALL)
    [call] = calls()
    assert call.status == "completed" and spool.pending_files() == [] and list(folder.glob("*.tmp")) == []


def test_spool_drains_safely_when_files_are_taken_or_broken(sqlite_env):
    from hotline.ingest import spool

    good = spool.write(ANSWERED_CALL[:3])
    broken = spool.write(ANSWERED_CALL[3:4])
    broken.write_text("{not json\n")
    later = spool.write(ANSWERED_CALL[4:])
    # Another process claimed the first file a moment ago: this one leaves it alone.
    taken = good.rename(good.with_name(good.stem + ".claimed-99999"))
    assert spool.drain() == 2  # the broken file is set aside, the later one still drains
    assert broken.with_suffix(".bad").exists() and not later.exists()
    assert taken.exists()
    # The other process died: after a while its claim returns to the spool and drains.
    import os
    old = taken.stat().st_mtime - spool.STALE_CLAIM_SECONDS - 1
    os.utime(taken, (old, old))
    assert spool.drain() == 3
    [call] = calls()
    assert call.status == "completed"


def test_merge_keeps_the_reported_talk_time_of_the_merged_call(env):
    # The talk time is reported on a leg first known under its own key; the merge must keep it.
    submit([raw("a", ev(Kind.STARTED, "P", channel="P")), raw("b", ev(Kind.ANSWERED, "P", 10))])
    submit([raw("c", ev(Kind.COMPLETED, "C", 200, talk_seconds=185)), raw("d", ev(Kind.ENDED, "P", 201))])
    submit([raw("e", CallEvent(Kind.ALIAS, "asterisk", "P", T0, alias_key="C"))])
    [call] = calls()
    assert call.talk_seconds == 185 and call.status == "completed"
