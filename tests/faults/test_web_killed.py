"""Faults (#14 "What to build" 5): a web process killed (SIGKILL) while a counsellor types: the draft
is kept. A real ``hotline serve`` on SQLite; the counsellor's form autosaves (PUT /records/{id}) as
they type; the process is killed, started again on the same port, and the record holds the last
saved text and version, and typing goes on from there without a conflict."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from hotline.auth.deps import SESSION_COOKIE
from hotline.calls.models import CallRecord
from hotline.db import session_scope
from tests.live.conftest import call_id, feed_call, make_staff, session_cookie
from tests.ops.conftest import Proc, free_port, hotline_env, wait_http

pytestmark = pytest.mark.slow
WORDS = "Chị gọi từ nhà mẹ đẻ , chồng đánh tối qua , hai con nhỏ đang ở cùng , cần chỗ tạm lánh".split()


def test_a_web_process_killed_while_a_counsellor_types_keeps_the_draft(sqlite_env, monkeypatch,
                                                                        tmp_path: Path) -> None:
    from hotline.auth import service as auth
    from tests.live import conftest as live

    monkeypatch.setattr(auth, "hash_password", live._cached_hash)
    make_staff(sqlite_env)
    cid = call_id(feed_call(agent="PJSIP/tvv1", answered=True))
    cookie, csrf = session_cookie("tvv1")
    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = hotline_env()
    base = f"http://127.0.0.1:{port}"
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    web = Proc("web", ["serve", "--port", str(port)], env, logs)
    again = None
    try:
        wait_http(f"{base}/readyz", web, 120)
        with httpx.Client(base_url=base, cookies={SESSION_COOKIE: cookie}, timeout=30) as c:
            rec = c.post(f"/records/for-call/{cid}", headers=headers)
            assert rec.status_code in (200, 201), rec.text
            record_id, version = rec.json()["id"], rec.json()["version"]
            typed, saved = "", 0
            for word in WORDS:  # one autosave per word, as the form does after a pause
                typed = (typed + " " + word).strip()
                r = c.put(f"/records/{record_id}", json={"version": version, "fields": {"notes": typed}},
                          headers=headers)
                assert r.status_code == 200, r.text
                version, saved = r.json()["version"], saved + 1
            web.proc.kill()  # SIGKILL: no shutdown, no flush
            web.proc.wait(10)
            web.stop()
            again = Proc("web-again", ["serve", "--port", str(port)], env, logs)
            wait_http(f"{base}/readyz", again, 120)
            page = c.get(f"/records/{record_id}")
            assert page.status_code == 200 and typed.split()[-1] in page.text, page.status_code
            with session_scope() as db:
                row = db.get(CallRecord, record_id)
                notes, kept_version = row.notes, row.version
            print(f"faults/web-killed: autosaves acknowledged {saved}, text kept {len(notes or '')}/{len(typed)} "
                  f"chars, version kept {kept_version} (last acknowledged {version})")
            assert notes == typed and kept_version == version
            more = c.put(f"/records/{record_id}", json={"version": version, "fields": {"notes": typed + " ngay"}},
                         headers=headers)
            assert more.status_code == 200, more.text  # typing goes on, no conflict
    finally:
        web.stop()
        if again is not None:
            again.stop()
