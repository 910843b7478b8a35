"""What keeps a web process's memory and work bounded with many live screens (issue #17: 200
screens on two processes grew each past 600 MB; bench/live_memory.py):

* a screen that falls behind has a bounded queue and gets ``resync`` instead of more memory;
* a reconnect whose missed updates left the ring gets ``resync`` first;
* each update is encoded once per process and handed to each event loop once, whatever the
  number of screens;
* the wallboard's figures are computed once for all the screens asking at the same moment, and
  never older than the last update.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from hotline.auth.deps import SESSION_COOKIE
from hotline.live import hub as hub_module
from hotline.live import service
from hotline.live.hub import QUEUE_SIZE, Hub, Item, Listener
from tests.live.conftest import call_id, feed_call, session_cookie
from tests.live.sse_helpers import SSE, LiveServer

T = TypeVar("T")


@pytest.fixture
def server(staff):
    with LiveServer() as s:
        yield s


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a thread of its own: a worker that ran a browser test has Playwright's
    event loop running on its main thread, where asyncio.run refuses to start."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread below
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if "error" in out:
        raise out["error"]
    value: T = out["value"]
    return value


def _messages(n: int) -> list[dict]:
    return [{"type": "call", "call": {"id": i, "status": "queued"}} for i in range(n)]


def test_a_screen_that_falls_behind_is_dropped_at_queue_size_not_grown(env):
    async def scenario() -> tuple[int, bool, bool]:
        hub = Hub()
        slow = hub.add(1)  # a screen that never reads
        feed = hub.feed(1)
        for message in _messages(3 * QUEUE_SIZE):
            await asyncio.to_thread(feed._dispatch, message)  # the feed thread's path
        await asyncio.sleep(0.05)  # the loop runs the hand-offs
        size, dropped = slow.queue.qsize(), slow.dropped
        hub.remove(1, slow)
        fresh = hub.add(1)
        await asyncio.to_thread(feed._dispatch, {"type": "call", "call": {"id": -1}})
        await asyncio.sleep(0.05)
        hub.stop()
        return size, dropped, fresh.queue.qsize() == 1 and not fresh.dropped

    size, dropped, fresh_ok = _run(scenario())
    assert size == QUEUE_SIZE and dropped
    assert fresh_ok


def test_each_update_is_encoded_once_and_handed_to_the_loop_once_for_all_screens(env, monkeypatch):
    encoded, handed = [], []
    real_sse, real_deliver = hub_module.sse, hub_module._deliver_all
    monkeypatch.setattr(hub_module, "sse", lambda seq, m: encoded.append(seq) or real_sse(seq, m))
    monkeypatch.setattr(hub_module, "_deliver_all", lambda group, item: handed.append(len(group)) or real_deliver(group, item))

    async def scenario() -> list[Listener]:
        hub = Hub()
        screens = [hub.add(1) for _ in range(50)]
        feed = hub.feed(1)
        for message in _messages(3):
            await asyncio.to_thread(feed._dispatch, message)
        await asyncio.sleep(0.05)
        hub.stop()
        return screens

    screens = _run(scenario())
    assert len(encoded) == 3 and handed[:3] == [50, 50, 50]  # (the fourth: stop() ending every stream)
    items: list[list[Item]] = [[s.queue.get_nowait() for _ in range(3)] for s in screens]
    for n in range(3):  # the very same bytes object in every screen's queue
        assert len({id(got[n].data) for got in items}) == 1
        assert items[0][n].data.startswith(f"id: {items[0][n].seq}\nevent: call\ndata: ".encode())


def test_a_reconnect_past_the_ring_gets_resync_then_what_the_ring_still_holds(server, monkeypatch):
    monkeypatch.setattr(hub_module, "RING_SIZE", 3)
    cookie = session_cookie("gs1")[0]
    first = SSE(server.url, cookie)
    first.next("hello")
    feed_call(agent="PJSIP/tvv1")
    last = first.next("call")["id"]
    first.close()
    keys = [feed_call(agent="PJSIP/tvv2") for _ in range(4)]  # each call publishes several updates
    time.sleep(0.5)
    again = SSE(server.url, cookie, last_event_id=last)
    try:
        first_event = again.next()
        assert first_event["event"] == "resync"
        kept = []
        while (ev := again.next())["event"] != "hello":
            kept.append(ev["data"]["call"]["id"])
        assert 0 < len(kept) <= 3 and set(kept) <= {call_id(k) for k in keys}
        assert call_id(keys[-1]) in kept
    finally:
        again.close()


def test_many_wallboards_asking_at_once_share_one_computation_never_older_than_the_last_update(server, monkeypatch):
    runs = []
    real = service.wallboard

    def counted(*args, **kwargs):
        runs.append(threading.get_ident())
        time.sleep(0.3)  # long enough for every request below to arrive while it runs
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "wallboard", counted)
    cookie = session_cookie("gs1")[0]
    board_stream = SSE(server.url, cookie)  # the wallboard page's own event stream
    board_stream.next("hello")

    def ask() -> dict:
        with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: cookie}, timeout=30) as c:
            r = c.get("/live/wallboard.json")
            assert r.status_code == 200
            return r.json()

    try:
        results: list[dict] = []
        threads = [threading.Thread(target=lambda: results.append(ask())) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 30 and len(runs) <= 2, len(runs)
        assert results[0]["waiting"] == []

        before = len(runs)
        assert ask() == results[0] and len(runs) == before  # nothing changed: the same figures
        key = feed_call(agent="PJSIP/tvv1")
        board_stream.next("call")  # the update reached this process
        fresh = ask()
        assert [w["id"] for w in fresh["waiting"]] == [call_id(key)]
        assert len(runs) == before + 1
    finally:
        board_stream.close()


def test_the_keep_alive_is_one_timer_per_event_loop_for_all_its_screens(env, monkeypatch):
    monkeypatch.setattr(hub_module, "HEARTBEAT_SECONDS", 0.05)
    handed: list[tuple[int, Item | None]] = []
    real_deliver = hub_module._deliver_all
    monkeypatch.setattr(hub_module, "_deliver_all", lambda group, item: handed.append((len(group), item)) or real_deliver(group, item))

    async def scenario() -> tuple[list[Listener], int]:
        hub = Hub()
        screens = [hub.add(1) for _ in range(20)]
        await asyncio.sleep(0.18)  # three ticks
        for screen in screens:
            hub.remove(1, screen)
        await asyncio.sleep(0.12)  # no screen left: the timer stops
        ticks = len(handed)
        await asyncio.sleep(0.12)
        hub.stop()
        return screens, ticks if len(handed) == ticks else -1

    screens, ticks = _run(scenario())
    pings = [n for n, item in handed if item is hub_module.PING]
    assert 2 <= len(pings) <= 4 and set(pings) == {20}  # each tick: all 20 screens in one hand-off
    assert ticks == len(pings)  # and none once the loop has no screen
    assert all(s.queue.qsize() == len(pings) and s.queue.get_nowait() is hub_module.PING for s in screens)


def test_a_silent_stream_gets_the_keep_alive_comment(server, monkeypatch):
    monkeypatch.setattr(hub_module, "HEARTBEAT_SECONDS", 0.2)
    cookie = session_cookie("gs1")[0]
    with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: cookie}, timeout=10) as c, \
            c.stream("GET", "/live/events", headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200
        lines = []
        for line in r.iter_lines():
            lines.append(line)
            if line == ": ping":
                break
        assert "event: hello" in lines and lines[-1] == ": ping"


def test_a_running_web_app_lets_threads_take_the_gil_every_millisecond_and_restores_it(staff):
    import sys

    from hotline.live import views

    before = sys.getswitchinterval()
    with LiveServer():
        assert sys.getswitchinterval() == pytest.approx(views.SWITCH_INTERVAL)
    assert sys.getswitchinterval() == pytest.approx(before)
