"""Faults (#14 "What to build" 5): Redis down while calls arrive and screens are open. A private
redis-server (tests/services.py), a real ``hotline serve`` with a supervisor's live screen open on
it, and the AMI listener taking calls from the simulator. Redis is stopped for the 60 s of the issue while
calls keep coming (one every 5 s). Counted: calls sent, calls kept (all, none twice), and the screen, open
again as the browser does after an error, shows calls once Redis is back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis as redis_py
from sqlalchemy import func, select

from hotline import bus
from hotline.calls.models import Call
from hotline.db import session_scope
from hotline.ingest.providers.asterisk.listener import AMI_COMMAND_CHANNEL
from hotline.ingest.providers.asterisk.simulator import synthetic_call
from hotline.settings import reset_settings
from tests.ami.conftest import Rig
from tests.helpers import wait_for
from tests.live.conftest import make_staff, session_cookie
from tests.live.sse_helpers import SSE
from tests.ops.conftest import Proc, free_port, hotline_env, wait_http
from tests.services import RedisServer, ServiceError

# A thread that dies on the outage (the listener's command feed did) fails the test.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")]
OUTAGE = 60.0  # seconds
BEFORE, DURING, AFTER = 3, 12, 3


def _completed() -> int:
    with session_scope() as db:
        return int(db.scalar(select(func.count()).select_from(Call).where(Call.status == "completed")) or 0)


def test_redis_down_while_calls_arrive_and_screens_are_open(sqlite_env, rig: Rig, monkeypatch,
                                                            tmp_path: Path) -> None:
    from hotline.auth import service as auth
    from tests.live import conftest as live

    try:
        redis = RedisServer()
        redis.start()
    except ServiceError as exc:
        pytest.skip(f"no redis-server to start a private one: {exc}")
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis.url(0))
    reset_settings()
    monkeypatch.setattr(auth, "hash_password", live._cached_hash)
    make_staff(sqlite_env)
    cookie = session_cookie("gs1")[0]
    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    web = Proc("web", ["serve", "--port", str(port)], hotline_env(), logs)
    base = f"http://127.0.0.1:{port}"
    screens: list[SSE] = []
    sent = []
    try:
        wait_http(f"{base}/readyz", web, 120)
        server = rig.server()
        listener = rig.listener(server)
        wait_for(lambda: listener.stats.resyncs >= 1, timeout=60, what="the first resync")
        screen = SSE(base, cookie)
        screens.append(screen)
        assert screen.status == 200
        screen.next("hello", timeout=30)

        def call() -> None:
            c = synthetic_call(outcome="answered", wait=1, talk=2)
            sent.append(c.linkedid)
            server.push(c.stream())

        for _ in range(BEFORE):
            call()
        screen.next("call", timeout=30)  # the open screen shows calls
        wait_for(lambda: _completed() >= BEFORE, timeout=60, what="the calls before the outage")

        redis.stop()
        t0 = time.monotonic()
        for _ in range(DURING):
            call()
            time.sleep(OUTAGE / DURING)
        wait_for(lambda: _completed() >= BEFORE + DURING, timeout=60, what="the calls during the outage kept")
        down_for = time.monotonic() - t0
        redis.start()

        again = SSE(base, cookie)  # the browser opens the stream again after an error
        screens.append(again)
        wait_for(lambda: again.status is not None, timeout=30, what="the screen's new stream")
        assert again.status == 200
        again.next("hello", timeout=30)
        # Pub/sub keeps nothing for a subscriber that is not there yet: wait for the web process's feed
        # to subscribe again (what was published meanwhile reaches screens through their snapshot).
        r = redis_py.Redis.from_url(redis.url(0))
        # (The listener in this process subscribes to its command channel too: wait for the screens' one.)
        wait_for(lambda: any(b":centre:" in c for c in r.execute_command("PUBSUB", "CHANNELS")), timeout=30,
                 what="the web process subscribed again")
        r.close()
        for _ in range(AFTER):
            call()
        again.next("call", timeout=60)  # live again

        # The listener's command feed (pauses from the live screen) is back too: a command published on
        # the bus reaches the PBX.
        def paused() -> bool:
            bus.publish(AMI_COMMAND_CHANNEL, {"action": "QueuePause", "interface": "PJSIP/after-outage",
                                              "paused": True})
            return any(a.get("Interface") == "PJSIP/after-outage" for a in server.actions)

        wait_for(paused, timeout=30, interval=1.0, what="a pause command reaching the PBX after the outage")
        wait_for(lambda: _completed() >= len(sent), timeout=60, what="every call completed")
        with session_scope() as db:
            keys = list(db.scalars(select(Call.provider_key)))
        lost = [k for k in sent if k not in keys]
        print(f"faults/redis-down: outage {down_for:.1f} s, calls sent {len(sent)} ({DURING} during the outage), "
              f"calls kept {len(keys)}, distinct {len(set(keys))}, lost {len(lost)}, screen live again: yes, "
              f"PBX commands again: yes")
        assert not lost and len(keys) == len(set(keys)) == len(sent)
    finally:
        for s in screens:
            s.close()
        web.stop()
        redis.close()
