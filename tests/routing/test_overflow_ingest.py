"""The ingestor on an overflowed Asterisk call, through the events the AMI translator gives it (the
order seen in the `overflow` capture): the first queue's timeout is not the call's end, the call
stays the line's centre's, and the first queue's QUEUESTATUS (still on the caller's channel) does
not decide how the wait in the overflow queue ended."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from hotline.calls.models import Call
from hotline.db import session_scope
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.spool import submit

T = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)


def _feed(key: str, events: list[tuple[float, Kind, dict]]) -> Call:
    submit([RawIn("asterisk", f"{key}-{s}-{kind.value}", T, f"test {key} {s} {kind.value}", event_type="test",
                  events=[CallEvent(kind, "asterisk", key, T + timedelta(seconds=s), **kw)])
            for s, kind, kw in events])
    with session_scope() as db:
        call = db.scalars(select(Call).where(Call.provider_key == key)).one()
        db.expunge(call)
        return call


def _first_queue_times_out(key: str) -> list[tuple[float, Kind, dict]]:
    return [(0, Kind.STARTED, {"channel": key, "caller": "0906666777"}),
            (0, Kind.QUEUED, {"queue": "hotline"}),
            (8, Kind.ABANDONED, {"reason": "left_queue", "wait_seconds": 8}),
            (8, Kind.QUEUED, {"queue": "hotline-hcm"}),
            (8, Kind.QUEUE_RESULT, {"reason": "TIMEOUT"})]  # QUEUESTATUS on the overflow queue's join


def test_waiting_in_the_overflow_queue_then_answered(centres):
    key = "ovf-1"
    call = _feed(key, _first_queue_times_out(key))
    assert (call.status, call.centre_id, call.overflow_centre_id) == ("queued", centres["home"], centres["other"])
    assert call.ended_at is None and call.facts["overflow_reason"] == "TIMEOUT"
    call = _feed(key, [(10, Kind.ANSWERED, {"agent": "PJSIP/hcm1", "wait_seconds": 2}),
                       (22, Kind.COMPLETED, {"agent": "PJSIP/hcm1", "talk_seconds": 12, "reason": "caller"}),
                       (22, Kind.QUEUE_RESULT, {"reason": "TIMEOUT"})])
    assert (call.status, call.queue_wait_seconds, call.talk_seconds) == ("completed", 10, 12)


def test_the_caller_hangs_up_in_the_overflow_queue_abandoned(centres):
    key = "ovf-2"
    _feed(key, _first_queue_times_out(key))
    call = _feed(key, [(14, Kind.HANGUP_REQUESTED, {}),
                       (14.1, Kind.ABANDONED, {"reason": "left_queue", "wait_seconds": 6}),
                       (14.1, Kind.QUEUE_RESULT, {"reason": "TIMEOUT"}),  # still the first queue's
                       (14.2, Kind.ENDED, {"channel": key})])
    assert (call.status, call.centre_id, call.overflow_centre_id) == ("abandoned", centres["home"], centres["other"])
    assert call.queue_wait_seconds == 14


def test_the_overflow_queue_times_out_too_missed(centres):
    key = "ovf-3"
    _feed(key, _first_queue_times_out(key))
    call = _feed(key, [(188, Kind.ABANDONED, {"reason": "left_queue", "wait_seconds": 180}),
                       (188, Kind.QUEUE_RESULT, {"reason": "TIMEOUT"}),
                       (190, Kind.ENDED, {"channel": key})])
    assert call.status == "missed" and call.overflow_centre_id == centres["other"]


def test_the_overflow_queue_heard_of_before_the_line_s_own_join(centres):
    """Events out of order (a resync, queue_log recovery): the overflow queue's join and answer come
    before the line's own join. The call is still the line's centre's, overflowed to the other."""
    key = "ovf-late"
    answered = [(10, Kind.ANSWERED, {"agent": "PJSIP/hcm1", "queue": "hotline-hcm", "wait_seconds": 2}),
                (8, Kind.QUEUED, {"queue": "hotline-hcm"})]
    first = _feed(key, [(0, Kind.STARTED, {"channel": key, "caller": "0906666777"}), *answered])
    assert (first.queue, first.centre_id) == ("hotline-hcm", centres["other"])  # all it knows so far
    call = _feed(key, [(0, Kind.QUEUED, {"queue": "hotline"}),
                       (8, Kind.ABANDONED, {"reason": "left_queue", "wait_seconds": 8}),
                       (22, Kind.COMPLETED, {"agent": "PJSIP/hcm1", "talk_seconds": 12, "reason": "caller"})])
    assert (call.queue, call.centre_id, call.overflow_centre_id) == ("hotline", centres["home"], centres["other"])
    assert call.facts["overflow_at"] == (T + timedelta(seconds=8)).isoformat()
    assert (call.status, call.talk_seconds) == ("completed", 12)
