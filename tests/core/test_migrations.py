"""Migrations of every domain go up and down on SQLite and PostgreSQL, through the CLI."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, inspect, text

from hotline.cli import main
from hotline.settings import reset_settings
from tests.conftest import PG_ADMIN_URL, need_service


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path, monkeypatch):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        drop = None
    else:
        need_service("PostgreSQL", PG_ADMIN_URL)
        name = f"hotline_mig_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

        def drop():
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    monkeypatch.setenv("HOTLINE_DATABASE_URL", url)
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOTLINE_SECRET_KEY", "k")
    monkeypatch.setenv("HOTLINE_ENV_FILE", str(tmp_path / "none.env"))
    reset_settings()
    yield url
    reset_settings()
    if drop:
        drop()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(fresh_url, capsys):
    assert main(["db", "status"]) == 1
    assert "hotline db upgrade" in capsys.readouterr().out

    assert main(["db", "upgrade"]) == 0
    tables = _tables(fresh_url)
    assert {"centres", "lines", "calls", "call_keys", "raw_events", "dead_letters", "call_records",
            "taxonomy_terms", "users"} <= tables
    assert main(["db", "status"]) == 0

    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        issues = conn.execute(text("SELECT count(*) FROM taxonomy_terms WHERE scheme = 'issue'")).scalar()
        label = conn.execute(text("SELECT label_vi FROM taxonomy_terms WHERE scheme='issue' AND code='dv'")).scalar()
    engine.dispose()
    assert issues > 40 and label == "Bạo lực gia đình"

    assert main(["db", "downgrade", "base"]) == 0
    assert _tables(fresh_url) <= {"alembic_version"}

    assert main(["db", "upgrade"]) == 0
    assert "calls" in _tables(fresh_url)
    # Upgrading again changes nothing and does not fail.
    assert main(["db", "upgrade"]) == 0
