"""README's first command: ``hotline demo`` starts everything and calls arrive at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_serves_pages_and_simulated_calls_arrive(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_ENV_FILE"] = str(tmp_path / "none.env")
    data = tmp_path / "demo"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "hotline"), "demo", "--port", str(port), "--interval", "0.5", "--data-dir", str(data)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 40
        calls: list = []
        while time.monotonic() < deadline:
            time.sleep(0.5)
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            logins = data / "demo_logins.json"
            if not logins.exists():
                continue
            token = json.loads(logins.read_text())["api_token"]
            try:
                r = httpx.get(f"{base}/api/calls", headers={"Authorization": f"Bearer {token}"}, timeout=5)
            except httpx.TransportError:
                continue
            if r.status_code == 200:
                calls = r.json()["calls"]
                if any(c["status"] in {"completed", "abandoned", "in_progress"} for c in calls):
                    break
        assert calls, "no simulated call arrived within 40 s"
        assert all(c["centre"] == "ctxh-quang-ngai" and not c["unrouted"] for c in calls)
        assert any(c["status"] in {"completed", "abandoned", "in_progress"} for c in calls)
        assert httpx.get(f"{base}/login", timeout=5).status_code == 200
        # Every listed number is masked.
        assert all(c["caller_masked"] == "" or "***" in c["caller_masked"] for c in calls)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("hotline demo did not stop within 15 s of Ctrl+C") from None
    # The banner lists each demo account role first (what it is for), then its name and password.
    output = proc.stdout.read() if proc.stdout else ""
    accounts = [line.split() for line in output.splitlines() if line.startswith("    ") and " / " in line]
    assert [a[0] for a in accounts] == ["counsellor", "counsellor", "supervisor", "administrator", "partner"], output
    _the_referral_flow_can_be_tried(data)
    saved = json.loads((data / "demo_logins.json").read_text())["logins"]
    assert sorted((a[1], a[3]) for a in accounts) == sorted((u, p) for u, p in saved)
    assert str(data) in output and "demo_logins.json" in output


def _the_referral_flow_can_be_tried(data: Path) -> None:
    """The demo's partner account answers for a seeded service that takes referrals by e-mail."""
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{data / 'hotline.sqlite3'}")
    with engine.connect() as conn:
        org = conn.execute(text("SELECT m.organization_id FROM referral_partner_members m JOIN users u "
                                "ON u.id = m.user_id WHERE u.username = 'doitac'")).scalar()
        takes = conn.execute(text("SELECT count(*) FROM dir_services WHERE organization_id = :o "
                                  "AND referral_method = 'email' AND referral_email != ''"), {"o": org}).scalar()
    engine.dispose()
    assert org and takes == 1
