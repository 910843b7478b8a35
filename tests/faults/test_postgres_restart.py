"""Faults with the real services (#14 "What to build" 5): PostgreSQL restarted during a burst of
calls. A private cluster (tests/services.py) is stopped while the AMI simulator keeps sending calls
to a real listener on a TCP socket; the listener spools to disk and replays once the database is
back. Counted: calls received, records kept, events lost = 0, events counted twice = 0."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from hotline.calls.models import Call, DeadLetter, RawEvent
from hotline.db import session_scope
from hotline.ingest import spool
from hotline.ingest.providers.asterisk.simulator import synthetic_call
from tests.ami.conftest import Rig
from tests.helpers import wait_for
from tests.services import PostgresServer

pytestmark = pytest.mark.slow
BURST = 24  # calls; the database goes down after the 8th and comes back after the 16th


def _count(model: type) -> int:
    with session_scope() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_postgresql_restarted_during_a_burst_loses_and_doubles_nothing(own_pg: PostgresServer, rig: Rig) -> None:
    server = rig.server()
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, timeout=60, what="the first resync")
    sent = []
    frames = 0
    for i in range(BURST):
        if i == BURST // 3:
            own_pg.stop()  # fast shutdown: connections cut, like a restart
        c = synthetic_call(outcome="answered", wait=2, talk=5 + i % 7)
        sent.append((c.linkedid, 5 + i % 7))
        frames += len(c.frames)
        server.push(c.stream())
        if i == 2 * BURST // 3:
            wait_for(lambda: listener.stats.spooled > 0, timeout=60, what="events spooled during the outage")
            spooled_while_down = listener.stats.spooled
            own_pg.start()
        time.sleep(0.05)

    def all_done() -> bool:
        try:
            with session_scope() as db:
                done = db.scalar(select(func.count()).select_from(Call).where(Call.status == "completed"))
            return done == BURST and not spool.pending_files()
        except Exception:  # noqa: BLE001 - the pool may still hold a connection from before the restart
            return False

    wait_for(all_done, timeout=120, interval=0.5, what=f"{BURST} completed calls and an empty spool")
    with session_scope() as db:
        kept = {c.provider_key: c for c in db.scalars(select(Call))}
    lost = [key for key, _ in sent if key not in kept]
    wrong = [key for key, talk in sent if key in kept and kept[key].talk_seconds != talk]
    raw = _count(RawEvent)
    print(f"faults/pg-restart: calls sent {BURST}, calls kept {len(kept)}, frames sent {frames}, "
          f"raw events kept {raw}, spooled while down {spooled_while_down}, dead letters {_count(DeadLetter)}, "
          f"lost {len(lost)}, wrong talk time {len(wrong)}")
    assert spooled_while_down > 0  # the outage was real: the spool took events
    assert len(kept) == BURST and not lost and not wrong  # every call, once, with its facts
    assert _count(DeadLetter) == 0
