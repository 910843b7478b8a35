"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, app clients.

Database tests take ``db_url`` and run once per backend.  PostgreSQL and Redis are the real
services on 127.0.0.1; when they are unreachable those tests are skipped, except under
``CI=true`` where they fail.  Each test run migrates a fresh PostgreSQL database once and
empties every table before each test.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import hotline.models  # noqa: F401  (all tables)
from hotline import migrate
from hotline.db import Base
from hotline.settings import Settings, get_settings, reset_settings

PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Each pytest-xdist worker gets its own Redis database (9, 10, …) so that flushes never collide.
_WORKER_NO = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
REDIS_TEST_URL = os.environ.get("HOTLINE_TEST_REDIS", f"redis://127.0.0.1:6379/{9 + _WORKER_NO}")
CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if CI:
        pytest.fail(f"{message}; under CI=true the {name} tests must run, start {name} first")
    pytest.skip(message)


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


@pytest.fixture(scope="session")
def postgresql_database() -> Iterator[str]:
    need_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"hotline_test_{_worker_suffix()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    yield url
    from hotline.db import reset_engine

    reset_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'hotline.sqlite3'}"
    migrate.upgrade(url)
    return url


def empty_tables(url: str) -> None:
    engine = create_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))
            if conn.execute(text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")).first():
                conn.execute(text("DELETE FROM sqlite_sequence"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    url = request.getfixturevalue(f"{request.param}_database")
    empty_tables(url)
    return url


@pytest.fixture
def sqlite_url(sqlite_database: str) -> str:
    empty_tables(sqlite_database)
    return sqlite_database


@pytest.fixture
def pg_url(postgresql_database: str) -> str:
    empty_tables(postgresql_database)
    return postgresql_database


def _configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, **extra: str) -> Settings:
    for key in list(os.environ):
        if key.startswith("HOTLINE_") and not key.startswith("HOTLINE_TEST_"):
            monkeypatch.delenv(key)
    values = {
        "HOTLINE_ENV_FILE": str(tmp_path / "none.env"),
        "HOTLINE_ENVIRONMENT": "test",
        "HOTLINE_DATABASE_URL": url,
        "HOTLINE_DATA_DIR": str(tmp_path / "data"),
        "HOTLINE_SECRET_KEY": "test-secret-key-not-for-production",
        "HOTLINE_API_TOKEN": "test-api-token",
        "HOTLINE_PUBLIC_BASE_URL": "https://hotline.example.org",
        "HOTLINE_TWILIO_AUTH_TOKEN": "test-twilio-auth-token",
        "HOTLINE_REDIS_URL": "",
        "HOTLINE_LOG_FORMAT": "console",
    }
    values.update(extra)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    return get_settings()


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointing at an empty database of each backend (in-process queue and pub/sub)."""
    yield _configure(monkeypatch, tmp_path, db_url)
    reset_settings()


@pytest.fixture
def sqlite_env(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield _configure(monkeypatch, tmp_path, sqlite_url)
    reset_settings()


@pytest.fixture
def redis_url() -> str:
    need_service("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    client.close()
    return REDIS_TEST_URL


@pytest.fixture
def client(env: Settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def fixtures_dir() -> Path:
    """``tests/fixtures/``: captures and other recorded inputs, kept in the repository so that a
    plain clone runs every test (nothing is read from outside the checkout)."""
    return FIXTURES
