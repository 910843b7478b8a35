"""Only hotline calls are calls: internal and outbound channels stay raw events; a call hotline
placed itself (a callback, marked by the HOTLINE_CALLBACK channel variable) is recorded as one."""

from __future__ import annotations

from hotline.calls.models import Call, RawEvent
from hotline.ingest.providers.asterisk.simulator import message, synthetic_call
from tests.ami.conftest import Rig, call, count, wait_for


def _channel(event: str, uid: str, *extra: tuple[str, str]) -> bytes:
    return message(("Event", event), ("Privilege", "call,all"), ("Channel", f"PJSIP/tvv1-{uid}"),
                   ("CallerIDNum", "101"), ("Exten", "102"), ("Uniqueid", uid), ("Linkedid", uid), *extra)


def test_internal_and_outbound_channels_are_not_calls_but_callbacks_are(sqlite_env, rig: Rig) -> None:
    server = rig.server()
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    # tvv1 calls tvv2 (internal), then an outside number (outbound): channels only, no queue
    server.push(_channel("Newchannel", "700.1") + _channel("Hangup", "700.1", ("Cause-txt", "Normal Clearing"))
                + _channel("Newchannel", "701.1", ("Exten", "0912345678"))
                + _channel("Hangup", "701.1", ("Cause-txt", "Normal Clearing")))
    # hotline calls a missed caller back (Originate with Variable: HOTLINE_CALLBACK=<call id>)
    server.push(_channel("Newchannel", "702.1", ("ChanVariable", "HOTLINE_CALLBACK=42"))
                + _channel("Hangup", "702.1", ("ChanVariable", "HOTLINE_CALLBACK=42"), ("Cause-txt", "Normal Clearing")))
    real = synthetic_call(outcome="answered", wait=1, talk=2)
    server.push(real.stream())
    wait_for(lambda: (c := call(real.linkedid)) is not None and c.status == "completed", what="the hotline call")
    callback = wait_for(lambda: call("702.1"), what="the callback")
    assert callback.facts.get("callback") == "42" and callback.ended_at is not None
    assert call("700.1") is None and call("701.1") is None
    assert count(Call) == 2
    with_keys = {r.provider_key for r in _raw()}
    assert {"700.1", "701.1"} <= with_keys  # kept as raw events


def _raw() -> list[RawEvent]:
    from sqlalchemy import select

    from hotline.db import session_scope

    with session_scope() as s:
        return list(s.scalars(select(RawEvent)))
