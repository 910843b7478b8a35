"""Faults (#14 "What to build" 5): 100 AMI disconnects in mid-call. 25 calls, each sent in five
pieces with the connection cut after each of the first four (while the PBX still lists the call, as
a real Asterisk would at the reconnect's resync). Counted: calls received, calls kept, events lost
(a call missing or with wrong facts) = 0, events counted twice (a second call for one Linkedid,
a doubled raw event) = 0."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hotline.calls.models import Call, DeadLetter, RawEvent
from hotline.db import session_scope
from hotline.ingest.providers.asterisk.simulator import live_call, synthetic_call
from tests.ami.conftest import Rig
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
CALLS, PIECES = 25, 5  # 25 x 4 = 100 disconnects


def test_100_disconnects_in_mid_call_lose_and_double_nothing(sqlite_env, rig: Rig) -> None:
    server = rig.server()
    listener = rig.listener(server, reconnect_max=0.1)
    wait_for(lambda: listener.stats.resyncs >= 1, timeout=60, what="the first resync")
    sent: dict[str, int] = {}
    drops = 0
    for n in range(CALLS):
        c = synthetic_call(outcome="answered", wait=2, talk=3 + n % 5)
        sent[c.linkedid] = 3 + n % 5
        msgs = [m for _, m in c.frames]
        size = -(-len(msgs) // PIECES)
        for k in range(PIECES):
            piece = msgs[k * size:(k + 1) * size]
            if not piece:
                continue
            before = listener.stats.frames_received
            server.push(b"".join(m if m.endswith(b"\r\n\r\n") else m + b"\r\n\r\n" for m in piece))
            wait_for(lambda: listener.stats.frames_received >= before + len(piece),  # noqa: B023 - called within this iteration
                     timeout=60, what="the piece to arrive")
            if k == PIECES - 1:
                server.set_live()
                break
            answered = any(b"AgentConnect" in m for m in msgs[:(k + 1) * size])
            server.set_live(*live_call(c.linkedid, answered=answered))
            logins = server.logins
            server.drop()
            drops += 1
            wait_for(lambda: server.logins > logins, timeout=60, what="the reconnect")  # noqa: B023 - called within this iteration

    def done() -> bool:
        with session_scope() as db:
            return db.scalar(select(func.count()).select_from(Call).where(Call.status == "completed")) >= CALLS

    wait_for(done, timeout=120, interval=0.3, what=f"{CALLS} completed calls")
    with session_scope() as db:
        kept = list(db.scalars(select(Call)))
        raw = int(db.scalar(select(func.count()).select_from(RawEvent)) or 0)
        distinct = int(db.scalar(select(func.count(func.distinct(RawEvent.dedupe_key)))) or 0)
        dead = int(db.scalar(select(func.count()).select_from(DeadLetter)) or 0)
    by_key = {c.provider_key: c for c in kept}
    lost = [k for k in sent if k not in by_key]
    wrong = [k for k, talk in sent.items() if k in by_key and by_key[k].talk_seconds != talk]
    print(f"faults/ami-disconnects: disconnects {drops}, reconnects {listener.stats.reconnects}, calls sent {CALLS}, "
          f"calls kept {len(kept)}, raw events {raw} (distinct {distinct}), dead letters {dead}, "
          f"lost {len(lost)}, wrong talk time {len(wrong)}")
    assert drops == CALLS * (PIECES - 1) == 100
    assert not lost and not wrong and len(kept) == CALLS  # no call lost, none split in two
    assert raw == distinct and dead == 0
