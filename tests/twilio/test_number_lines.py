"""The voice webhook routes from its process's copy of the lines (``hotline.centres.numbers``): a
line added by another process (the ``hotline`` command beside a running ``hotline serve``) routes
its callers within ``HOTLINE_ROUTES_REFRESH_SECONDS``, with no restart; a line added in the web
process itself applies to the very next call (tests/twilio/test_routing_cache.py)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from hotline.settings import Settings, reset_settings
from tests.conftest import _configure
from tests.helpers import wait_for
from tests.ops.conftest import Proc, free_port, hotline_env, run_hotline, wait_http
from tests.twilio.conftest import LINE, base_params, sign

pytestmark = pytest.mark.slow


@pytest.fixture
def served(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield _configure(monkeypatch, tmp_path, pg_url, HOTLINE_ROUTES_REFRESH_SECONDS="0.5")
    reset_settings()


def _queue(c: httpx.Client, n: int) -> str:
    params = base_params(CallSid=f"CA{n:032d}", CallStatus="ringing")
    r = c.post("/webhooks/twilio/voice", content=urlencode(params), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign("/webhooks/twilio/voice", params)})
    assert r.status_code == 200, r.text
    enqueue = ET.fromstring(r.text).find("Enqueue")
    assert enqueue is not None, r.text
    return enqueue.text or ""


def test_a_line_added_by_another_process_routes_callers_without_a_restart(served: Settings, tmp_path: Path) -> None:
    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = hotline_env()
    web = Proc("web", ["serve", "--port", str(port)], env, logs)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", web, 120)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            assert _queue(c, 1) == "hotline-default"  # no line claims the number yet
            for args in (["centre", "add", "kontum", "Kon Tum"],
                         ["line", "add", "--centre", "kontum", "--provider", "twilio", "--kind", "number", LINE]):
                done = run_hotline(*args, env=env)
                assert done.returncode == 0, done.stdout + done.stderr
            added = time.monotonic()
            calls = iter(range(2, 1000))
            wait_for(lambda: _queue(c, next(calls)) == "hotline-kontum", timeout=10, interval=0.1,
                     what="a caller of the new line in its centre's queue")
            print(f"twilio/number-lines: a line added by the command routed callers after "
                  f"{time.monotonic() - added:.2f} s (refresh every 0.5 s)")
            assert _queue(c, 1000) == "hotline-kontum"
    finally:
        web.stop()
