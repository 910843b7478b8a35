"""Fast translator tests: a captured AMI payload → normalised call events, no database, no socket.

One test per capture in ``tests/fixtures/ami/``.  The end-to-end replay over a real TCP socket
into a real database lives in ``tests/ami``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from hotline.ingest.events import CallEvent, Kind
from hotline.ingest.providers.asterisk.simulator import Capture
from hotline.ingest.providers.asterisk.translator import AmiMapper, Resync, parse_frame

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
LEGACY = FIXTURES / "legacy"
AT = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def translate(path: Path) -> list[CallEvent]:
    """Every call event the translator makes of a capture, in stream order."""
    mapper = AmiMapper("ami:test")
    events: list[CallEvent] = []
    for raw in Capture.load(path).frames:
        item = mapper.to_raw(raw, AT)
        assert item.error is None, item.error
        events.extend(item.events)
    return events


def kinds(events: list[CallEvent]) -> list[str]:
    return [e.kind.value for e in events]


def test_legacy_answered_queue_call() -> None:
    events = translate(LEGACY / "answered_queue_call.txt")
    assert kinds(events) == ["started", "caller", "queued", "offered", "answered", "part_started", "completed",
                             "part_ended", "ended"]
    assert {e.key for e in events} == {"1795424141.0"}
    by = {e.kind: e for e in events}
    assert by[Kind.QUEUED].queue == "hotline" and by[Kind.QUEUED].caller == "0901234567"
    assert by[Kind.ANSWERED].agent == "Local/agent1@agents/n" and by[Kind.ANSWERED].wait_seconds == 2
    assert (by[Kind.COMPLETED].wait_seconds, by[Kind.COMPLETED].talk_seconds) == (2, 6)
    assert by[Kind.COMPLETED].reason == "agent"
    # the counsellor's part: the bridge with the member's channel, named by its device
    assert by[Kind.PART_STARTED].agent == by[Kind.PART_ENDED].agent == "Local/agent1@agents"
    # a channel on its own is not a call; the queue join is
    assert by[Kind.STARTED].creates is False and by[Kind.QUEUED].creates is True


def test_legacy_abandoned_queue_call() -> None:
    events = translate(LEGACY / "abandoned_queue_call.txt")
    assert kinds(events) == ["started", "caller", "queued", "offered", "offer_missed", "offered",
                             "hangup_requested", "abandoned", "ended"]
    by = {e.kind: e for e in events}
    # the caller asked to hang up before the queue let go: a real abandon, not a timeout
    assert by[Kind.ABANDONED].reason == "caller_hung_up"
    assert by[Kind.OFFER_MISSED].reason == "rang 4 s without answer"  # RingTime 4000 ms
    assert by[Kind.ABANDONED].wait_seconds == 8 and by[Kind.ABANDONED].queue == "hotline-abandon"


def test_legacy_resync_snapshot() -> None:
    capture = Capture.load(LEGACY / "resync_coreshowchannels_queuestatus.txt")
    frames = [parse_frame(raw) for raw in capture.frames]
    resync = Resync("resync-1", "resync-2", AT)
    assert [f for f in frames if f.event and not resync.offer(f, AT)] == []
    assert resync.done and resync.failed is None
    live = {c.key: c for c in resync.live_calls(AT)}
    waiting = live["1795424330.4"]
    assert waiting.queue == "hotline-abandon" and waiting.caller == "0912345678" and not waiting.answered
    (snap,) = resync.to_raw("ami:test").events
    assert snap.kind is Kind.SNAPSHOT and {c.key for c in snap.live} == set(live)


def _captured() -> list[Path]:
    return sorted(p.parent for p in FIXTURES.glob("*/filtered.ami"))


@pytest.mark.parametrize("scenario", _captured(), ids=lambda p: p.name)
def test_captured_scenario_translates_without_errors(scenario: Path) -> None:
    """Every captured stream (filtered and all events) parses; nothing becomes a dead letter."""
    for name in ("filtered.ami", "all.ami"):
        if (scenario / name).exists():
            translate(scenario / name)
