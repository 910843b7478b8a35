"""The Twilio adapter over HTTP, on SQLite and PostgreSQL: signed webhooks in, TwiML out, calls updated."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import func, select

from hotline.calls.models import Call, DeadLetter, RawEvent
from hotline.centres.service import add_line, create_centre, map_agent
from hotline.db import session_scope
from hotline.ingest import spool
from hotline.settings import reset_settings
from tests.helpers import create_user
from tests.twilio.conftest import AGENT_CALL_SID, CALL_SID, CALLER, LINE, base_params, sign

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rfc2822(seconds: float) -> str:
    return format_datetime(at(seconds), usegmt=True)


def xml(response) -> ElementTree.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return ElementTree.fromstring(response.text)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "https://hotline.example.org"
    return parts.path + ("?" + parts.query if parts.query else "")


def all_calls() -> list[Call]:
    with session_scope() as s:
        return list(s.scalars(select(Call).order_by(Call.id)))


def count(model) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def dead_letters() -> list[DeadLetter]:
    with session_scope() as s:
        return list(s.scalars(select(DeadLetter).order_by(DeadLetter.id)))


@pytest.fixture
def kontum(env):
    """A centre that owns the Twilio number LINE, with counsellor 'lan' answering as client:lan."""
    with session_scope() as s:
        centre = create_centre(s, code="kontum", name="Trung tâm CTXH Kon Tum")
        add_line(s, centre=centre, provider="twilio", kind="number", identifier=LINE)
    uid = create_user("lan", "xanh-la-cay-mua-thu-7", "counsellor", centre_code="kontum")
    with session_scope() as s:
        from hotline.centres.service import get_centre

        map_agent(s, centre=get_centre(s, "kontum"), provider="twilio", identity="client:lan", user_id=uid)
    return uid


# ---------------------------------------------------------------------- TwiML
def test_voice_greets_in_vietnamese_and_enqueues_into_the_centre_queue(post, kontum) -> None:
    root = xml(post("/webhooks/twilio/voice", base_params(CallStatus="ringing")))
    say = root.find("Say")
    assert say is not None and say.get("language") == "vi-VN" and "Xin chào" in (say.text or "")
    enqueue = root.find("Enqueue")
    assert enqueue is not None and enqueue.text == "hotline-kontum"
    assert path_of(enqueue.get("action", "")).startswith("/webhooks/twilio/enqueue-action?")
    assert path_of(enqueue.get("waitUrl", "")) == "/webhooks/twilio/wait"
    assert "ghi âm" not in ElementTree.tostring(root, encoding="unicode")  # no recording notice by default
    [call] = all_calls()
    assert (call.status, call.queue, call.unrouted, call.caller_id_status) == ("queued", "hotline-kontum", False,
                                                                              "present")
    assert call.caller_masked and CALLER not in call.caller_masked


def test_unknown_number_goes_to_the_default_queue_and_is_flagged(post, env, monkeypatch) -> None:
    monkeypatch.setenv("HOTLINE_TWILIO_RECORDING_NOTICE", "true")
    reset_settings()
    root = xml(post("/webhooks/twilio/voice", base_params(To="+842873009999", Called="+842873009999")))
    assert root.find("Enqueue").text == "hotline-default"
    texts = [s.text or "" for s in root.findall("Say")]
    assert len(texts) == 2 and "ghi âm" in texts[1]
    [call] = all_calls()
    assert call.unrouted is True and call.status == "queued"


def test_hold_music_loop_and_agent_twiml(post, kontum) -> None:
    hold = xml(post("/webhooks/twilio/wait", {"QueuePosition": "3", "QueueTime": "5", "CallSid": CALL_SID,
                                             "QueueSid": "QU" + "9" * 32, "AvgQueueTime": ""}))
    assert hold.find("Say").get("language") == "vi-VN"
    assert "vị trí số 3" in ElementTree.tostring(hold, encoding="unicode")
    assert hold.find("Pause") is not None
    agent = xml(post("/webhooks/twilio/agent", {"CallSid": AGENT_CALL_SID, "From": "client:lan",
                                               "Caller": "client:lan", "To": ""}))
    queue = agent.find("Dial/Queue")
    assert queue is not None and queue.text == "hotline-kontum"
    assert path_of(queue.get("url", "")) == "/webhooks/twilio/dequeue?queue=hotline-kontum&agent=client%3Alan"
    assert all_calls() == []  # a counsellor's own leg is not a hotline call
    assert count(RawEvent) == 1


# ---------------------------------------------------------------------- a whole call
def call_steps(post) -> list[tuple[float, str, dict[str, str]]]:
    """The requests Twilio makes for one answered call: (seconds after T0, path, params)."""
    with freeze_time(at(0)):
        voice = xml(post("/webhooks/twilio/voice", base_params(CallStatus="ringing")))
        agent = xml(post("/webhooks/twilio/agent", {"CallSid": AGENT_CALL_SID, "From": "client:lan",
                                                   "Caller": "client:lan", "To": ""}))
    action = path_of(voice.find("Enqueue").get("action"))
    dequeue = path_of(agent.find("Dial/Queue").get("url"))
    dial_action = path_of(agent.find("Dial").get("action"))
    return [
        (1, "/webhooks/twilio/status", base_params(CallStatus="in-progress", SequenceNumber="0",
                                                   Timestamp=rfc2822(1), CallbackSource="call-progress-events")),
        (30, dequeue, base_params(CallStatus="in-progress", QueueSid="QU" + "9" * 32, QueueTime="30",
                                  DequeingCallSid=AGENT_CALL_SID)),
        (330, "/webhooks/twilio/status", base_params(CallStatus="completed", SequenceNumber="1",
                                                     Timestamp=rfc2822(330), CallDuration="330",
                                                     CallbackSource="call-progress-events")),
        (330, action, base_params(CallStatus="completed", QueueResult="bridged", QueueTime="30",
                                  QueueSid="QU" + "9" * 32)),
        (330, dial_action, {"CallSid": AGENT_CALL_SID, "From": "client:lan", "Caller": "client:lan", "To": "",
                            "DialCallStatus": "completed", "DialCallDuration": "300",
                            "DialCallSid": "CA" + "3" * 32, "CallStatus": "completed"}),
    ]


def send(post, steps) -> None:
    for seconds, path, params in steps:
        with freeze_time(at(seconds)):
            xml(post(path, params))


def assert_completed_call(uid: int) -> None:
    [call] = all_calls()
    assert call.status == "completed"
    assert call.queue == "hotline-kontum" and call.unrouted is False
    assert call.received_at == at(0)
    assert call.answered_at == at(30)
    assert call.ended_at == at(330)
    assert (call.queue_wait_seconds, call.talk_seconds) == (30, 300)
    assert call.answered_by == "client:lan" and call.counsellor_id == uid
    assert call.caller_id_status == "present" and call.number_hash


def test_full_call_voice_enqueue_dequeue_completed(post, kontum) -> None:
    send(post, call_steps(post))
    assert_completed_call(kontum)
    assert count(DeadLetter) == 0


ORDERS = {
    "completed_before_in_progress": [2, 0, 1, 3, 4],
    "everything_reversed": [4, 3, 2, 1, 0],
    "dial_action_before_dequeue": [0, 4, 3, 2, 1],
    "bridged_action_first": [3, 2, 4, 1, 0],
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_reordered_callbacks_end_in_the_same_state(post, kontum, order: str) -> None:
    steps = call_steps(post)
    send(post, [steps[i] for i in ORDERS[order]])
    assert_completed_call(kontum)


def test_duplicates_and_shuffled_sequence_numbers_change_nothing(post, kontum) -> None:
    steps = call_steps(post)
    send(post, steps)
    raws = count(RawEvent)
    shuffled = steps * 3
    random.Random(2).shuffle(shuffled)
    send(post, shuffled)  # Twilio retries, late and in any order
    assert count(RawEvent) == raws
    assert_completed_call(kontum)
    with freeze_time(at(400)):  # a late in-progress (lower SequenceNumber) cannot reopen the call
        xml(post("/webhooks/twilio/status", base_params(CallStatus="in-progress", SequenceNumber="0",
                                                        Timestamp=rfc2822(1), CallbackSource="x")))
    assert_completed_call(kontum)


def test_idempotency_token_dedupes_retries(post, kontum) -> None:
    params = base_params(CallStatus="ringing")
    for _ in range(3):
        xml(post("/webhooks/twilio/voice", params, headers={"I-Twilio-Idempotency-Token": "tok-1"}))
    assert count(RawEvent) == 1 and len(all_calls()) == 1


def test_abandoned_in_queue(post, kontum) -> None:
    with freeze_time(at(0)):
        voice = xml(post("/webhooks/twilio/voice", base_params()))
    action = path_of(voice.find("Enqueue").get("action"))
    with freeze_time(at(45)):
        root = xml(post(action, base_params(QueueResult="hangup", QueueTime="45", CallStatus="completed")))
    assert root.find("Hangup") is not None
    send(post, [(45, "/webhooks/twilio/status", base_params(CallStatus="completed", SequenceNumber="3",
                                                            Timestamp=rfc2822(45), CallDuration="45"))])
    [call] = all_calls()
    assert (call.status, call.queue_wait_seconds, call.answered_at) == ("abandoned", 45, None)


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_failed_statuses(post, env, status: str) -> None:
    send(post, [(3, "/webhooks/twilio/status", base_params(CallStatus=status, SequenceNumber="1",
                                                           Timestamp=rfc2822(3)))])
    [call] = all_calls()
    assert (call.status, call.failed_reason) == ("failed", status)


def test_queue_failure_requeues_then_gives_up(post, kontum) -> None:
    voice = xml(post("/webhooks/twilio/voice", base_params()))
    action = path_of(voice.find("Enqueue").get("action"))
    for attempt in range(2):
        root = xml(post(action, base_params(QueueResult="system-error", QueueTime=str(attempt))))
        again = root.find("Enqueue")
        assert again is not None and again.text == "hotline-kontum", "the caller must be put back in the queue"
        action = path_of(again.get("action", ""))
        assert f"attempt={attempt + 1}" in action
        assert all_calls()[0].status == "queued"
    root = xml(post(action, base_params(QueueResult="system-error", QueueTime="2")))
    assert root.find("Enqueue") is None and root.find("Hangup") is not None
    assert "111" in (root.find("Say").text or "")
    [call] = all_calls()
    assert (call.status, call.failed_reason) == ("failed", "system-error")


def test_withheld_twilio_caller_ids_are_never_one_caller(post, env) -> None:
    for sid in ("CA" + "5" * 32, "CA" + "6" * 32):
        xml(post("/webhooks/twilio/voice", base_params(CallSid=sid, From="+266696687", Caller="+266696687")))
    calls = all_calls()
    assert [c.caller_id_status for c in calls] == ["withheld", "withheld"]
    assert [c.number_hash for c in calls] == [None, None]


def test_child_leg_maps_to_the_parent_call(post, kontum) -> None:
    xml(post("/webhooks/twilio/voice", base_params()))
    child = {"CallSid": "CA" + "7" * 32, "ParentCallSid": CALL_SID, "From": LINE, "To": "client:lan",
             "Direction": "outbound-dial"}
    send(post, [(5, "/webhooks/twilio/status", {**child, "CallStatus": "ringing", "SequenceNumber": "0",
                                                "Timestamp": rfc2822(5)}),
                (8, "/webhooks/twilio/status", {**child, "CallStatus": "in-progress", "SequenceNumber": "1",
                                                "Timestamp": rfc2822(8)})])
    [call] = all_calls()
    assert (call.status, call.answered_by, call.counsellor_id, call.offered_to) == (
        "in_progress", "client:lan", kontum, "client:lan")


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("signature", ["forged", ""])
def test_forged_or_missing_signature_is_refused_and_kept(post, env, signature: str, caplog) -> None:
    sig = "forged" if signature else ""
    response = post("/webhooks/twilio/status", base_params(CallStatus="completed"), signature=sig or "")
    assert response.status_code == 403 and "Forbidden" in response.text
    assert all_calls() == []
    [dead] = dead_letters()
    assert "X-Twilio-Signature" in dead.reason and "CallStatus=completed" in dead.payload
    [line] = [r for r in caplog.records if r.getMessage() == "twilio.signature_rejected"]
    assert "X-Twilio-Signature" in line.reason
    assert all(CALLER not in repr(vars(r)) for r in caplog.records)  # numbers never reach the log


def test_signature_over_other_params_or_url_is_refused(post, env) -> None:
    params = base_params(CallStatus="completed")
    good = sign("/webhooks/twilio/status", params)
    assert post("/webhooks/twilio/status", {**params, "CallStatus": "busy"}, signature=good).status_code == 403
    assert post("/webhooks/twilio/dial-action", params, signature=good).status_code == 403
    wrong_token = sign("/webhooks/twilio/status", params, token="another-token")
    assert post("/webhooks/twilio/status", params, signature=wrong_token).status_code == 403
    assert post("/webhooks/twilio/status", params, signature=good).status_code == 200


def test_blank_values_take_part_in_the_signature(post, env) -> None:
    params = base_params(CallStatus="ringing", CallerName="", ForwardedFrom="")
    url_sig = sign("/webhooks/twilio/voice", params)
    assert post("/webhooks/twilio/voice", params, signature=url_sig).status_code == 200
    without_blank = {k: v for k, v in params.items() if v}
    assert post("/webhooks/twilio/voice", params, signature=sign("/webhooks/twilio/voice", without_blank)
                ).status_code == 403


def test_no_auth_token_configured_refuses_with_a_clear_log(post, env, monkeypatch, caplog) -> None:
    params = base_params(CallStatus="ringing")
    signature = sign("/webhooks/twilio/voice", params)
    monkeypatch.setenv("HOTLINE_TWILIO_AUTH_TOKEN", "")
    reset_settings()
    assert post("/webhooks/twilio/voice", params, signature=signature).status_code == 403
    [line] = [r for r in caplog.records if r.getMessage() == "twilio.signature_rejected"]
    assert "HOTLINE_TWILIO_AUTH_TOKEN is not set" in line.reason


@pytest.mark.parametrize("path, params, field", [
    ("/webhooks/twilio/status", {"From": CALLER, "CallStatus": "completed"}, "CallSid"),
    ("/webhooks/twilio/status", {"CallSid": CALL_SID, "CallStatus": ""}, "CallStatus"),
    ("/webhooks/twilio/enqueue-action", {"CallSid": CALL_SID}, "QueueResult"),
    ("/webhooks/twilio/dequeue", {"CallSid": CALL_SID, "QueueTime": "3"}, "DequeingCallSid"),
    ("/webhooks/twilio/dial-action", {"CallSid": CALL_SID}, "DialCallStatus"),
    ("/webhooks/twilio/voice", {"From": CALLER, "To": LINE}, "CallSid"),
])
def test_missing_fields_give_400_and_a_dead_letter(post, env, path: str, params: dict, field: str) -> None:
    response = post(path, params)
    assert response.status_code == 400
    assert field in response.text and "missing required field" in response.text
    [dead] = dead_letters()
    assert field in dead.reason and path in dead.payload
    assert all_calls() == []


def test_unknown_status_value_is_kept_as_a_dead_letter(post, env) -> None:
    response = post("/webhooks/twilio/status", base_params(CallStatus="teleported"))
    assert response.status_code == 400 and "teleported" in response.text
    [dead] = dead_letters()
    assert "unknown CallStatus" in dead.reason


# ---------------------------------------------------------------------- database outage
def test_voice_enqueues_while_the_database_is_down_and_replays_later(db_url, env, tmp_path, monkeypatch) -> None:
    from hotline.app import create_app
    from webhooks.twilio import views

    down = ("postgresql+psycopg://postgres@127.0.0.1:1/hotline_down" if db_url.startswith("postgresql")
            else f"sqlite:///{tmp_path / 'no-such-dir' / 'down.sqlite3'}")
    monkeypatch.setattr(views, "DRAIN_INTERVAL_SECONDS", 0.1)
    monkeypatch.setenv("HOTLINE_DATABASE_URL", down)
    reset_settings()
    params = base_params(CallStatus="ringing")
    with TestClient(create_app()) as client:
        headers = {"X-Twilio-Signature": sign("/webhooks/twilio/voice", params),
                   "Content-Type": "application/x-www-form-urlencoded"}
        started = time.monotonic()
        response = client.post("/webhooks/twilio/voice", data=params, headers=headers)
        assert time.monotonic() - started < 3
        root = xml(response)
        assert root.find("Enqueue").text == "hotline-default"
        assert len(spool.pending_files()) == 1
        done = base_params(CallStatus="completed", SequenceNumber="1", Timestamp=rfc2822(60), CallDuration="60")
        headers["X-Twilio-Signature"] = sign("/webhooks/twilio/status", done)
        assert client.post("/webhooks/twilio/status", data=done, headers=headers).status_code == 200
        assert len(spool.pending_files()) == 2

        monkeypatch.setenv("HOTLINE_DATABASE_URL", db_url)  # the database is back
        reset_settings()
        deadline = time.monotonic() + 10
        while spool.pending_files() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert spool.pending_files() == []
    [call] = all_calls()
    assert call.status == "missed" and call.queue == "hotline-default" and call.ended_at == at(60)


def test_concurrent_callbacks_of_many_calls_are_all_applied(post, env) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sids = [f"CA{i:032d}" for i in range(20)]
    for sid in sids:
        xml(post("/webhooks/twilio/voice", base_params(CallSid=sid)))
    requests = [base_params(CallSid=sid, CallStatus=status, SequenceNumber=str(seq), Timestamp=rfc2822(sec),
                            **({"CallDuration": "60"} if status == "completed" else {}))
                for sid in sids for seq, (status, sec) in enumerate((("ringing", 0), ("in-progress", 1),
                                                                     ("completed", 60)))]
    random.Random(7).shuffle(requests)
    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(lambda p: post("/webhooks/twilio/status", p).status_code, requests))
    assert codes == [200] * len(requests)
    calls = all_calls()
    assert len(calls) == 20 and {c.status for c in calls} == {"missed"}
    assert {c.ended_at for c in calls} == {at(60)}
    assert count(RawEvent) == 20 + len(requests) and count(DeadLetter) == 0


def test_dial_action_on_the_callers_own_leg_reports_talk_time(post, kontum) -> None:
    with freeze_time(at(0)):
        xml(post("/webhooks/twilio/voice", base_params()))
    send(post, [(125, "/webhooks/twilio/dial-action", base_params(
        DialCallStatus="completed", DialCallDuration="120", DialCallSid="CA" + "8" * 32, CallStatus="in-progress"))])
    [call] = all_calls()
    assert (call.status, call.answered_at, call.ended_at, call.talk_seconds) == ("completed", at(5), at(125), 120)
    send(post, [(126, "/webhooks/twilio/dial-action", base_params(
        CallSid="CA" + "4" * 32, DialCallStatus="no-answer", DialCallDuration="0"))])
    assert len(all_calls()) == 1  # an unanswered dial says nothing the call's own callbacks will not


def test_counsellor_gets_the_default_queue_while_the_database_is_down(db_url, env, tmp_path, monkeypatch) -> None:
    from hotline.app import create_app

    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'no-such-dir' / 'down.sqlite3'}")
    reset_settings()
    params = {"CallSid": AGENT_CALL_SID, "From": "client:lan", "To": ""}
    headers = {"X-Twilio-Signature": sign("/webhooks/twilio/agent", params)}
    with TestClient(create_app()) as client:
        root = xml(client.post("/webhooks/twilio/agent", data=params, headers=headers))
    assert root.find("Dial/Queue").text == "hotline-default"
    assert len(spool.pending_files()) == 1  # the request itself is kept for later


def test_during_an_outage_callers_and_counsellors_keep_their_centre_queue(post, kontum, tmp_path,
                                                                           monkeypatch) -> None:
    agent_params = {"CallSid": AGENT_CALL_SID, "From": "client:lan", "To": ""}
    assert xml(post("/webhooks/twilio/voice", base_params())).find("Enqueue").text == "hotline-kontum"
    assert xml(post("/webhooks/twilio/agent", agent_params)).find("Dial/Queue").text == "hotline-kontum"
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'no-such-dir' / 'down.sqlite3'}")
    reset_settings()  # the same running app loses its database
    root = xml(post("/webhooks/twilio/voice", base_params(CallSid="CA" + "9" * 32)))
    assert root.find("Enqueue").text == "hotline-kontum"
    root = xml(post("/webhooks/twilio/agent", agent_params))
    assert root.find("Dial/Queue").text == "hotline-kontum"
    other = base_params(CallSid="CA" + "6" * 32, To="+842873005555", Called="+842873005555")
    assert xml(post("/webhooks/twilio/voice", other)).find("Enqueue").text == "hotline-default"
    assert len(spool.pending_files()) == 3


def test_simultaneous_first_calls_on_an_empty_database_are_all_applied(post, env) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sids = [f"CA{i:032d}" for i in range(100, 116)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        roots = list(pool.map(lambda sid: xml(post("/webhooks/twilio/voice", base_params(CallSid=sid))), sids))
    assert {r.find("Enqueue").text for r in roots} == {"hotline-default"}
    assert spool.pending_files() == []  # a race on creating the default centre is not an outage
    assert len(all_calls()) == 16 and {c.status for c in all_calls()} == {"queued"}
