"""No silent holes: a listener outage is recorded as a gap, and the calls that began and ended
inside it are recovered from Asterisk's queue_log when the listener reconnects."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from hotline.calls.models import TelephonyGap
from hotline.db import session_scope
from hotline.settings import reset_settings
from tests.ami.conftest import Rig, call, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
# queue_log lines of a real Asterisk 22 answered call (caller 0906666111 waits 2 s, talks 6 s)
ANSWERED = ["{t0}|NONE|NONE|NONE|QUEUESTART|",
            "{t1}|1796428999.0|hotline|NONE|ENTERQUEUE||0906666111|1",
            "{t3}|1796428999.0|hotline|Tư vấn viên 1|CONNECT|2|1796428999.2|2",
            "{t9}|1796428999.0|hotline|Tư vấn viên 1|COMPLETECALLER|2|6|1"]


def _gaps() -> list[TelephonyGap]:
    with session_scope() as s:
        return list(s.scalars(select(TelephonyGap).order_by(TelephonyGap.id)))


@pytest.mark.parametrize("with_queue_log", [True, False], ids=["queue_log", "nothing_to_recover"])
def test_an_outage_is_a_gap_and_its_calls_come_back_from_queue_log(
        sqlite_env, rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_queue_log: bool) -> None:
    path = tmp_path / "queue_log"
    if with_queue_log:
        monkeypatch.setenv("HOTLINE_AMI_QUEUE_LOG", str(path))
        reset_settings()
    server = rig.server()
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    port = server.port
    server.stop()  # the PBX (or the network) goes away
    wait_for(lambda: not listener.connected, what="the listener to notice")
    wait_for(lambda: any(g.ended_at is None for g in _gaps()), what="the open gap")
    # a whole call happens meanwhile: app_queue writes it to queue_log
    t = int(time.time())
    path.write_text("\n".join(line.format(t0=t - 1, t1=t, t3=t + 2, t9=t + 8) for line in ANSWERED) + "\n",
                    encoding="utf-8")
    time.sleep(1.0)
    back = rig.server(port=port)
    wait_for(lambda: listener.stats.resyncs >= 2, timeout=30, what="the reconnect")
    gap = wait_for(lambda: (g := _gaps()) and g[-1].ended_at is not None and g[-1].recovery.startswith(
        ("1 call", "no queue_log")) and g[-1], what="the closed gap")
    assert (gap.ended_at - gap.started_at).total_seconds() >= 1.0
    if with_queue_log:
        assert gap.recovered_calls == 1
        c = wait_for(lambda: call("1796428999.0"), what="the recovered call")
        assert (c.status, c.queue_wait_seconds, c.talk_seconds, c.caller_raw) == ("completed", 2, 6, "0906666111")
    else:
        assert gap.recovered_calls == 0 and "may be missing" in gap.recovery
        assert call("1796428999.0") is None
    assert back.logins == 1
