"""#14 finding 7, Twilio part: signed but absurd values never give a 500.

The call is recorded with every fact the other values give; the bad value is a dead letter that
names it and says why, and a log line says so (``ingest.unparseable``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from hotline.calls.models import Call, DeadLetter
from hotline.db import session_scope
from tests.twilio.conftest import CALL_SID, base_params

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
END = T0 + timedelta(seconds=300)


def call_and_letters() -> tuple[Call, list[str]]:
    with session_scope() as s:
        [call] = s.scalars(select(Call)).all()
        s.expunge(call)
        return call, [d.reason for d in s.scalars(select(DeadLetter).order_by(DeadLetter.id))]


def completed(**values: str) -> dict[str, str]:
    return base_params(CallStatus="completed", SequenceNumber="2", CallbackSource="call-progress-events",
                       Timestamp=format_datetime(END, usegmt=True), **values)


@pytest.mark.parametrize("value", ["1e400", "99999999999999", "-30", "NaN", "inf", "thirty", "1e15", "86401"])
def test_absurd_call_duration_is_a_dead_letter_and_the_call_still_ends(post, value: str, caplog) -> None:
    with freeze_time(T0):
        assert post("/webhooks/twilio/voice", base_params(CallStatus="ringing")).status_code == 200
    with freeze_time(END):
        response = post("/webhooks/twilio/status", completed(CallDuration=value))
    assert response.status_code == 200, response.text
    call, letters = call_and_letters()
    assert call.status == "missed" and call.ended_at == END and call.received_at == T0
    [reason] = letters
    assert f"CallDuration={value!r}" in reason and "recorded without it" in reason
    assert "ingest.unparseable" in caplog.text


@pytest.mark.parametrize("value", ["1e400", "99999999999999", "-1", "nan"])
def test_absurd_queue_time_keeps_the_answer_and_the_abandon(post, value: str) -> None:
    with freeze_time(T0):
        post("/webhooks/twilio/voice", base_params(CallStatus="ringing"))
    with freeze_time(T0 + timedelta(seconds=40)):
        r = post("/webhooks/twilio/dequeue?queue=hotline-default&agent=client%3Alan",
                 base_params(CallStatus="in-progress", QueueTime=value, DequeingCallSid="CA" + "2" * 32))
        assert r.status_code == 200, r.text
    with freeze_time(END):
        r = post("/webhooks/twilio/enqueue-action?queue=hotline-default&attempt=0",
                 base_params(CallStatus="completed", QueueResult="bridged", QueueTime=value))
        assert r.status_code == 200 and "<Hangup" in r.text
        post("/webhooks/twilio/status", completed(CallDuration="300"))
    call, letters = call_and_letters()
    assert (call.status, call.answered_by) == ("completed", "client:lan")
    assert (call.queue_wait_seconds, call.talk_seconds) == (40, 260)  # from the times, not the bad value
    assert len(letters) == 2 and all(f"QueueTime={value!r}" in r for r in letters)


def test_absurd_dial_duration_and_timestamp(post) -> None:
    with freeze_time(T0):
        post("/webhooks/twilio/voice", base_params(CallStatus="ringing"))
    with freeze_time(T0 + timedelta(seconds=20)):  # the counsellor's phone (a child leg) answers
        assert post("/webhooks/twilio/status", base_params(
            CallStatus="in-progress", CallSid="CA" + "8" * 32, ParentCallSid=CALL_SID, To="+84903123456",
            Timestamp=format_datetime(T0 + timedelta(seconds=20), usegmt=True))).status_code == 200
    with freeze_time(END):
        r = post("/webhooks/twilio/dial-action", base_params(
            CallStatus="in-progress", DialCallStatus="completed", DialCallDuration="1e400", DialCallSid="CA" + "8" * 32))
        assert r.status_code == 200
        r = post("/webhooks/twilio/status", base_params(
            CallStatus="completed", CallDuration="300", Timestamp="Mon, 01 Jan 0001 00:00:00 +0000"))
        assert r.status_code == 200
    call, letters = call_and_letters()
    assert call.status == "completed" and call.ended_at == END and call.answered_by == "+84903123456"
    assert call.talk_seconds == 280  # from the answer and end times, not the bad duration
    assert any("DialCallDuration='1e400'" in r for r in letters)
    assert any("Timestamp='Mon, 01 Jan 0001" in r and "time of arrival is used" in r for r in letters)


def test_overlong_values_are_left_out_not_a_500(post) -> None:
    with freeze_time(T0):
        r = post("/webhooks/twilio/voice", base_params(CallStatus="ringing", To="+84" + "9" * 300))
        assert r.status_code == 200
        r = post("/webhooks/twilio/status", base_params(CallStatus="ringing", ParentCallSid=CALL_SID,
                                                        CallSid="CA" + "7" * 32, To="client:" + "x" * 300))
        assert r.status_code == 200
    call, letters = call_and_letters()
    assert call.dialed is None and call.offered_to is None
    assert any("dialed value of 303 characters" in r for r in letters)
    assert any("agent value of 307 characters" in r for r in letters)
