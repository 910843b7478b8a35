"""Faults (#17 part 3): a web process killed outright (SIGKILL) right after it turned a blocked caller
away keeps the call's record. A real ``hotline serve`` on PostgreSQL whose recorder waits before each
database write (``HOTLINE_TEST_RECORDER_DELAY_SECONDS``, test only) so that the kill lands between
the answer and the write: a blocked call through the Asterisk lookup, one through the Twilio voice
webhook, and the Asterisk caller's key press for a supervisor. None is in the database when the
process dies; the process started again replays its write-ahead journal, and each is recorded
exactly once (the key press on its call's row)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from blocking.models import BlockedCall
from blocking.recorder import RETRY_SECONDS, TEST_DELAY_ENV
from hotline.db import session_scope
from hotline.settings import get_settings
from tests.helpers import wait_for
from tests.ops.conftest import Proc, free_port, hotline_env, pg_env, wait_http  # noqa: F401  (pg_env: fixture)
from tests.twilio.conftest import base_params, sign

pytestmark = pytest.mark.slow
API = {"Authorization": "Bearer test-api-token"}
NUMBER = "0912345678"
AST_REF = "1796440214.7"
TWILIO_SID = "CA" + "7" * 32


def _rows() -> list[tuple[str, str, bool]]:
    with session_scope() as db:
        return sorted((r.provider, r.call_ref, r.pressed_for_supervisor) for r in db.scalars(select(BlockedCall)))


@pytest.mark.usefixtures("pg_env")
def test_a_web_process_killed_right_after_a_blocked_answer_keeps_the_record(tmp_path: Path) -> None:
    from hotline.cli import main

    assert main(["block", "add", NUMBER, "--for", "2d", "--reason", "quấy rối"]) == 0
    journal = get_settings().spool_dir / "blocked-calls"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    web = Proc("web", ["serve", "--port", str(port)], hotline_env(**{TEST_DELAY_ENV: "120"}), logs)
    again = None
    try:
        wait_http(f"{base}/readyz", web, 120)
        with httpx.Client(base_url=base, timeout=30) as c:
            answer = c.get("/api/blocking/check", params={"number": NUMBER, "call": AST_REF}, headers=API)
            assert answer.status_code == 200 and answer.text == "blocked=1", answer.text
            path = "/webhooks/twilio/voice"
            values = base_params(CallSid=TWILIO_SID, From="+84912345678", Caller="+84912345678")
            voice = c.post(path, content=urlencode(values), headers={
                "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sign(path, values)})
            assert voice.status_code == 200 and "<Gather" in voice.text and "<Enqueue" not in voice.text, voice.text
            pressed = c.post("/api/blocking/pressed", params={"call": AST_REF}, headers=API)
            assert pressed.status_code == 200, pressed.text
        web.proc.kill()  # SIGKILL: no shutdown, no flush; the recorder's writer is still waiting
        web.proc.wait(10)
        web.stop()
        assert _rows() == [], "the kill did not land before the database write"
        wals = sorted(journal.glob("*.wal"))
        print(f"faults/blocked-call-killed: left by the killed process: "
              f"{[(p.name, len(p.read_text('utf-8').splitlines())) for p in wals]}")

        again = Proc("web-again", ["serve", "--port", str(port)], hotline_env(), logs)
        wait_http(f"{base}/readyz", again, 120)
        expected = [("asterisk", AST_REF, True), ("twilio", TWILIO_SID, False)]
        started = time.monotonic()
        wait_for(lambda: _rows() == expected, timeout=30, interval=0.2, what="the blocked calls replayed")
        took = time.monotonic() - started
        time.sleep(RETRY_SECONDS + 1)  # another round of replays: still once each
        assert _rows() == expected
        assert not list(journal.glob("*.wal")) and not list(journal.glob("*.jsonl")), sorted(journal.iterdir())
        print(f"faults/blocked-call-killed: {len(expected)} blocked calls and 1 key press answered before "
              f"the kill, recorded after the restart in {took:.1f} s, each once")
    finally:
        web.stop()
        if again is not None:
            again.stop()
