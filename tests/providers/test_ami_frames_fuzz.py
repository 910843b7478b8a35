"""Hypothesis over the AMI frame parser and translator (#14 "What to build" 4): whatever bytes the PBX
(or something pretending to be it) sends, cutting, parsing and translating never raise, and every
refused frame comes out with ``error`` set, which the ingestor keeps as a logged dead letter."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.ingest.events import RawIn
from hotline.ingest.providers.asterisk.translator import AmiMapper, parse_frame, split_frames
from hotline.ingest.spool import submit

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
KEYS = ["Event", "Response", "Uniqueid", "Linkedid", "Channel", "DestChannel", "DestUniqueid", "DestLinkedid",
        "Queue", "CallerIDNum", "CallerIDName", "ConnectedLineNum", "Interface", "MemberName", "Timestamp",
        "HoldTime", "TalkTime", "RingTime", "Position", "BridgeUniqueid", "Variable", "Value", "Cause",
        "ChanVariable", "ActionID", "Reason", "Privilege", "Exten", "Context"]
EVENTS = ["Newchannel", "QueueCallerJoin", "AgentCalled", "AgentRingNoAnswer", "AgentConnect", "AgentComplete",
          "QueueCallerAbandon", "HangupRequest", "SoftHangupRequest", "Hangup", "NewCallerid", "VarSet",
          "BridgeEnter", "BridgeLeave", "CEL", "FullyBooted", "QueueMemberStatus", "Error", "Success"]
NASTY = ["", " ", "1e400", "-1", "99999999999999999999", "NaN", "1764900000.123456", "0", "\x00", "é" * 80,
         "x" * 500, "PJSIP/tvv1-00000001", "Local/1001@agents-0001;1", "1764900000.1", "1764900000.2",
         "QUEUESTATUS", "TIMEOUT", ":", "a: b", "\r", "\n"]
values = st.one_of(st.sampled_from(NASTY + EVENTS), st.text(max_size=40), st.integers().map(str))
lines = st.one_of(
    st.tuples(st.sampled_from(KEYS), values).map(lambda kv: f"{kv[0]}: {kv[1]}".encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
frames = st.lists(lines, min_size=0, max_size=12).map(lambda ls: b"\r\n".join(ls))
streams = st.lists(frames, max_size=8).map(lambda fs: b"".join(f + b"\r\n\r\n" for f in fs))


def _translate(stream: bytes, cut: int, mapper: AmiMapper) -> list[RawIn]:
    """The listener's path: bytes arrive in two reads cut anywhere, frames are cut off, each translated."""
    items: list[RawIn] = []
    rest = b""
    for chunk in (stream[:cut], stream[cut:]):
        done, rest = split_frames(rest + chunk)
        for raw in done:
            frame = parse_frame(raw)
            item = mapper.to_raw(raw, NOW, frame)
            if frame.error:
                assert item.error == frame.error and not item.events, raw
            for ev in item.events:
                assert ev.provider == "asterisk" and ev.key, (raw, ev)
            items.append(item)
    return items


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, st.integers(min_value=0, max_value=2000))
def test_no_byte_stream_crashes_the_parser_or_the_translator(stream: bytes, cut: int) -> None:
    _translate(stream, min(cut, len(stream)), AmiMapper("fuzz"))


def test_every_refused_frame_is_a_logged_dead_letter(sqlite_env, caplog) -> None:
    from sqlalchemy import func, select

    from hotline.calls.models import DeadLetter
    from hotline.db import session_scope

    refused: list[RawIn] = []

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(streams)
    def collect(stream: bytes) -> None:
        for item in _translate(stream, len(stream), AmiMapper("fuzz")):
            if item.error and all(r.dedupe_key != item.dedupe_key for r in refused):
                refused.append(item)

    collect()
    refused.append(AmiMapper("fuzz").to_raw(b"not a header line", NOW))  # at least one, whatever was drawn
    with caplog.at_level(logging.WARNING):
        submit(refused)
    with session_scope() as db:
        kept = db.scalar(select(func.count()).select_from(DeadLetter))
    assert kept == len(refused), f"{len(refused)} refused frames, {kept} dead letters"
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) >= len(refused), f"{len(refused)} refused frames, {len(logged)} warnings logged"
