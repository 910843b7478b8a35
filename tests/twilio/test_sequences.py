"""Each captured-style Twilio sequence (``tests/fixtures/twilio/``) through real signed HTTP webhooks into
a real database (SQLite and PostgreSQL), delivered four ways, each ending in the sequence's expected record:

- ``in_order``: as Twilio sends them;
- ``duplicates``: every request retried at once with its idempotency token, and the status callbacks
  all over again at the end;
- ``reordered``: the status callbacks (asynchronous, the only ones Twilio may deliver late) held back
  and delivered after the rest, newest first;
- ``spread``: each status callback delivered 0–120 s after it happened (freezegun), interleaved with
  the synchronous TwiML requests (voice, wait, dequeue, actions), which always come at their time.

The four deliveries of a sequence run in one database: each uses its own CallSids and tokens.
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from hotline.calls.models import Call, DeadLetter
from hotline.db import session_scope
from tests.twilio.conftest import sign

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio"
SEQUENCES = sorted(p.name for p in FIXTURES.iterdir() if (p / "sequence.json").is_file())
VARIANTS = ("in_order", "duplicates", "reordered", "spread")
SID = re.compile(r"^CA[0-9a-f]{32}$")


def rewrite(step: dict[str, Any], variant: int) -> dict[str, Any]:
    """The same request for delivery ``variant``: CallSids and the idempotency token made its own."""
    params = {k: (f"CA{variant:02x}{v[4:]}" if SID.match(v) else v) for k, v in step["params"].items()}
    token = step["headers"]["I-Twilio-Idempotency-Token"]
    return {**step, "params": params, "headers": {"I-Twilio-Idempotency-Token": f"{variant:02x}{token[2:]}"}}


def deliveries(steps: list[dict[str, Any]], variant: str, seed: int) -> list[tuple[float, dict[str, Any]]]:
    """(seconds after t0 when it arrives, request) in arrival order."""
    if variant == "in_order":
        return [(s["at"], s) for s in steps]
    if variant == "duplicates":
        twice = [(s["at"], s) for s in steps for _ in range(2)]
        last = max(s["at"] for s in steps)
        return twice + [(last + 1, s) for s in steps if s["async"]]
    if variant == "reordered":
        sync = [(s["at"], s) for s in steps if not s["async"]]
        last = max(s["at"] for s in steps)
        late = [s for s in steps if s["async"]][::-1]
        return sync + [(last + 1 + i, s) for i, s in enumerate(late)]
    rng = random.Random(seed)
    timed = [(s["at"] + (rng.uniform(0, 120) if s["async"] else 0), i, s) for i, s in enumerate(steps)]
    return [(t, s) for t, _i, s in sorted(timed, key=lambda x: (x[0], x[1]))]


def record_of(call: Call) -> dict[str, Any]:
    """The call as the expected records describe it."""
    parts = [{"agent": call.answered_by, "talk_s": call.talk_seconds}] if call.answered_by else []
    facts = call.facts or {}
    return {
        "status": call.status, "wait_s": call.queue_wait_seconds, "talk_s": call.talk_seconds,
        "answered_by": call.answered_by, "parts": parts,
        "caller": {"caller_id_status": call.caller_id_status, "number": call.caller_number,
                   "masked": call.caller_masked, "hashed": call.number_hash is not None},
        # in arrival order on the call: compared as sets (who was offered the call, who missed it)
        "offers": sorted(facts.get("offers", [])), "offers_missed": sorted(facts.get("offers_missed", [])),
    }


def post_step(client: Any, step: dict[str, Any]) -> Any:
    response = client.post(step["path"], data=step["params"], headers={
        "X-Twilio-Signature": sign(step["path"], step["params"]), **step["headers"]})
    assert response.status_code == 200, (step["path"], response.status_code, response.text)
    assert response.headers["content-type"].startswith("text/xml")
    return ElementTree.fromstring(response.text)


def path_of(url: str | None) -> str:
    parts = urlsplit(url or "")
    return parts.path + ("?" + parts.query if parts.query else "")


@pytest.mark.parametrize("name", SEQUENCES)
def test_sequence_ends_in_its_expected_record_however_it_is_delivered(client, name: str) -> None:
    seq = json.loads((FIXTURES / name / "sequence.json").read_text(encoding="utf-8"))
    expected = json.loads((FIXTURES / name / "expected.json").read_text(encoding="utf-8"))
    t0 = datetime.fromisoformat(seq["t0"])
    assert client.get("/webhooks/twilio/voice").status_code == 405  # routes resolved before freezing time
    for n, variant in enumerate(VARIANTS, start=1):
        steps = [rewrite(s, n) for s in seq["requests"]]
        told: list[str] = []  # the action URLs our TwiML gave Twilio
        for seconds, step in deliveries(steps, variant, seed=n):
            with freeze_time(t0 + timedelta(seconds=seconds)):
                root = post_step(client, step)
            told += [path_of(e.get("action")) for e in root.iter("Enqueue")]
            told += [path_of(e.get("action")) for e in root.iter("Dial")]
            told += [path_of(e.get("url")) for e in root.iter("Queue")]
            if step["hook"] in ("enqueue-action", "dequeue") or (step["hook"] == "dial-action" and "leg=" in step["path"]):
                assert step["path"] in told, f"{step['path']} is not a URL hotline gave Twilio"
        with session_scope() as s:
            [call] = s.scalars(select(Call).where(Call.provider_key == steps[0]["params"]["CallSid"])).all()
            got = record_of(call)
        want = {**expected, "offers": sorted(expected.get("offers", [])),
                "offers_missed": sorted(expected.get("offers_missed", []))}
        assert got == want, f"{name} delivered {variant}"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == len(VARIANTS), "one call per delivery, no other"
        assert s.scalar(select(func.count()).select_from(DeadLetter)) == 0
