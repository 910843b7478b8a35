"""The Twilio translator alone: each captured-style payload → its normalised call events (no database, no HTTP).

The payloads are the callback sequences in ``tests/fixtures/twilio/<sequence>/sequence.json`` (Twilio's
documented parameter sets for the setups in ``deploy/twilio/``); each request lists the call events it
must give.  The end-to-end test (``tests/twilio/test_sequences.py``) sends the same sequences over
signed HTTP into a real database.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from hotline.ingest.events import CallEvent
from hotline.ingest.providers.twilio import translator
from hotline.ingest.providers.twilio.translator import Hook

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio"
SEQUENCES = sorted(p.name for p in FIXTURES.iterdir() if (p / "sequence.json").is_file())
QUEUE = "hotline-default"  # what the voice route assigns on the default centre


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name / "sequence.json").read_text(encoding="utf-8"))


def payloads() -> list[Any]:
    out = []
    for name in SEQUENCES:
        for i, step in enumerate(load(name)["requests"]):
            out.append(pytest.param(name, i, id=f"{name}-{i:02d}-{step['hook']}"))
    return out


def request_of(seq: dict[str, Any], step: dict[str, Any]) -> translator.Request:
    t0 = datetime.fromisoformat(seq["t0"])
    query = urlsplit(step["path"]).query
    req = translator.Request(
        hook=Hook(step["hook"]), params=dict(step["params"]), received_at=t0 + timedelta(seconds=step["at"]),
        body=urlencode(step["params"]).encode(), path=step["path"],
        idempotency_token=step["headers"].get("I-Twilio-Idempotency-Token"),
        query=dict(parse_qsl(query, keep_blank_values=True)))
    if req.hook is Hook.VOICE:
        req.assigned_queue = QUEUE
    return req


def as_dict(ev: CallEvent, t0: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": ev.kind.value, "key": ev.key, "at": (ev.at - t0).total_seconds()}
    for name in ("channel", "caller", "dialed", "queue", "agent", "wait_seconds", "talk_seconds", "reason"):
        value = getattr(ev, name)
        if value is not None:
            out[name] = value
    assert ev.provider == "twilio" and not ev.live and ev.alias_key is None
    return out


def test_every_sequence_has_its_expected_record() -> None:
    assert len(SEQUENCES) >= 8
    for name in SEQUENCES:
        expected = json.loads((FIXTURES / name / "expected.json").read_text(encoding="utf-8"))
        assert {"status", "wait_s", "talk_s", "answered_by", "parts", "caller"} <= expected.keys(), name


@pytest.mark.parametrize(("name", "index"), payloads())
def test_payload_gives_its_call_events(name: str, index: int) -> None:
    seq = load(name)
    step = seq["requests"][index]
    t0 = datetime.fromisoformat(seq["t0"])
    raw = translator.translate(request_of(seq, step))
    assert raw.error is None, raw.error
    assert [as_dict(ev, t0) for ev in raw.events] == [{**e, "at": float(e["at"])} for e in step["events"]]
    assert raw.provider == "twilio" and raw.event_type == step["hook"]
    assert raw.provider_key == (step["params"].get("ParentCallSid") or step["params"]["CallSid"])
    assert raw.dedupe_key == "twilio:idem:" + step["headers"]["I-Twilio-Idempotency-Token"]
    assert raw.payload.startswith(f"POST {step['path']}\n\n")
