"""``hotline check`` on a good and on broken installations: real databases, the real Redis, an
AMI server on 127.0.0.1; output, JSON and exit codes."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time

from hotline.cli import main
from hotline.ingest.providers.asterisk.simulator import AmiServer
from hotline.settings import reset_settings
from tests.ops.conftest import run_hotline

STRONG = "k" * 20 + "-strong-secret-for-check-tests-0123456789"


def _checks(stdout: str) -> dict[str, dict]:
    data = json.loads(stdout)
    return {c["name"]: c for c in data["checks"]} | {"_ok": data["ok"]}


@pytest.fixture
def ami():
    with AmiServer(username="hotline", secret="ami-secret-for-tests") as server:
        yield server


def test_a_good_installation_passes(sqlite_env, redis_url, ami, monkeypatch, capsys):
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    monkeypatch.setenv("HOTLINE_SECRET_KEY", STRONG)
    monkeypatch.setenv("HOTLINE_API_TOKEN", "api-token-long-enough-" + "x" * 20)
    monkeypatch.setenv("HOTLINE_AMI_HOST", "127.0.0.1")
    monkeypatch.setenv("HOTLINE_AMI_PORT", str(ami.port))
    monkeypatch.setenv("HOTLINE_AMI_USERNAME", "hotline")
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "ami-secret-for-tests")
    reset_settings()
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[1]: ln.split()[0] for ln in out.splitlines() if ln[:4].strip() in ("OK", "WARN", "FAIL")}
    assert lines["database"] == lines["migrations"] == lines["redis"] == lines["ami:main"] == "OK"
    assert lines["secrets"] == lines["clock"] == lines["timezone"] == lines["twilio"] == "OK"
    assert lines["worker"] == "WARN"  # no worker in this test: a warning with what to start
    assert "hotline-worker@1" in out and "FAIL" not in out
    assert ami.logins == 1  # it really logged in (and off)

    assert main(["check", "--json"]) == 0
    checks = _checks(capsys.readouterr().out)
    assert checks["_ok"] is True and checks["ami:main"]["message"].startswith("logged in to 127.0.0.1:")
    assert "Redis" in checks["clock"]["details"]["skew"]


def test_a_broken_installation_fails_with_what_to_do(tmp_path: Path, ami, monkeypatch, capsys):
    """Unmigrated database, Redis unreachable, a wrong AMI secret, a PBX that is down, example
    secrets, an unknown timezone, plain http in production: each reported, exit code 1."""
    pbx = tmp_path / "pbx"
    pbx.mkdir()
    (pbx / "north.env").write_text("HOTLINE_AMI_HOST=127.0.0.1\nHOTLINE_AMI_PORT=9\nHOTLINE_AMI_USERNAME=hotline\n"
                                   "HOTLINE_AMI_SECRET=whatever-secret\n")
    env = {"PATH": "/usr/bin:/bin", "HOTLINE_ENV_FILE": str(tmp_path / "none.env"), "HOTLINE_ENVIRONMENT": "production",
           "HOTLINE_DATA_DIR": str(tmp_path / "data"), "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}",
           "HOTLINE_REDIS_URL": "redis://127.0.0.1:9/0", "HOTLINE_SECRET_KEY": "CHANGE-ME-long-random-secret-key",
           "HOTLINE_DEFAULT_TIMEZONE": "Asia/Atlantis", "HOTLINE_PUBLIC_BASE_URL": "http://hotline.example.org",
           "HOTLINE_TWILIO_AUTH_TOKEN": "tok", "HOTLINE_AMI_HOST": "127.0.0.1", "HOTLINE_AMI_PORT": str(ami.port),
           "HOTLINE_AMI_USERNAME": "hotline", "HOTLINE_AMI_SECRET": "not-the-secret", "HOTLINE_AMI_PBX_DIR": str(pbx)}
    result = run_hotline("check", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    text = result.stdout
    fails = {ln.split()[1] for ln in text.splitlines() if ln.startswith("FAIL")}
    assert {"migrations", "redis", "ami:main", "ami:north", "secrets", "timezone", "public-url"} <= fails, text
    assert "run: hotline db upgrade" in text
    assert "login refused by 127.0.0.1" in text and "Authentication failed" in text
    assert "cannot connect to 127.0.0.1:9" in text
    assert "HOTLINE_SECRET_KEY still has the example value" in text
    assert "'Asia/Atlantis'" in text and "Asia/Ho_Chi_Minh" in text
    assert "→ " in text and text.rstrip().endswith("warning(s)")
    assert "not-the-secret" not in text and "whatever-secret" not in text  # secrets never printed
    assert ami.failed_logins == 1

    for name, value in env.items():  # the same configuration, in this process, as JSON
        monkeypatch.setenv(name, value)
    reset_settings()
    assert main(["check", "--json"]) == 1
    checks = _checks(capsys.readouterr().out)
    reset_settings()
    assert checks["_ok"] is False and checks["migrations"]["status"] == "fail"
    assert checks["migrations"]["fix"].startswith("run: hotline db upgrade")
    assert checks["database"]["status"] == "warn"  # SQLite in production


def test_an_unreachable_database_is_a_failure_that_names_the_setting(sqlite_env, monkeypatch, capsys):
    monkeypatch.setenv("HOTLINE_DATABASE_URL", "postgresql+psycopg://hotline:pw-never-shown@127.0.0.1:9/hotline")
    reset_settings()
    assert main(["check", "--json"]) == 1
    out = capsys.readouterr().out
    checks = _checks(out)
    assert checks["database"]["status"] == "fail" and "HOTLINE_DATABASE_URL" in checks["database"]["fix"]
    assert "pw-never-shown" not in out and "***" in checks["database"]["message"]
    assert "migrations" not in checks  # nothing further is asked of a database that is not there


def test_twilio_lines_without_a_token_fail(env, capsys, monkeypatch):
    from hotline.centres import service as centres
    from hotline.db import session_scope

    with session_scope() as db:
        centre = centres.create_centre(db, code="qn", name="Quảng Ninh")
        centres.add_line(db, centre=centre, provider="twilio", kind="number", identifier="+842873001234")
    assert main(["check", "--json"]) == 0  # the test settings have a token
    capsys.readouterr()
    monkeypatch.setenv("HOTLINE_TWILIO_AUTH_TOKEN", "")
    reset_settings()
    assert main(["check", "--json"]) == 1
    checks = _checks(capsys.readouterr().out)
    assert checks["twilio"]["status"] == "fail" and "1 Twilio line(s)" in checks["twilio"]["message"]


def test_a_centre_with_an_unknown_timezone_fails(env, capsys):
    from hotline.centres.models import Centre
    from hotline.db import session_scope

    with session_scope() as db:
        db.add(Centre(code="x", name="X", timezone="Mars/Olympus"))
    assert main(["check", "--json"]) == 1
    checks = _checks(capsys.readouterr().out)
    assert checks["timezone"]["status"] == "fail" and "centre x has timezone 'Mars/Olympus'" in checks["timezone"]["message"]


def test_clock_drift_against_postgresql_and_redis_is_caught(pg_env, redis_url, monkeypatch, capsys):
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    reset_settings()
    assert main(["check", "--json"]) == 0
    checks = _checks(capsys.readouterr().out)
    assert checks["clock"]["status"] == "ok" and set(checks["clock"]["details"]["skew"]) == {"PostgreSQL", "Redis"}
    ahead = datetime.now(timezone.utc) + timedelta(minutes=3)
    with freeze_time(ahead, tick=True):
        assert main(["check", "--json"]) == 1
    checks = _checks(capsys.readouterr().out)
    assert checks["clock"]["status"] == "fail" and "timedatectl set-ntp true" in checks["clock"]["fix"]
    assert 170 < checks["clock"]["details"]["skew"]["PostgreSQL"] < 190


def test_spooled_events_waiting_are_a_warning(env, capsys):
    from hotline.ingest import spool
    from hotline.ingest.events import RawIn

    spool.write([RawIn("asterisk", "spooled-1", datetime.now(timezone.utc), "x", event_type="test")])
    assert main(["check", "--json"]) == 0
    checks = _checks(capsys.readouterr().out)
    assert checks["data-dir"]["status"] == "warn" and "1 spool file(s)" in checks["data-dir"]["message"]


def test_half_written_spool_files_are_a_warning_and_free_space_is_reported(env, capsys):
    from hotline.settings import get_settings

    assert main(["check", "--json"]) == 0
    checks = _checks(capsys.readouterr().out)
    assert checks["data-dir"]["status"] == "ok" and "MB free" in checks["data-dir"]["message"]
    # Named after this (live) process and fresh, so no spool drainer left running in this worker
    # sweeps it away between the write and the check.
    (get_settings().spool_dir / f"1-{os.getpid()}-deadbeef.tmp").write_text("half")
    assert main(["check", "--json"]) == 0
    checks = _checks(capsys.readouterr().out)
    assert checks["data-dir"]["status"] == "warn" and "1 half-written .tmp" in checks["data-dir"]["message"]


def test_data_at_rest_keys_are_checked_against_what_the_database_holds(env, monkeypatch, capsys):
    """A stored value under a key that is no longer configured is a failure naming the key; values
    under an older key still configured are a warning to run the rotation; after it, OK."""
    from hotline.security import crypto
    from tests.live.conftest import feed_call
    from tests.security.helpers import use_keys

    feed_call(caller="0912345678")
    first = ",".join(env.effective_encryption_keys)
    old_id = crypto.keyring().current

    def encryption_line() -> dict:
        main(["check", "--json"])
        return _checks(capsys.readouterr().out)["encryption"]

    assert encryption_line()["status"] == "warn"  # the development key in the data directory
    use_keys(monkeypatch, encryption=f"{crypto.generate_key()},{first}")
    line = encryption_line()
    assert line["status"] == "warn" and "not yet under the newest keys" in line["message"]
    assert "hotline keys rotate" in line["fix"]

    use_keys(monkeypatch, encryption=crypto.generate_key())  # the old key dropped too early
    line = encryption_line()
    assert line["status"] == "fail" and old_id in line["message"]
    assert "add the old key" in line["fix"]

    use_keys(monkeypatch, encryption="not a key")
    assert encryption_line()["status"] == "fail"

    use_keys(monkeypatch, encryption=f"{crypto.generate_key()},{first}")
    assert main(["keys", "rotate"]) == 0
    capsys.readouterr()
    line = encryption_line()
    assert line["status"] == "ok", line
