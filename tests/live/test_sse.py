"""Screen pop over server-sent events, against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from hotline.auth.deps import SESSION_COOKIE
from hotline.settings import reset_settings
from tests.live.conftest import call_id, feed_call, session_cookie
from tests.live.sse_helpers import SSE, LiveServer


@pytest.fixture
def server(staff):
    with LiveServer() as s:
        yield s


def test_counsellor_gets_a_pop_for_own_calls_only_and_supervisor_for_all(server):
    me = SSE(server.url, session_cookie("tvv1")[0])
    other = SSE(server.url, session_cookie("tvv2")[0])
    boss = SSE(server.url, session_cookie("gs1")[0])
    try:
        assert me.status == 200 and me.content_type.startswith("text/event-stream")
        for s in (me, other, boss):
            s.next("hello")
        key = feed_call(agent="PJSIP/tvv1", caller="0912345678")
        pop = me.next("call")
        call = pop["data"]["call"]
        assert call["id"] == call_id(key) and call["offered_to"] == "PJSIP/tvv1"
        assert call["caller_masked"] == "0912 *** 678" and call["line"] == "Đường dây nóng 1800"
        assert "0912345678" not in json.dumps(pop["data"]) and "+84912345678" not in json.dumps(pop["data"])
        assert int(pop["id"]) > 0
        assert boss.next("call")["data"]["call"]["id"] == call["id"]
        # the other counsellor's screen gets nothing at all about it
        assert other.drain() == []
    finally:
        for s in (me, other, boss):
            s.close()


def test_reconnect_with_last_event_id_catches_up(server):
    cookie = session_cookie("tvv1")[0]
    first = SSE(server.url, cookie)
    first.next("hello")
    feed_call(agent="PJSIP/tvv1")
    last = first.next("call")["id"]
    first.close()
    missed = [call_id(feed_call(agent="PJSIP/tvv1")) for _ in range(2)]
    again = SSE(server.url, cookie, last_event_id=last)
    try:
        got = []
        while len(set(got)) < 2:
            got.append(again.next("call")["data"]["call"]["id"])
        assert set(got) == set(missed)
        hello = again.next("hello")
        assert int(hello["id"]) >= int(last)
    finally:
        again.close()


def test_signed_out_stream_is_refused(server):
    s = SSE(server.url, "not-a-session")
    assert s.status == 401
    s.close()


def test_two_web_processes_share_ids_and_catch_up_through_redis(staff, redis_url, monkeypatch):
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    reset_settings()
    cookie = session_cookie("gs1")[0]
    with LiveServer() as a, LiveServer() as b:
        on_a, on_b = SSE(a.url, cookie), SSE(b.url, cookie)
        try:
            on_a.next("hello"), on_b.next("hello")
            feed_call(agent="PJSIP/tvv2")
            ev_a, ev_b = on_a.next("call"), on_b.next("call")
            assert ev_a["id"] == ev_b["id"] and ev_a["data"] == ev_b["data"]
            on_a.close()
            missed = call_id(feed_call(agent="PJSIP/tvv1"))
            on_b.next("call")
            # the browser that was on A reconnects to B and gets what it missed, under the same id
            back = SSE(b.url, cookie, last_event_id=ev_a["id"])
            got = back.next("call")
            assert got["data"]["call"]["id"] == missed
            back.close()
        finally:
            on_a.close(), on_b.close()


def test_presence_away_pauses_the_queue_member_and_reaches_the_wallboard(server):
    from hotline import bus

    ami = bus.Subscription(["ami-commands"])
    boss = SSE(server.url, session_cookie("gs1")[0])
    cookie, token = session_cookie("tvv1")
    import httpx

    from hotline.auth.deps import SESSION_COOKIE

    try:
        boss.next("hello")
        with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: cookie}) as c:
            r = c.post("/live/presence", json={"state": "away", "reason": "break"},
                       headers={"X-CSRF-Token": token, "Accept": "application/json"})
            assert r.status_code == 200, r.text
            assert ami.get(timeout=3) == {"action": "QueuePause", "interface": "PJSIP/tvv1", "paused": True,
                                          "reason": "break"}
            ev = boss.next("presence")
            assert ev["data"]["presence"]["state"] == "away"
            r = c.post("/live/presence", json={"state": "available"},
                       headers={"X-CSRF-Token": token, "Accept": "application/json"})
            assert ami.get(timeout=3)["paused"] is False
            r = c.post("/live/presence", json={"state": "busy"}, headers={"X-CSRF-Token": token, "Accept": "application/json"})
            assert ami.get(timeout=0.3) is None  # busy leaves the queue member alone
            bad = c.post("/live/presence", json={"state": "asleep"}, headers={"X-CSRF-Token": token, "Accept": "application/json"})
            assert bad.status_code == 422 and "available" in bad.json()["detail"]
            board = httpx.get(f"{server.url}/live/wallboard.json",
                              cookies={SESSION_COOKIE: session_cookie("gs1")[0]}).json()
            assert {p["name"]: p["state"] for p in board["presence"]} == {"TVV1": "busy", "TVV2": "away"}
    finally:
        ami.close()
        boss.close()


def test_wallboards_get_the_figures_pushed_after_updates_and_nobody_else_does(server):
    board = SSE(server.url, session_cookie("gs1")[0], query="?board=1")
    plain = SSE(server.url, session_cookie("gs1")[0])  # a supervisor's live screen: no figures
    counsellor = SSE(server.url, session_cookie("tvv1")[0], query="?board=1")  # asks, is not given them
    other = SSE(server.url, session_cookie("gs_other")[0], query="?board=1")  # another centre's wallboard
    try:
        for s in (board, plain, counsellor, other):
            assert s.status == 200
            s.next("hello")
        board.next("wallboard")  # the figures as they are when the first wallboard connects
        key = feed_call(agent="PJSIP/tvv1", caller="0912345678")
        assert board.next("call")["data"]["call"]["id"] == call_id(key)
        pushed = board.next("wallboard", timeout=10)["data"]  # within a second or so of the update
        assert [w["id"] for w in pushed["waiting"]] == [call_id(key)]
        assert pushed["waiting"][0]["caller"] == "0912 *** 678" and "0912345678" not in json.dumps(pushed)
        with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: session_cookie("gs1")[0]}) as c:
            assert c.get("/live/wallboard.json").json() == pushed  # the same figures as the page reads
        assert counsellor.next("call")["data"]["call"]["id"] == call_id(key)  # their own call, but no figures
        time.sleep(1.5)
        for s in (plain, counsellor):
            assert "wallboard" not in [ev.get("event") for ev in s.drain()]
        theirs = [ev["data"] for ev in other.drain() if ev.get("event") == "wallboard"]
        assert all(call_id(key) not in [w["id"] for w in f["waiting"]] for f in theirs)  # only their centre's
    finally:
        for s in (board, plain, counsellor, other):
            s.close()
