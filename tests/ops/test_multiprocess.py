"""Scaling out, for real: two ``hotline serve`` processes, a ``hotline worker`` and a ``hotline ami``
listener, sharing the real PostgreSQL and Redis.  A call that reaches one web process (a signed
Twilio webhook) or the listener (an Asterisk call) pops on a live screen connected to the other
web process; the worker runs jobs queued by anyone; both web processes report the same figures;
and no process logs a caller's full number."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from hotline.ingest.providers.asterisk.simulator import AmiServer, synthetic_call
from hotline.settings import get_settings, reset_settings
from tests.live.conftest import PASSWORD, make_staff, session_cookie
from tests.live.sse_helpers import SSE
from tests.ops.conftest import Proc, free_port, hotline_env, wait_for, wait_http
from tests.ops.test_health_metrics import samples, value
from tests.twilio.conftest import base_params, sign

TOKEN = "metrics-token-multiprocess-0123456789"
TWILIO_CALLER = "+84912345678"
AMI_CALLER = "0987000111"


def next_call(sse: SSE, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event = sse.next("call", timeout=max(0.1, deadline - time.monotonic()))
        if predicate(event["data"]["call"]):
            return event


@pytest.mark.slow
def test_two_web_processes_a_worker_and_the_listener_share_postgresql_and_redis(
        pg_env, redis_url, monkeypatch, tmp_path: Path, capsys):
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    monkeypatch.setenv("HOTLINE_METRICS_TOKEN", TOKEN)
    reset_settings()
    from hotline.auth import service as auth

    hashed = auth.hash_password(PASSWORD)
    monkeypatch.setattr(auth, "hash_password", lambda password: hashed)
    make_staff(get_settings())
    cookie = session_cookie("gs1")[0]

    ami = AmiServer(username="hotline", secret="ami-secret-multiprocess").start()
    env = hotline_env(HOTLINE_LOG_FORMAT="json", HOTLINE_LOG_LEVEL="INFO", HOTLINE_AMI_HOST="127.0.0.1",
                      HOTLINE_AMI_PORT=str(ami.port), HOTLINE_AMI_USERNAME="hotline",
                      HOTLINE_AMI_SECRET="ami-secret-multiprocess")
    port_a, port_b = free_port(), free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = [Proc("web-a", ["serve", "--port", str(port_a)], env, logs),
             Proc("web-b", ["serve", "--port", str(port_b)], env, logs),
             Proc("worker", ["worker"], env, logs),
             Proc("ami", ["ami", "--source", "pbx1"], env, logs)]
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    screen = None
    try:
        wait_http(f"{a}/readyz", procs[0], 90)  # slow only on a loaded machine
        wait_http(f"{b}/readyz", procs[1], 90)
        assert ami.wait_for_login(1, timeout=90), procs[3].output()[-2000:]

        screen = SSE(b, cookie)  # a supervisor's live screen on web process B
        assert screen.status == 200
        screen.next("hello")

        # 1. A signed Twilio webhook reaches web process A ...
        params = base_params()
        path = "/webhooks/twilio/voice"
        r = httpx.post(a + path, content=urlencode(params),
                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                "X-Twilio-Signature": sign(path, params)})
        assert r.status_code == 200 and "<Enqueue" in r.text, r.text
        # ... and pops on the screen connected to B.
        pop = next_call(screen, lambda c: c.get("provider") == "twilio" or c.get("caller_masked", "").endswith("678"))
        assert TWILIO_CALLER[3:] not in json.dumps(pop["data"])

        # 2. An Asterisk call reaches the listener process ... and pops on B too.
        ami.push(synthetic_call(caller=AMI_CALLER, queue="hotline", agent="PJSIP/tvv1").stream())
        pop = next_call(screen, lambda c: c.get("caller_masked", "").endswith("111"))
        assert AMI_CALLER[1:] not in json.dumps(pop["data"])

        # 3. The worker runs a job whoever queued it.
        from hotline.queue import enqueue

        source, copied = tmp_path / "job-in.txt", tmp_path / "job-out.txt"
        source.write_text("ran in the worker")
        enqueue(shutil.copyfile, str(source), str(copied))
        wait_for(copied.exists, 20, "the worker to run the job")

        # 4. Both web processes report the same shared figures; the webhook was timed by A only.
        auth_header = {"Authorization": f"Bearer {TOKEN}"}
        on_a = samples(httpx.get(f"{a}/metrics", headers=auth_header).text)
        on_b = samples(httpx.get(f"{b}/metrics", headers=auth_header).text)
        calls_a = {k: v for k, v in on_a.items() if k[0] == "hotline_calls"}
        assert calls_a == {k: v for k, v in on_b.items() if k[0] == "hotline_calls"}
        assert sum(calls_a.values()) == 2
        assert value(on_a, "hotline_workers") == value(on_b, "hotline_workers") == 1
        assert value(on_a, "hotline_events_ingested_total", provider="asterisk") > 0
        assert value(on_a, "hotline_webhook_request_duration_seconds_count", hook="twilio/voice", status="200") == 1
        assert ("hotline_webhook_request_duration_seconds_count",
                (("hook", "twilio/voice"), ("status", "200"))) not in on_b
        assert value(on_b, "hotline_live_screens") == 1 and value(on_a, "hotline_live_screens") == 0

        # 5. hotline check sees the worker and logs in to the PBX beside the running listener.
        from hotline.cli import main

        monkeypatch.setenv("HOTLINE_AMI_PORT", str(ami.port))
        monkeypatch.setenv("HOTLINE_AMI_USERNAME", "hotline")
        monkeypatch.setenv("HOTLINE_AMI_SECRET", "ami-secret-multiprocess")
        reset_settings()
        capsys.readouterr()
        main(["check", "--json"])
        checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
        assert checks["worker"]["status"] == "ok" and checks["ami:main"]["status"] == "ok"
        assert checks["redis"]["status"] == checks["migrations"]["status"] == "ok"
    finally:
        if screen is not None:
            screen.close()
        for proc in procs:  # all at once: SIGTERM, then each gets a few seconds before SIGKILL
            proc.terminate()
        for proc in procs:
            proc.stop(grace=5)
        ami.stop()

    # 6. JSON logs, and no caller's full number in any of them (nor in its national form).
    for proc in procs:
        text = proc.output()
        for forbidden in (TWILIO_CALLER, TWILIO_CALLER[3:], AMI_CALLER, AMI_CALLER[1:]):
            assert forbidden not in text, f"{proc.name} logged a caller's number"
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert lines, f"{proc.name} logged nothing"
        for line in lines:
            record = json.loads(line)  # every line is one JSON object
            assert {"ts", "level", "logger", "event"} <= set(record)
