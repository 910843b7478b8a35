"""The real Asterisk captures, replayed byte for byte over TCP, through the listener into the database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hotline.calls.models import Call, RawEvent
from hotline.centres.models import Centre
from hotline.centres.service import add_line, create_centre
from hotline.db import session_scope
from hotline.ingest.providers.asterisk.simulator import Capture
from tests.ami.conftest import Rig, call, calls, count, raw_events, wait_for


def _replay(rig: Rig, path: Path, **listener_kw: object):
    server = rig.server(replay=path)
    listener = rig.listener(server, **listener_kw)
    capture = Capture.load(path)
    wait_for(lambda: listener.stats.frames_received >= len(capture.frames) and listener.stats.resyncs >= 1,
             what="the replay")
    # every distinct event frame, plus the resync snapshot
    wait_for(lambda: count(RawEvent) >= len(set(capture.event_frames())) + 1, what="raw events")
    return server, listener


AUTH = {"Authorization": "Bearer test-api-token"}


def _api_call(client, key: str) -> dict:
    body = client.get("/api/calls", headers=AUTH).json()
    (found,) = [c for c in body["calls"] if c["provider_key"] == key]
    return found


def test_answered_call_matches_the_ground_truth(client, rig: Rig, fixtures_dir: Path) -> None:
    path = fixtures_dir / "ami" / "legacy" / "answered_queue_call.txt"
    _, listener = _replay(rig, path)
    c = wait_for(lambda: (x := call("1795424141.0")) is not None and x.status == "completed" and x, what="the call")
    assert len(calls()) == 1
    assert c.provider == "asterisk"
    assert c.caller_raw == "0901234567"
    assert c.caller_number == "+84901234567"
    assert c.caller_id_status == "present"
    assert c.caller_masked and "234" not in c.caller_masked[4:8]
    assert (c.queue_wait_seconds, c.talk_seconds) == (2, 6)
    assert c.queue == "hotline"
    assert c.answered_by == "Local/agent1@agents/n"
    assert c.end_reason == "agent"
    assert c.source == f"ami:127.0.0.1:{listener.port}"
    # every distinct event frame is kept, append-only, with its Linkedid
    stored = raw_events()
    distinct = {f for f in Capture.load(path).event_frames()}
    assert len([r for r in stored if r.event_type != "Resync"]) == len(distinct)
    assert {r.provider_key for r in stored if r.event_type == "AgentComplete"} == {"1795424141.0"}
    cel = [r for r in stored if r.event_type == "CEL"]
    assert cel and all(r.provider_key == "1795424141.0" for r in cel)  # CEL spells it LinkedID
    # and through the calls API, number masked
    api = _api_call(client, "1795424141.0")
    assert (api["status"], api["queue_wait_seconds"], api["talk_seconds"]) == ("completed", 2, 6)
    assert api["caller_masked"] == "0901 *** 567" and api["caller_id_status"] == "present"
    assert api["unrouted"] is True and api["centre"] == "default"


def test_abandoned_call_matches_the_ground_truth(client, rig: Rig, fixtures_dir: Path) -> None:
    _replay(rig, fixtures_dir / "ami" / "legacy" / "abandoned_queue_call.txt")
    c = wait_for(lambda: (x := call("1795424165.6")) is not None and x.status == "abandoned" and x, what="the call")
    assert len(calls()) == 1
    assert c.caller_raw == "0901234567"
    assert c.queue_wait_seconds == 8
    assert c.answered_at is None and c.talk_seconds is None
    assert c.queue == "hotline-abandon"
    # the member rang without answer (RingTime 4000 ms) and was offered the call twice
    assert c.facts["offers_missed"] == ["Local/agent2@agents/n"]
    assert c.facts["offers"] == ["Local/agent2@agents/n"]
    # two "NO ANSWER" CDRs are stored but say nothing about the outcome
    assert len([r for r in raw_events() if r.event_type == "Cdr"]) == 3
    api = _api_call(client, "1795424165.6")
    assert (api["status"], api["queue_wait_seconds"], api["talk_seconds"]) == ("abandoned", 8, None)
    assert api["caller_masked"] == "0901 *** 567"


def test_the_same_capture_twice_counts_nothing_twice(env, rig: Rig, fixtures_dir: Path) -> None:
    path = fixtures_dir / "ami" / "legacy" / "answered_queue_call.txt"
    server, listener = _replay(rig, path)
    wait_for(lambda: (x := call("1795424141.0")) is not None and x.status == "completed", what="the call")
    before = count(RawEvent)
    server.drop()  # the PBX goes away; on the next login it sends the same capture again
    wait_for(lambda: server.logins >= 2, what="the reconnect")
    wait_for(lambda: listener.stats.frames_received >= 2 * len(Capture.load(path).frames), what="the second replay")
    wait_for(lambda: listener.stats.resyncs >= 2, what="the second resync")
    wait_for(lambda: listener.stats.duplicates >= 100, what="duplicates to be recognised")
    assert listener.stats.reconnects >= 1
    wait_for(lambda: count(RawEvent) == before + 1, what="the second snapshot")  # the only new raw event
    assert listener.stats.stored == before + 1
    (c,) = calls()
    assert (c.status, c.queue_wait_seconds, c.talk_seconds) == ("completed", 2, 6)


def test_an_unclaimed_queue_goes_to_the_default_centre_flagged(env, rig: Rig, fixtures_dir: Path) -> None:
    _replay(rig, fixtures_dir / "ami" / "legacy" / "answered_queue_call.txt")
    c = wait_for(lambda: call("1795424141.0"), what="the call")
    with session_scope() as s:
        centre = s.get(Centre, c.centre_id)
        assert centre is not None and centre.is_default
    assert c.unrouted is True and c.line_id is None


def test_a_configured_queue_line_routes_the_call(env, rig: Rig, fixtures_dir: Path) -> None:
    with session_scope() as s:
        centre = create_centre(s, code="kontum", name="Trung tâm CTXH Kon Tum")
        line = add_line(s, centre=centre, provider="asterisk", kind="queue", identifier="hotline")
        centre_id, line_id = centre.id, line.id
    _replay(rig, fixtures_dir / "ami" / "legacy" / "answered_queue_call.txt")
    c = wait_for(lambda: (x := call("1795424141.0")) is not None and x.status == "completed" and x, what="the call")
    assert (c.centre_id, c.line_id, c.unrouted) == (centre_id, line_id, False)


def test_resync_capture_opens_the_waiting_call_and_closes_the_vanished_one(env, rig: Rig, fixtures_dir: Path) -> None:
    ami = fixtures_dir / "ami" / "legacy"
    server = rig.server()
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")  # (it lists no calls)
    # the abandoned call's stream up to the moment it is waiting in the queue, then the link drops
    frames = Capture.load(ami / "abandoned_queue_call.txt").event_frames()
    upto = next(i for i, f in enumerate(frames) if f.startswith(b"Event: AgentCalled")) + 1
    server.push(b"".join(f + b"\r\n\r\n" for f in frames[:upto]))
    wait_for(lambda: (x := call("1795424165.6")) is not None and x.status == "queued", what="the queued call")
    server.set_live_from_capture(ami / "resync_coreshowchannels_queuestatus.txt")
    server.drop()
    wait_for(lambda: listener.stats.resyncs >= 2, what="the resync after the reconnect")
    gone = wait_for(lambda: (x := call("1795424165.6")) is not None and x.status == "unknown_outcome" and x,
                    what="the vanished call to be closed")
    assert gone.resync_closed_at is not None and gone.ended_at is None
    found = wait_for(lambda: call("1795424330.4"), what="the call only the resync knows")
    assert found.status == "queued"
    assert found.queue == "hotline-abandon"
    assert found.caller_number == "+84912345678"
    assert found.facts.get("seen_first_at_resync") is True
    assert found.source == listener.source
    # the resync's actions were sent with our ActionIDs, and login asked for call,agent events
    login = next(a for a in server.actions if a.get("Action") == "Login")
    assert login["Events"] == "call,agent"
    assert any(a.get("Action") == "Filter" and a.get("Filter") == "Event: AgentComplete" for a in server.actions)
    assert sum(1 for a in server.actions if a.get("Action") == "CoreShowChannels") == 2
    with session_scope() as s:
        snap = s.scalars(select(RawEvent).where(RawEvent.event_type == "Resync")).all()
    assert len(snap) == 2 and any("1795424330.4" in r.payload for r in snap)
    assert count(Call) == 2
