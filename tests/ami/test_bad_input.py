"""Bad input never stops the listener and loses nothing: a frame cut in the middle, a reconnect
storm, a PBX that refuses our actions, each with a logged reason."""

from __future__ import annotations

import logging
import time

import pytest

from hotline.ingest.providers.asterisk.simulator import synthetic_call
from tests.ami.conftest import Rig, call, dead_letters, wait_for


def _done(key: str) -> None:
    wait_for(lambda: (c := call(key)) is not None and c.status == "completed", timeout=30, what=f"call {key}")


def test_a_frame_cut_in_the_middle_is_a_dead_letter_and_the_listener_goes_on(sqlite_env, rig: Rig) -> None:
    server = rig.server()
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    server.push(b"Event: QueueCallerJoin\r\nUniqueid: 5.1\r\nLinkedid: 5.1\r\nQueue: hot")
    time.sleep(0.3)
    server.drop()
    (dead,) = wait_for(lambda: dead_letters(), what="the cut frame's dead letter")
    assert "cut in the middle" in dead.reason and "Queue: hot" in dead.payload
    assert call("5.1") is None  # half a frame says nothing about a call
    wait_for(lambda: listener.stats.resyncs >= 2, what="the reconnect")
    c = synthetic_call(outcome="answered", wait=2, talk=3)
    server.push(c.stream())
    _done(c.linkedid)


def test_a_reconnect_storm_loses_no_call(sqlite_env, rig: Rig) -> None:
    server = rig.server()
    listener = rig.listener(server, reconnect_max=0.1)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    sent = []
    for _ in range(8):
        c = synthetic_call(outcome="answered", wait=2, talk=3)
        sent.append(c.linkedid)
        server.push(c.stream())
        before = server.logins
        wait_for(lambda: call(c.linkedid) is not None and call(c.linkedid).status == "completed",  # noqa: B023 - the lambda runs within this iteration
                 timeout=30, what="the call before the drop")
        server.drop()
        wait_for(lambda: server.logins > before, timeout=30, what="the next login")  # noqa: B023 - the lambda runs within this iteration
    for key in sent:
        _done(key)
    assert listener.stats.reconnects >= 8 and listener.join(0.01) is False  # still running


def test_a_pbx_refusing_our_actions_is_logged_with_its_reason(sqlite_env, rig: Rig,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    from hotline import bus

    caplog.set_level(logging.WARNING)
    server = rig.server()  # the simulator answers QueuePause with "Invalid/unknown command"
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    time.sleep(0.3)
    bus.publish("ami-commands", {"action": "QueuePause", "interface": "PJSIP/nobody", "paused": True})
    refused = wait_for(lambda: [r for r in caplog.records if r.getMessage() == "ami.action_refused"],
                       what="the refusal in the log")
    assert getattr(refused[0], "reason", "") == "Invalid/unknown command"
    c = synthetic_call(outcome="answered", wait=1, talk=2)
    server.push(c.stream())
    _done(c.linkedid)
    assert listener.connected
