"""Presence that always reaches the PBX, on the embedded defaults (SQLite, no Redis): the web
process and ``hotline ami`` are separate processes, so only the database carries the change."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hotline.auth.service import create_user
from hotline.centres.service import ensure_default_centre, map_agent
from hotline.db import session_scope
from hotline.settings import get_settings
from tests.ami.conftest import SECRET, USER, Rig
from tests.helpers import login, wait_for

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Presence-Pass-2026!"


def _pauses(server) -> list[tuple[str, str]]:
    return [(a["Interface"], a["Paused"]) for a in list(server.actions) if a.get("Action") == "QueuePause"]


def _counsellor() -> None:
    settings = get_settings()
    with session_scope() as s:
        centre = ensure_default_centre(s, code=settings.default_centre_code, name=settings.default_centre_name,
                                       timezone=settings.default_timezone)
        user = create_user(s, username="tvv1", password=PASSWORD, role="counsellor", centre_id=centre.id)
        map_agent(s, centre=centre, provider="asterisk", identity="PJSIP/tvv1", user_id=user.id)


def _ami(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HOTLINE_AMI_HOST": "127.0.0.1", "HOTLINE_AMI_PORT": str(port),
           "HOTLINE_AMI_USERNAME": USER, "HOTLINE_AMI_SECRET": SECRET, "HOTLINE_AMI_KEEPALIVE_SECONDS": "1",
           "HOTLINE_AMI_RECONNECT_MAX_SECONDS": "0.5", "HOTLINE_REDIS_URL": "", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "hotline", "--log-format", "json", "ami"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    return err.decode()


def test_presence_reaches_the_pbx_through_the_database(sqlite_env, rig: Rig) -> None:
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    assert get_settings().redis_url == ""
    _counsellor()
    server = rig.server()
    with TestClient(create_app()) as web:
        token = login(web, "tvv1", PASSWORD)

        def presence(state: str) -> None:
            r = web.post("/live/presence", json={"state": state}, headers={"X-CSRF-Token": token,
                                                                            "Accept": "application/json"})
            assert r.status_code == 200, r.text

        # marked away while hotline ami is not running: applied when it starts
        presence("away")
        proc = _ami(server.port)
        try:
            wait_for(lambda: ("PJSIP/tvv1", "true") in _pauses(server), timeout=30, what="the stored pause")
            # a change while it runs reaches the PBX through the database alone
            presence("available")
            wait_for(lambda: _pauses(server)[-1] == ("PJSIP/tvv1", "false"), timeout=10, what="the unpause")
            # busy (on a call) pauses the member, available again unpauses it
            presence("busy")
            wait_for(lambda: _pauses(server)[-1] == ("PJSIP/tvv1", "true"), timeout=10, what="busy pauses")
            presence("away")
            time.sleep(1.5)  # still paused: nothing new to send
            sent = len(_pauses(server))
            # the PBX restarts: on reconnect every pause is applied again
            server.drop()
            wait_for(lambda: len(_pauses(server)) > sent and _pauses(server)[-1] == ("PJSIP/tvv1", "true"),
                     timeout=20, what="the pause re-applied after the reconnect")
        finally:
            log = _stop(proc)
        assert "ami.queue_pause" in log and "stored presence" in log
