"""The listener under bad input, silence, restarts, refused logins and database outages."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hotline.calls.models import Call, RawEvent
from hotline.cli import main
from hotline.ingest import spool
from hotline.ingest.providers.asterisk.simulator import AmiServer, DemoPbx, live_call, message, synthetic_call
from hotline.settings import reset_settings
from tests.ami.conftest import SECRET, USER, Rig, call, calls, count, dead_letters, raw_events, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _ready(rig: Rig, **kw: object):
    server = rig.server()
    listener = rig.listener(server, **kw)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    return server, listener


def _done(key: str, status: str = "completed") -> Call:
    return wait_for(lambda: (c := call(key)) is not None and c.status == status and c, what=f"{key} {status}")


def test_bad_frames_are_kept_and_the_listener_keeps_running(env, rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    server, listener = _ready(rig)
    server.push(b"Event: Newchannel\r\nthis line has no colon\r\nUniqueid: 9.1\r\n\r\n"
                b"Event: SomethingNew\r\nPrivilege: call,all\r\nWhatever: 1\r\n\r\n"
                b"Event: Newchannel\r\nCallerIDName: Nguy\xff\xfen\r\nCallerIDNum:0912345678\r\nExten: 111\r\n"
                b"Uniqueid: 77.1\r\nLinkedid: 77.1\r\nChanVariable: A=1\r\nChanVariable: B=2\r\n\r\n"
                b"Event: UserEvent\r\nPrivilege: user,all\r\nData: a\x00b\r\n\r\n")
    wait_for(lambda: count(RawEvent) >= 5, what="the four frames")  # + the snapshot
    (dead,) = dead_letters()
    assert "malformed AMI frame" in dead.reason and "no colon" in dead.payload
    by_type = {r.event_type: r for r in raw_events()}
    assert "SomethingNew" in by_type  # unknown: stored, nothing else
    bad_utf8 = next(r for r in raw_events() if r.provider_key == "77.1")
    assert bad_utf8.payload_bytes is not None and b"\xff\xfe" in bad_utf8.payload_bytes
    assert "\ufffd" in bad_utf8.payload
    assert "ChanVariable: A=1\r\nChanVariable: B=2" in bad_utf8.payload  # repeated keys kept
    nul = by_type["UserEvent"]
    assert nul.payload_bytes == b"Event: UserEvent\r\nPrivilege: user,all\r\nData: a\x00b" and "\x00" not in nul.payload
    assert call("77.1") is None  # a channel on its own is not a hotline call (issue #16: phantom calls)
    # once it joins a queue it is one, with what its first frame said ("Key:" without a space is accepted)
    server.push(b"Event: QueueCallerJoin\r\nUniqueid: 77.1\r\nLinkedid: 77.1\r\nQueue: hotline\r\n"
                b"CallerIDNum: 0912345678\r\nPosition: 1\r\nCount: 1\r\n\r\n")
    c = wait_for(lambda: call("77.1"), what="the queued call")
    assert c.caller_raw == "0912345678" and c.dialed == "111" and c.status == "queued"
    messages = [r.getMessage() for r in caplog.records]
    assert "ingest.unparseable" in messages and "ami.invalid_utf8" in messages
    # the listener is still there: a whole call afterwards goes through
    later = synthetic_call(outcome="answered", caller="0987654321", wait=4, talk=9)
    server.push(later.stream())
    c = _done(later.linkedid)
    assert (c.queue_wait_seconds, c.talk_seconds, c.caller_number) == (4, 9, "+84987654321")
    assert listener.connected and listener.stats.reconnects == 0
    assert listener.stats.malformed == 1
    # nothing personal in the log lines
    assert not any("0912345678" in r.getMessage() + str(r.__dict__) for r in caplog.records)


def test_three_seconds_of_silence_do_not_kill_the_reader(sqlite_env, rig: Rig) -> None:
    # keepalive 10 s: no Ping for the whole test, so only the reader's own patience is tested
    server, listener = _ready(rig, keepalive=10.0)
    c1 = synthetic_call(outcome="answered", wait=3, talk=5)
    frames = c1.frames
    half = len(frames) // 2
    server.push(b"".join(f for _, f in frames[:half]))
    wait_for(lambda: call(c1.linkedid), what="the first half")
    time.sleep(3.6)  # asterisk-ami's reader dies after 3 s of silence
    server.push(b"".join(f for _, f in frames[half:]))
    c = _done(c1.linkedid)
    assert c.talk_seconds == 5
    assert listener.stats.reconnects == 0 and listener.stats.connects == 1


def test_a_restarted_server_is_found_again(sqlite_env, rig: Rig) -> None:
    server, listener = _ready(rig)
    port = server.port
    server.stop()
    wait_for(lambda: not listener.connected, what="the listener to notice")
    time.sleep(0.6)  # a few refused connection attempts with backoff
    again = rig.server(port=port)
    wait_for(lambda: listener.connected and listener.stats.resyncs >= 2, what="the reconnect")
    assert listener.stats.reconnects >= 1
    c = synthetic_call(outcome="abandoned", wait=6)
    again.push(c.stream())
    done = _done(c.linkedid, "abandoned")
    assert done.queue_wait_seconds == 6


def test_a_silent_dead_link_is_noticed_by_the_watchdog(sqlite_env, rig: Rig) -> None:
    class Mute(AmiServer):
        """Accepts the login, then never answers again (a half-open TCP connection)."""

        mute = False

        def _action(self, conn, fields):
            if not self.mute:
                super()._action(conn, fields)

    server = rig.server(cls=Mute)
    listener = rig.listener(server, keepalive=0.2, silence_factor=3)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    server.mute = True
    wait_for(lambda: listener.stats.reconnects >= 1 or "no data" in listener.stats.last_error, timeout=5,
             what="the watchdog")
    assert "no data for" in listener.stats.last_error


def test_a_call_still_on_the_pbx_at_resync_stays_open(env, rig: Rig) -> None:
    server, listener = _ready(rig)
    c = synthetic_call(outcome="answered", caller="0912000111", queue="hotline", wait=30, talk=60)
    queued = [f for offset, f in c.frames if offset == 0]
    server.push(b"".join(queued))
    wait_for(lambda: (x := call(c.linkedid)) is not None and x.status == "queued", what="the queued call")
    channels, entries = live_call(c.linkedid, caller="0912000111", queue="hotline", wait=12)
    server.set_live(channels, entries)
    server.drop()
    wait_for(lambda: listener.stats.resyncs >= 2, what="the resync")
    time.sleep(0.2)
    kept = call(c.linkedid)
    assert kept is not None and kept.status == "queued" and kept.resync_closed_at is None
    # and the rest of the call, when it comes, completes it
    server.push(b"".join(f for offset, f in c.frames if offset > 0))
    done = _done(c.linkedid)
    assert (done.queue_wait_seconds, done.talk_seconds) == (30, 60)


def test_a_re_stamped_linkedid_merges_the_two_calls(env, rig: Rig) -> None:
    server, _ = _ready(rig)

    def chan(event: str, uid: str, lid: str, *extra: tuple[str, str]) -> bytes:
        return message(("Event", event), ("Privilege", "call,all"), ("Channel", f"PJSIP/x-{uid}"),
                       ("CallerIDNum", "0912345678"), ("Exten", "1900"), ("Uniqueid", uid), ("Linkedid", lid), *extra)

    server.push(chan("Newchannel", "500.1", "500.1") + chan("QueueCallerJoin", "500.1", "500.1", ("Queue", "hotline"))
                + chan("Newchannel", "600.1", "600.1") + chan("QueueCallerJoin", "600.1", "600.1", ("Queue", "hotline-2")))
    wait_for(lambda: call("500.1") and call("600.1"), what="two calls")
    # a transfer bridges 600.1 into 500.1's call: Asterisk re-stamps its Linkedid
    server.push(chan("BridgeEnter", "600.1", "500.1") + chan("Hangup", "600.1", "500.1", ("Cause-txt", "Normal")))
    wait_for(lambda: len(calls()) == 1, what="the merge")
    (merged,) = calls()
    assert merged.provider_key == "500.1" and merged.queue == "hotline"
    assert "600.1" in merged.facts.get("merged", [])


def test_a_database_outage_spools_and_replays_later(sqlite_env, rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    good = sqlite_env.database_url
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=1")
    reset_settings()
    server, listener = _ready(rig)
    c = synthetic_call(outcome="answered", wait=2, talk=7)
    server.push(c.stream())
    wait_for(lambda: listener.stats.spooled >= len(c.frames), what="events spooled")
    assert spool.pending_files()
    assert listener.connected  # an outage does not stop the listener
    monkeypatch.setenv("HOTLINE_DATABASE_URL", good)
    reset_settings()
    done = _done(c.linkedid)
    assert (done.queue_wait_seconds, done.talk_seconds) == (2, 7)
    wait_for(lambda: not spool.pending_files(), what="the spool to empty")


def test_a_refused_login_is_reported_and_retried(sqlite_env, rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    server = rig.server()
    listener = rig.listener(server, secret="wrong", reconnect_max=0.2)
    # The server counts a refusal when it answers; the listener once it has read the answer.
    wait_for(lambda: server.failed_logins >= 2 and listener.stats.login_failures >= 2, what="two attempts")
    assert not listener.connected and listener.stats.login_failures >= 2
    assert "refused the login" in listener.stats.last_error
    assert "HOTLINE_AMI_SECRET" in listener.stats.last_error
    assert any(r.getMessage() == "ami.connect_failed" for r in caplog.records)
    started = time.monotonic()
    listener.stop()
    assert time.monotonic() - started < 1.0


def test_stop_returns_at_once_while_connected(sqlite_env, rig: Rig) -> None:
    _, listener = _ready(rig, timeout=3.0)
    started = time.monotonic()
    listener.stop()
    assert time.monotonic() - started < 1.0  # asterisk-ami's disconnect() would wait its 3 s timeout
    assert not listener.connected


def test_cli_needs_the_ami_account(sqlite_env, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ami"]) == 2
    err = capsys.readouterr().err
    assert "HOTLINE_AMI_USERNAME" in err and "HOTLINE_AMI_SECRET" in err and "manager.conf" in err


def test_cli_listens_until_sigterm(sqlite_env, rig: Rig) -> None:
    server = rig.server()
    env = {**os.environ, "HOTLINE_AMI_HOST": "127.0.0.1", "HOTLINE_AMI_PORT": str(server.port),
           "HOTLINE_AMI_USERNAME": USER, "HOTLINE_AMI_SECRET": SECRET, "HOTLINE_AMI_KEEPALIVE_SECONDS": "1",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hotline", "--log-format", "json", "ami"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert server.wait_for_login(timeout=20), "hotline ami did not log in"
        wait_for(lambda: sum(1 for a in server.actions if a.get("Action") == "QueueStatus") >= 1,
                 what="the resync request")
        c = synthetic_call(outcome="answered", wait=2, talk=3)
        server.push(c.stream())
        _done(c.linkedid)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err.decode()
    log = err.decode()
    for line in ("ami.connected", "ami.resync_requested", "ami.resynced", "ami.signal", "ami.stopped"):
        assert line in log
    assert "0901234567" not in log


def test_demo_pbx_places_calls_that_arrive_at_once(env, rig: Rig) -> None:
    pbx = rig.server(cls=DemoPbx, interval=0.3, queue="hotline", agents=["Local/agent1@agents/n"], seed=7,
                     max_talk=6)
    listener = rig.listener(pbx, source="demo-pbx")
    wait_for(lambda: len(calls()) >= 3, timeout=10, what="three simulated calls")
    seen = calls()
    assert all(c.source == "demo-pbx" and c.queue == "hotline" for c in seen if c.queued_at)
    assert {c.status for c in seen} <= {"ringing", "queued", "in_progress", "completed", "abandoned"}
    assert listener.stats.dead == 0
    # the PBX answers a resync with the calls it still has: those are not closed as unknown_outcome
    pbx.drop()
    wait_for(lambda: listener.stats.resyncs >= 2, what="the resync")
    time.sleep(0.3)
    live = set(pbx.live_linkedids())
    assert live, "the demo PBX should have calls in progress"
    assert all(c.status != "unknown_outcome" for c in calls() if c.provider_key in live)


def test_presence_changes_pause_and_unpause_the_queue_member(sqlite_env, rig: Rig) -> None:
    from hotline import bus

    server = rig.server()
    listener = rig.listener(server)
    assert listener.wait_applied(lambda s: s.connected, timeout=10)
    time.sleep(0.3)  # the command thread subscribes as the listener starts
    bus.publish("ami-commands", {"action": "QueuePause", "interface": "PJSIP/tvv1", "paused": True,
                                 "reason": "away"})
    bus.publish("ami-commands", {"action": "QueuePause", "interface": "PJSIP/tvv1", "paused": False})
    deadline = time.monotonic() + 5
    pauses: list[dict[str, str]] = []
    while time.monotonic() < deadline and len(pauses) < 2:
        pauses = [a for a in server.actions if a.get("Action") == "QueuePause"]
        time.sleep(0.05)
    assert [(a["Interface"], a["Paused"]) for a in pauses] == [("PJSIP/tvv1", "true"), ("PJSIP/tvv1", "false")]
    assert pauses[0]["Reason"] == "away"


def test_demo_pbx_gives_a_counsellor_one_call_at_a_time() -> None:
    from hotline.ingest.providers.asterisk.simulator import DemoPbx

    pbx = DemoPbx(username=USER, secret=SECRET, interval=1000, queue="hotline", agents=["Local/a@agents/n"],
                  seed=3, max_talk=600)
    calls = [pbx.place_call() for _ in range(6)]  # all within the same second
    answered = [c for c in calls if c.outcome == "answered"]
    assert len(answered) == 1, [c.outcome for c in calls]  # the others gave up while the only counsellor talked
