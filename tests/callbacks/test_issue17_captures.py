"""Issue #17 point 1 over captured real streams, on both providers: every missed or abandoned call with a
callable number becomes a callback item (its kind, its masked number), never a withheld caller's nor an
answered call.  Asterisk: the real 22.10.1 captures replayed through the AMI listener's socket; Twilio: the
captured sequences through signed webhooks, at their own times (freezegun).  ``test_worklist.py`` builds
the same rules from events fed to the ingestor; this is the same over the providers' real surfaces."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from callbacks import service
from callbacks.models import CallbackItem
from hotline.calls.models import Call
from hotline.db import session_scope
from tests.ami.conftest import Rig
from tests.ami.test_conformance import FIXTURES, _users, expected, replay
from tests.twilio.test_sequences import FIXTURES as TWILIO
from tests.twilio.test_sequences import post_step, rewrite


def _build_after_the_calls() -> dict[str, int]:
    with session_scope() as db:
        last = db.scalar(select(Call.received_at).order_by(Call.received_at.desc()).limit(1))
        return service.build(db, now=last + timedelta(minutes=5)).as_dict()


def _items() -> list[tuple[str, str, str]]:
    with session_scope() as db:
        return [(i.kind, i.status, i.number_masked) for i in db.scalars(select(CallbackItem).order_by(CallbackItem.id))]


def _masked(number: str) -> str:
    from hotline.phone import parse_caller

    return parse_caller(number).masked


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("scenario", ["abandoned", "abandoned_ringing", "queue_timeout", "joinempty", "leavewhenempty",
                                      "answered", "withheld"])
def test_asterisk_capture_a_missed_or_abandoned_caller_becomes_an_item(env, rig: Rig, scenario: str) -> None:
    spec = expected(FIXTURES / scenario)
    _users(spec)
    replay(rig, FIXTURES / scenario / "filtered.ami", spec)
    want = [(c["status"], "open", _masked(c["caller"]["number"])) for c in spec["calls"]
            if c["status"] in ("missed", "abandoned") and c["caller"]["presentation"] == "allowed"]
    assert _build_after_the_calls()["made"] == len(want)
    assert _items() == want
    if scenario in ("answered", "withheld"):
        assert want == []  # the answered calls: nothing to call back


@pytest.mark.parametrize("name", ["caller_hangs_up_in_queue", "queue_timeout_leave", "queue_timeout_redirected",
                                  "withheld_blocked_digits", "withheld_restricted_digits", "withheld_unknown_digits",
                                  "answered_on_client"])
def test_twilio_capture_a_missed_or_abandoned_caller_becomes_an_item(client, name: str) -> None:
    seq = json.loads((TWILIO / name / "sequence.json").read_text(encoding="utf-8"))
    record = json.loads((TWILIO / name / "expected.json").read_text(encoding="utf-8"))
    t0 = datetime.fromisoformat(seq["t0"])
    assert client.get("/webhooks/twilio/voice").status_code == 405  # routes resolved before freezing time
    for step in (rewrite(s, 1) for s in seq["requests"]):
        with freeze_time(t0 + timedelta(seconds=step["at"])):
            post_step(client, step)
    with session_scope() as db:
        assert db.scalar(select(Call.status)) == record["status"]
    callable_ = record["status"] in ("missed", "abandoned") and record["caller"]["caller_id_status"] == "present"
    assert _build_after_the_calls()["made"] == (1 if callable_ else 0)
    assert _items() == ([(record["status"], "open", record["caller"]["masked"])] if callable_ else [])
    if name.startswith("withheld_"):
        assert record["status"] == "abandoned" and not callable_  # abandoned, yet never called back
