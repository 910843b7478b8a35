"""Twilio voice routing by line, through signed webhooks: out of hours (message with the emergency
numbers, a key for a callback; freezegun for hours and holidays), overflow to another centre after
the line's wait or when nobody is free, and the supervisors' queue taken by a supervisor's phone."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from hotline.calls.models import Call, CallRecord
from hotline.centres.models import Line
from hotline.centres.service import add_line, create_centre, get_centre, map_agent
from hotline.db import session_scope
from tests.helpers import create_user, login
from tests.routing.conftest import PASSWORD
from tests.twilio.conftest import AGENT_CALL_SID, CALL_SID, base_params

MONDAY_10 = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)  # 10:00 in Ho Chi Minh City
MONDAY_20 = datetime(2026, 12, 7, 13, 0, tzinfo=timezone.utc)
TET_10 = datetime(2027, 2, 8, 3, 0, tzinfo=timezone.utc)  # a Monday of Tết 2027 (public holiday)
HCM_NUMBER = "+842873009876"  # the overflow centre's own Twilio number (its counsellors' queue)
QUEUE_SID = "QU" + "9" * 32


def xml(response) -> ElementTree.Element:
    assert response.status_code == 200, response.text
    return ElementTree.fromstring(response.text)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _set_line(line_id: int, **values) -> None:
    with session_scope() as db:
        line = db.get(Line, line_id)
        for name, value in values.items():
            setattr(line, name, value)


WEEKDAYS_8_TO_17 = {d: [["08:00", "17:00"]] for d in ("MO", "TU", "WE", "TH", "FR")}


@pytest.fixture
def people(client, centres):
    """Counsellor lan (home, client:lan), counsellor hoa and supervisor minh (hcm, client:hoa),
    supervisor gs1 (home, client:gs1); hcm answers its own Twilio number."""
    with session_scope() as db:
        hcm = get_centre(db, "hcm")
        add_line(db, centre=hcm, provider="twilio", kind="number", identifier=HCM_NUMBER)
    ids = {"lan": create_user("lan", PASSWORD, "counsellor"),
           "hoa": create_user("hoa", PASSWORD, "counsellor", centre_code="hcm"),
           "minh": create_user("minh", PASSWORD, "supervisor", centre_code="hcm"),
           "gs1": create_user("gs1", PASSWORD, "supervisor"),
           "third": None}
    with session_scope() as db:
        create_centre(db, code="dn", name="Trung tâm Đà Nẵng")
    ids["third"] = create_user("gs_dn", PASSWORD, "supervisor", centre_code="dn")
    with session_scope() as db:
        map_agent(db, centre=get_centre(db, "default"), provider="twilio", identity="client:lan", user_id=ids["lan"])
        map_agent(db, centre=get_centre(db, "hcm"), provider="twilio", identity="client:hoa", user_id=ids["hoa"])
        map_agent(db, centre=get_centre(db, "default"), provider="twilio", identity="client:gs1", user_id=ids["gs1"])
    return ids


def _call() -> Call:
    with session_scope() as db:
        call = db.scalars(select(Call)).one()
        db.expunge(call)
        return call


# ---------------------------------------------------------------------- out of hours
def test_out_of_hours_message_emergency_numbers_and_callback_key(post, centres):
    _set_line(centres["twilio_line"], hours=WEEKDAYS_8_TO_17)
    with freeze_time(MONDAY_20):
        root = xml(post("/webhooks/twilio/voice", base_params(CallStatus="ringing")))
    assert root.find("Enqueue") is None
    gather = root.find("Gather")
    said = gather.find("Say")
    assert gather.get("numDigits") == "1" and said.get("language") == "vi-VN"
    assert all(n in said.text for n in ("113", "115", "111")) and "ngoài giờ làm việc" in said.text
    assert root.find("Hangup") is not None
    call = _call()
    assert call.facts.get("out_of_hours") is True and call.queued_at is None and call.centre_id == centres["home"]
    # the key press: a callback request, thanked
    key = path_of(gather.get("action"))
    thanks = xml(post(key, base_params(Digits="1")))
    assert "gọi lại" in thanks.find("Say").text and thanks.find("Hangup") is not None
    assert _call().facts["callback_requested"] == "out_of_hours"
    assert post(key, base_params(Digits="1"), signature="wrong").status_code == 403


def test_open_hours_holidays_and_the_message_without_callback(post, centres):
    _set_line(centres["twilio_line"], hours=WEEKDAYS_8_TO_17)
    with freeze_time(MONDAY_10):
        assert xml(post("/webhooks/twilio/voice", base_params())).find("Enqueue").text == "hotline-default"
    with freeze_time(TET_10):
        closed = xml(post("/webhooks/twilio/voice", base_params(CallSid="CA" + "5" * 32)))
    assert closed.find("Gather") is not None and closed.find("Enqueue") is None
    _set_line(centres["twilio_line"], closed_message="no_callback", closed_on_holidays=False)
    with freeze_time(TET_10):
        assert xml(post("/webhooks/twilio/voice", base_params(CallSid="CA" + "6" * 32))).find("Enqueue") is not None
    with freeze_time(MONDAY_20):
        plain = xml(post("/webhooks/twilio/voice", base_params(CallSid="CA" + "7" * 32)))
    assert plain.find("Gather") is None and "113" in plain.find("Say").text and plain.find("Hangup") is not None


# ---------------------------------------------------------------------- overflow
def _available(client, username: str) -> None:
    client.cookies.clear()
    csrf = login(client, username, PASSWORD)
    assert client.post("/live/presence", json={"state": "available"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    client.cookies.clear()


def test_overflow_after_the_line_wait_answered_by_the_other_centre(client, post, centres, people):
    _set_line(centres["twilio_line"], overflow_centre_id=centres["other"], overflow_wait_seconds=60)
    _available(client, "lan")  # someone is free here: the caller waits the line's 60 s first
    voice = xml(post("/webhooks/twilio/voice", base_params(CallStatus="ringing")))
    enqueue = voice.find("Enqueue")
    assert enqueue.text == "hotline-default"
    wait, action = path_of(enqueue.get("waitUrl")), path_of(enqueue.get("action"))
    assert wait == "/webhooks/twilio/wait?overflow_after=60"
    held = xml(post(wait, {"CallSid": CALL_SID, "QueueTime": "50", "QueuePosition": "1", "QueueSid": QUEUE_SID}))
    assert held.find("Leave") is None and held.find("Pause").get("length") == "10"
    left = xml(post(wait, {"CallSid": CALL_SID, "QueueTime": "61", "QueuePosition": "1", "QueueSid": QUEUE_SID}))
    assert left.find("Leave") is not None
    onward = xml(post(action, base_params(QueueResult="leave", QueueTime="61", QueueSid=QUEUE_SID)))
    assert onward.find("Enqueue").text == "hotline-hcm" and "trung tâm khác" in onward.find("Say").text
    call = _call()
    assert (call.centre_id, call.overflow_centre_id, call.status) == (centres["home"], centres["other"], "queued")
    assert call.facts["overflow_to"] == centres["other"] and call.facts["overflow_from"] == centres["home"]
    # hoa (hcm) takes the next caller of hcm's queue
    agent = xml(post("/webhooks/twilio/agent", {"CallSid": AGENT_CALL_SID, "From": "client:hoa",
                                                "Caller": "client:hoa", "To": ""}))
    queue = agent.find("Dial/Queue")
    assert queue.text == "hotline-hcm"
    post(path_of(queue.get("url")), base_params(CallStatus="in-progress", QueueSid=QUEUE_SID, QueueTime="65",
                                                DequeingCallSid=AGENT_CALL_SID))
    call = _call()
    assert call.status == "in_progress" and call.counsellor_id == people["hoa"] and call.centre_id == centres["home"]
    # hoa records it; the record is the line's centre's
    client.cookies.clear()
    csrf = login(client, "hoa", PASSWORD)
    opened = client.post(f"/records/for-call/{call.id}", headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert opened.status_code == 200, opened.text
    record_id = opened.json()["id"]
    with session_scope() as db:
        record = db.get(CallRecord, record_id)
        assert (record.centre_id, record.overflow_centre_id, record.counsellor_id) == \
            (centres["home"], centres["other"], people["hoa"])
    assert client.get(f"/records/{record_id}").status_code == 200
    # both centres' supervisors see the call and its record; a third centre's does not
    for supervisor, expected in (("minh", 200), ("gs1", 200), ("gs_dn", 404)):
        client.cookies.clear()
        login(client, supervisor, PASSWORD)
        assert client.get(f"/live/calls/{call.id}/pop").status_code == expected, supervisor
        assert client.get(f"/records/{record_id}").status_code == expected, supervisor
    client.cookies.clear()
    login(client, "minh", PASSWORD)
    board = client.get("/live/wallboard.json").json()
    assert [(c["id"], c["overflow"]) for c in board["in_progress"]] == [(call.id, "in")]
    listed = client.get("/api/calls").json()
    assert call.id in [c["id"] for c in (listed["calls"] if isinstance(listed, dict) else listed)]
    client.cookies.clear()
    login(client, "gs1", PASSWORD)
    [row] = client.get("/live/wallboard.json").json()["in_progress"]
    assert (row["id"], row["overflow"], row["counsellor"]) == (call.id, "out", "hoa")  # hcm's counsellor, by name


def test_nobody_free_overflows_at_once(post, centres, people):
    _set_line(centres["twilio_line"], overflow_centre_id=centres["other"], overflow_wait_seconds=120)
    voice = xml(post("/webhooks/twilio/voice", base_params()))
    wait = path_of(voice.find("Enqueue").get("waitUrl"))
    assert wait == "/webhooks/twilio/wait?overflow_after=0"
    assert xml(post(wait, {"CallSid": CALL_SID, "QueueTime": "0", "QueueSid": QUEUE_SID})).find("Leave") is not None


def test_without_overflow_the_wait_loops_as_before(post, centres):
    voice = xml(post("/webhooks/twilio/voice", base_params()))
    assert path_of(voice.find("Enqueue").get("waitUrl")) == "/webhooks/twilio/wait"
    assert "overflow" not in voice.find("Enqueue").get("action")


# ---------------------------------------------------------------------- the supervisors' queue
def test_a_supervisor_takes_the_supervisors_queue_first_then_the_centre_queue(post, centres, people):
    agent = xml(post("/webhooks/twilio/agent", {"CallSid": AGENT_CALL_SID, "From": "client:gs1",
                                                "Caller": "client:gs1", "To": ""}))
    dial = agent.find("Dial")
    assert dial.get("timeout") == "3" and dial.find("Queue").text == "hotline-default-supervisors"
    assert "dequeue?queue=hotline-default-supervisors" in dial.find("Queue").get("url")
    action = path_of(dial.get("action"))
    params = {"CallSid": AGENT_CALL_SID, "From": "client:gs1", "Caller": "client:gs1", "To": ""}
    # nobody waiting for a supervisor (queue empty or not created yet): on to the centre's queue
    for status in ("no-answer", "failed"):
        then = xml(post(action, {**params, "DialCallStatus": status}))
        assert then.find("Dial/Queue").text == "hotline-default"
    # a blocked caller was taken: the supervisor's call ends there
    done = xml(post(action, {**params, "DialCallStatus": "completed", "DialCallDuration": "40"}))
    assert done.find("Dial") is None
    # counsellors are not offered the supervisors' queue
    lan = xml(post("/webhooks/twilio/agent", {"CallSid": "CA" + "8" * 32, "From": "client:lan",
                                              "Caller": "client:lan", "To": ""}))
    assert lan.find("Dial/Queue").text == "hotline-default" and lan.find("Dial").get("timeout") is None
