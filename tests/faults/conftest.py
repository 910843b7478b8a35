"""Fault tests reuse the AMI rig and the referral world (its local partner peers), and get a private
PostgreSQL they may stop and start (``own_pg``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from hotline import migrate
from hotline.settings import reset_settings
from tests.ami.conftest import rig  # noqa: F401  (fixture)
from tests.conftest import _configure
from tests.referral.conftest import _peers, peers, sqlite_world  # noqa: F401  (fixtures)
from tests.services import PostgresServer, ServiceError


@pytest.fixture
def own_pg(tmp_path, monkeypatch) -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
        server.start()
    except ServiceError as exc:
        pytest.skip(f"no PostgreSQL programs to start a private server: {exc}")
    engine = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text('CREATE DATABASE "hotline"'))
    engine.dispose()
    url = server.url("hotline") + "?connect_timeout=2"
    migrate.upgrade(url)
    _configure(monkeypatch, tmp_path, url)
    yield server
    from hotline.db import reset_engine

    reset_engine()
    server.close()
    reset_settings()
