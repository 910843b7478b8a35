"""Out-of-hours callers and the callback list (#17 point 5): a caller who reached a closed line and pressed
the key asked for a callback and becomes an item ("Asked for a callback"); a caller who heard the message
and hung up did not ask, and is never rung back unasked (the call may have been made in secret). Through
signed Twilio webhooks, and through the real Asterisk capture of the closed line replayed over the AMI
socket (with and without the dialplan's key-press request); the daily log and the report count both calls
out of hours and one callback request."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from callbacks import service
from callbacks.models import CallbackItem
from hotline.calls.models import Call
from hotline.centres.models import Centre, Line
from hotline.cli import main
from hotline.db import session_scope
from tests.ami.conftest import Rig
from tests.ami.test_conformance import FIXTURES, _users, expected, replay
from tests.routing.conftest import centres  # noqa: F401  (fixture)
from tests.twilio.conftest import base_params, post  # noqa: F401  (post: a fixture)

DAY = "2026-12-01"  # a Tuesday
AT_20 = datetime(2026, 12, 1, 13, 0, tzinfo=timezone.utc)  # 20:00 in Ho Chi Minh City: the line is closed
ASKED, SILENT = "+84911000111", "+84922000222"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _closed_call(post, sid: str, caller: str, *, press: bool) -> None:  # noqa: F811
    """The caller hears the closed message; presses 1 (a callback request) or not; hangs up."""
    params = {"CallSid": sid, "From": caller, "Caller": caller}
    root = ElementTree.fromstring(post("/webhooks/twilio/voice", base_params(**params, CallStatus="ringing")).text)
    gather = root.find("Gather")
    assert gather is not None and root.find("Enqueue") is None
    if press:
        thanks = ElementTree.fromstring(post(_path(gather.get("action")), base_params(**params, Digits="1")).text)
        assert thanks.find("Hangup") is not None
    assert post("/webhooks/twilio/status", base_params(**params, CallStatus="completed", CallDuration="25")).status_code == 200


def _items() -> list[tuple[str, str, str]]:
    with session_scope() as db:
        return [(i.kind, i.status, i.number_masked) for i in db.scalars(select(CallbackItem).order_by(CallbackItem.id))]


def test_twilio_only_the_caller_who_pressed_the_key_is_called_back(client, post, centres, capsys):  # noqa: F811
    with session_scope() as db:
        for centre in db.scalars(select(Centre)):
            centre.created_at = datetime(2026, 11, 1, tzinfo=timezone.utc)
        db.get(Line, centres["twilio_line"]).hours = {d: [["08:00", "17:00"]] for d in ("MO", "TU", "WE", "TH", "FR")}
    with freeze_time(AT_20):
        _closed_call(post, "CA" + "d" * 32, ASKED, press=True)
        _closed_call(post, "CA" + "e" * 32, SILENT, press=False)
    with session_scope() as db:
        calls = {c.caller_masked: (c.status, c.end_reason, bool((c.facts or {}).get("callback_requested")))
                 for c in db.scalars(select(Call))}
        assert calls == {"0911 *** 111": ("missed", "out_of_hours", True),
                         "0922 *** 222": ("missed", "out_of_hours", False)}
        got = service.build(db, now=AT_20 + timedelta(minutes=5)).as_dict()
    assert got == {"made": 1, "merged": 0, "closed": 0, "expired": 0}
    assert _items() == [("requested", "open", "0911 *** 111")]
    with session_scope() as db:  # later builds never pick the silent caller up
        assert service.build(db, now=AT_20 + timedelta(hours=1)).as_dict()["made"] == 0
    capsys.readouterr()
    assert main(["daily-log", "build", "--centre", "default", "--date", DAY, "--json"]) == 0
    day = json.loads(capsys.readouterr().out)
    assert day["totals"]["out_of_hours"] == 2 and day["callbacks"]["callback_requests"] == 1
    assert main(["report", "--centre", "default", "--from", DAY, "--to", DAY, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["out_of_hours"] == 2 and report["callbacks"]["callback_requests"] == 1


def test_a_missed_call_in_hours_from_a_silent_out_of_hours_caller_is_an_item(client, post, centres):  # noqa: F811
    with session_scope() as db:
        db.get(Line, centres["twilio_line"]).hours = {d: [["08:00", "17:00"]] for d in ("MO", "TU", "WE", "TH", "FR")}
    with freeze_time(AT_20):
        _closed_call(post, "CA" + "e" * 32, SILENT, press=False)
    morning = AT_20 + timedelta(hours=13)  # 09:00 the next day: open
    with freeze_time(morning):
        params = {"CallSid": "CA" + "f" * 32, "From": SILENT, "Caller": SILENT}
        root = ElementTree.fromstring(post("/webhooks/twilio/voice", base_params(**params, CallStatus="ringing")).text)
        assert root.find("Enqueue") is not None
        post("/webhooks/twilio/status", base_params(**params, CallStatus="completed", CallDuration="40"))
    with session_scope() as db:
        assert service.build(db, now=morning + timedelta(minutes=5)).as_dict()["made"] == 1
        [item] = db.scalars(select(CallbackItem)).all()
        first = db.get(Call, item.call_id)
        assert (item.kind, item.missed_calls, item.number_masked) == (first.status, 1, "0922 *** 222")
        assert first.received_at > AT_20 + timedelta(hours=12) and first.end_reason != "out_of_hours"


def _build_after_the_capture() -> dict[str, int]:
    with session_scope() as db:
        last = db.scalar(select(Call.received_at).order_by(Call.received_at.desc()).limit(1))
        return service.build(db, now=last + timedelta(minutes=5)).as_dict()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_asterisk_capture_a_caller_who_did_not_press_the_key_is_not_an_item(env, rig: Rig) -> None:
    """The same real stream of the closed line, without the dialplan's POST /api/lines/callback-request
    (the AMI events are the same whether or not the caller pressed 1): no item."""
    spec = copy.deepcopy(expected(FIXTURES / "out_of_hours"))
    spec["http"] = [r for r in spec["http"] if r["path"] != "/api/lines/callback-request"]
    _users(spec)
    replay(rig, FIXTURES / "out_of_hours" / "filtered.ami", spec)
    with session_scope() as db:
        [call] = db.scalars(select(Call)).all()
        assert (call.status, call.end_reason, (call.facts or {}).get("callback_requested")) == \
            ("missed", "out_of_hours", None)
    assert _build_after_the_capture() == {"made": 0, "merged": 0, "closed": 0, "expired": 0}
    assert _items() == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_asterisk_capture_the_key_press_is_an_item_and_a_request_counted(env, rig: Rig) -> None:
    spec = expected(FIXTURES / "out_of_hours")
    _users(spec)
    replay(rig, FIXTURES / "out_of_hours" / "filtered.ami", spec)
    assert _build_after_the_capture()["made"] == 1
    assert _items() == [("requested", "open", "0908 *** 999")]
    with session_scope() as db:
        call = db.scalars(select(Call)).one()
        got = service.counts(db, centre_id=call.centre_id, since=call.received_at - timedelta(hours=1),
                             until=call.received_at + timedelta(hours=1))
    assert got["callback_requests"] == 1 and got["called_back"] == 0
