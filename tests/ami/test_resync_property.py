"""The resync is ordered against the stream: wherever it falls in a captured stream, and in
whatever order events of different types arrive, the final records are the same.

Each run feeds a captured stream through the Asterisk translator and the ingestor into a real
SQLite database, in batches, with a resync asked for at frame ``k`` and answered ``delay``
frames later, saying (as a replaying PBX does) that no call is live.  The listener's rule is
reproduced: every key heard between the request and the answer is spared.
"""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hotline.calls.models import Call, CallPart
from hotline.db import session_scope
from hotline.ingest.events import RawIn
from hotline.ingest.providers.asterisk.simulator import Capture
from hotline.ingest.providers.asterisk.translator import AmiMapper, Resync, parse_frame
from hotline.ingest.service import ingest_and_commit
from tests.conftest import empty_tables

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
SOURCE = "ami:property"
BASE = datetime(2026, 12, 1, tzinfo=timezone.utc)
LISTS = {"CoreShowChannel", "CoreShowChannelsComplete", "QueueParams", "QueueMember", "QueueEntry",
         "QueueStatusComplete"}
OPEN = {"ringing", "queued", "in_progress"}


def _ami_only(path: Path) -> bool:
    """False for a capture whose call is known from hotline's HTTP lookups, not from the stream
    (the out-of-hours call never reaches a queue: expected.json "http", tests/ami/test_conformance.py)."""
    spec = path.parent / "expected.json"
    return not (spec.exists() and '"http"' in spec.read_text(encoding="utf-8") and
                not any(b"QueueCallerJoin" in line for line in path.read_bytes().split(b"\r\n")))


def _streams() -> list[Path]:
    found = sorted(FIXTURES.glob("*/filtered.ami")) + [FIXTURES / "legacy" / "answered_queue_call.txt",
                                                      FIXTURES / "legacy" / "abandoned_queue_call.txt"]
    return [p for p in found if p.exists() and _ami_only(p)]


def _events(path: Path) -> list[tuple[int, bytes, str]]:
    """(original position, frame, event type) of the stream's events, resync answers left out."""
    out = []
    for i, raw in enumerate(Capture.load(path).frames):
        f = parse_frame(raw)
        if f.event and f.event not in LISTS and not f.action_id:
            out.append((i, raw, f.event))
    return out


def _records() -> dict[str, tuple[Any, ...]]:
    with session_scope() as s:
        calls = {c.id: c for c in s.scalars(select(Call))}
        parts: dict[int, list[tuple[str, int | None]]] = {}
        for p in s.scalars(select(CallPart).order_by(CallPart.agent, CallPart.started_at)):
            parts.setdefault(p.call_id, []).append((p.agent, p.talk_seconds))
        return {c.provider_key: (c.status, c.queue_wait_seconds, c.talk_seconds, c.answered_by, c.caller_id_status,
                                 c.queue, tuple(parts.get(c.id, [])), c.caller_masked,
                                 (c.facts or {}).get("callback")) for c in calls.values()}


def run(url: str, events: list[tuple[int, bytes, str]], *, resync_at: int | None = None, delay: int = 0,
        batch: int = 50) -> dict[str, tuple[Any, ...]]:
    empty_tables(url)
    mapper = AmiMapper(SOURCE)
    items: list[RawIn] = []
    resync: Resync | None = None
    for n, (pos, raw, _type) in enumerate(events):
        if n == resync_at:
            resync = Resync("r-1", "r-2", datetime.now(timezone.utc))
        f = parse_frame(raw)
        item = mapper.to_raw(raw, BASE + timedelta(milliseconds=pos), f)  # arrival time by original position
        if resync is not None and item.provider_key:
            resync.spare.add(item.provider_key)
            if f.fields.get("Uniqueid"):
                resync.spare.add(f.fields["Uniqueid"])
        items.append(item)
        if resync is not None and n >= (resync_at or 0) + delay:
            resync.channels_done = resync.queue_done = True
            resync.answered_at = datetime.now(timezone.utc)
            items.append(resync.to_raw(SOURCE))
            resync = None
    if resync is not None:
        resync.answered_at = datetime.now(timezone.utc)
        items.append(resync.to_raw(SOURCE))
    for start in range(0, len(items), batch):
        ingest_and_commit(items[start:start + batch], publish=False)
    return _records()


def _shuffled(events: list[tuple[int, bytes, str]], rng: random.Random) -> list[tuple[int, bytes, str]]:
    """A random interleaving of the per-type sequences: events of one type keep their order,
    events of different types arrive in any order."""
    queues: dict[str, list[tuple[int, bytes, str]]] = {}
    for e in events:
        queues.setdefault(e[2], []).append(e)
    out: list[tuple[int, bytes, str]] = []
    while queues:
        kind = rng.choice(sorted(queues))
        out.append(queues[kind].pop(0))
        if not queues[kind]:
            del queues[kind]
    return out


_BASELINES: dict[tuple[str, str], dict[str, tuple[Any, ...]]] = {}


def baseline(url: str, path: Path) -> dict[str, tuple[Any, ...]]:
    key = (url, str(path))
    if key not in _BASELINES:
        _BASELINES[key] = run(url, _events(path))
    return _BASELINES[key]


def _agrees(got: dict[str, tuple[Any, ...]], want: dict[str, tuple[Any, ...]]) -> bool:
    """The same calls; each call the stream ended is unchanged, and a call the capture leaves open
    (the listener cut off, the PBX restarted) may only stay open or be closed as unknown_outcome,
    which is what a resync that no longer sees it rightly does."""
    if got.keys() != want.keys():
        return False
    for key, record in want.items():
        if record[0] in OPEN:
            if got[key][0] not in OPEN | {"unknown_outcome"}:
                return False
        elif got[key] != record:
            return False
    return True


@pytest.mark.parametrize("path", _streams(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_resync_at_every_point_of_the_stream_changes_nothing(sqlite_env, path: Path) -> None:
    url = sqlite_env.database_url
    events = _events(path)
    want = baseline(url, path)
    assert want, f"{path.parent.name}: the stream gives no call at all"
    for k in range(len(events) + 1):
        got = run(url, events, resync_at=k, delay=1)
        assert _agrees(got, want), f"resync asked for before event {k}: {got} != {want}"


# Under CI the same 40 examples every run (a clean checkout must pass or fail the same way); elsewhere
# random ones, which keep looking for orders nobody tried.  A longer search, e.g. on one capture:
# HOTLINE_PROPERTY_EXAMPLES=600 HOTLINE_PROPERTY_STREAMS=callback pytest tests/ami/test_resync_property.py
EXAMPLES = int(os.environ.get("HOTLINE_PROPERTY_EXAMPLES") or 40)
ONLY = {s for s in (os.environ.get("HOTLINE_PROPERTY_STREAMS") or "").split(",") if s}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_shuffled_arrival_and_a_resync_anywhere_change_nothing(sqlite_env, data: st.DataObject) -> None:
    url = sqlite_env.database_url
    streams = [p for p in _streams() if not ONLY or p.parent.name in ONLY]
    path = data.draw(st.sampled_from(streams), label="stream")
    want = baseline(url, path)
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    events = _shuffled(_events(path), rng)
    k = data.draw(st.one_of(st.none(), st.integers(0, len(events))), label="resync_at")
    delay = data.draw(st.integers(0, 5), label="delay")
    batch = data.draw(st.integers(1, 60), label="batch")
    assert _agrees(run(url, events, resync_at=k, delay=delay, batch=batch), want)


def _first(events: list[tuple[int, bytes, str]], *kinds: str) -> list[tuple[int, bytes, str]]:
    """The events of ``kinds`` first (in that order of kinds), then the others as captured: one of the
    orders ``_shuffled`` can give (each type keeps its own order)."""
    head = [e for k in kinds for e in events if e[2] == k]
    return head + [e for e in events if e[2] not in kinds]


CALLBACK = FIXTURES / "callback" / "filtered.ami"


# Orders the shuffled-arrival property found (600 random examples) on the callback capture: the
# bridge of the counsellor's phone with the outside number heard before any event that carries
# HOTLINE_CALLBACK (NewCallerid, OriginateResponse) made the outside number the answerer.
@pytest.mark.parametrize("kinds", [("BridgeEnter",), ("BridgeEnter", "BridgeLeave", "Hangup"),
                                   ("Hangup", "BridgeEnter"), ("BridgeLeave", "BridgeEnter", "HangupRequest")],
                         ids="+".join)
def test_a_placed_call_is_answered_by_the_counsellor_whatever_arrives_first(sqlite_env, kinds: tuple[str, ...]) -> None:
    url = sqlite_env.database_url
    want = baseline(url, CALLBACK)
    assert [r[3] for r in want.values()] == ["Local/tvv1@phones"]
    for batch in (1, 60):
        got = run(url, _first(_events(CALLBACK), *kinds), batch=batch)
        assert got == want, f"{kinds}, batches of {batch}: {got} != {want}"


def _show(event: bytes) -> bytes:
    """A BridgeEnter of the capture as the resync's CoreShowChannel of that channel."""
    f = parse_frame(event).fields
    keep = ("Channel", "ChannelState", "CallerIDNum", "ConnectedLineNum", "Context", "Exten", "Uniqueid", "Linkedid")
    lines = ["Event: CoreShowChannel", "ActionID: r-1", *(f"{k}: {f[k]}" for k in keep),
             "Application: Dial", "Duration: 00:00:05", "BridgedTime: 00:00:03", f"BridgeId: {f['BridgeUniqueid']}"]
    return "\r\n".join(lines).encode()


def test_a_resync_during_a_placed_call_names_the_counsellor_and_the_person_called(sqlite_env) -> None:
    """A callback first heard of in a resync (the listener reconnected while it was up): the
    counsellor's phone is the call's first channel, bridged with the number called."""
    empty_tables(sqlite_env.database_url)
    resync = Resync("r-1", "r-2", BASE)
    for _pos, raw, kind in _events(CALLBACK):
        if kind == "BridgeEnter":
            assert resync.offer(parse_frame(_show(raw)), BASE)
    resync.channels_done = resync.queue_done = True
    (live,) = resync.live_calls(BASE)
    assert (live.caller, live.agent, live.answered) == ("0912345678", "Local/tvv1@phones", True)
    ingest_and_commit([resync.to_raw(SOURCE)], publish=False)
    assert [r[3] for r in _records().values()] == ["Local/tvv1@phones"]


# Found by 2,000 random examples: on the overflow capture (no lines configured here, so hotline
# does not know the second queue as an overflow) each queue reported its own hold time and the
# last to arrive won: 2 s (the overflow queue's AgentConnect) in capture order, 8 s (the first
# queue's QueueCallerAbandon) when the answer came first.  The caller waited 10 s from the first join.
@pytest.mark.parametrize("kinds", [(), ("AgentConnect",), ("AgentConnect", "QueueCallerAbandon"),
                                   ("QueueCallerLeave", "AgentConnect", "QueueCallerJoin")], ids=lambda k: "+".join(k) or "captured")
def test_a_caller_who_joined_two_queues_waited_from_the_first_join_whatever_arrives_first(sqlite_env, kinds) -> None:
    path = FIXTURES / "overflow" / "filtered.ami"
    got = run(sqlite_env.database_url, _first(_events(path), *kinds), batch=1)
    assert [(r[0], r[1], r[3]) for r in got.values()] == [("completed", 10, "Local/tvv4@phones/n")]
