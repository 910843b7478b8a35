"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, app clients.

Database tests take ``db_url`` and run once per backend.  PostgreSQL and Redis are real servers
at ``HOTLINE_TEST_PG`` (an admin URL; default postgres@127.0.0.1:5432/test) and
``HOTLINE_TEST_REDIS`` (default 127.0.0.1:6379/9); ``scripts/test`` starts private ones when those
are not reachable (tests/services.py).  When a test's server is unreachable it is skipped, except
under ``CI=true`` where it fails.  Each test run migrates a fresh PostgreSQL database once and
empties every table before each test.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine, text

import hotline.models  # noqa: F401  (all tables)
from hotline import migrate
from hotline.db import Base
from hotline.settings import Settings, get_settings, reset_settings
from tests import services

PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_PG") or services.DEFAULT_PG


def _worker_redis_url(base: str) -> str:
    """Each pytest-xdist worker gets its own Redis database (the URL's, then the next ones: 9, 10, …)
    so that flushes never collide."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    parts = urlsplit(base)
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "unix":  # unix:///path/redis.sock?db=N
        query["db"] = str(int(query.get("db", 0)) + worker)
        return f"unix://{parts.path}?{urlencode(query)}"
    db = parts.path.strip("/")
    return urlunsplit(parts._replace(path=f"/{int(db or 0) + worker}"))


REDIS_TEST_URL = _worker_redis_url(os.environ.get("HOTLINE_TEST_REDIS") or services.DEFAULT_REDIS)
CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    # Python 3.11.0-3.11.6 (Debian 12 has 3.11.2) can raise "SystemError: AST constructor recursion
    # depth mismatch" while pytest parses source to show a failure, when other threads compile
    # (CPython gh-106905, pytest #10763): the worker dies with INTERNALERROR and its remaining
    # tests never run.  Python's own traceback format parses nothing.
    if (3, 11) <= sys.version_info[:3] < (3, 11, 7) and config.option.tbstyle == "auto":
        config.option.tbstyle = "native"


def need_service(name: str, url: str, port: int | None = None) -> None:
    """Skip the test (fail under CI=true) when the server at ``url`` does not answer.
    ``need_service("PostgreSQL", PG_ADMIN_URL)``; the old ``(name, host, port)`` form still works."""
    if port is not None:
        url = f"tcp://{url}:{port}"
    default = 6379 if name.lower() == "redis" else 5432
    if services.reachable(url, default):
        return
    where = services.url_address(url, default)
    where = where if isinstance(where, str) else f"{where[0]}:{where[1]}"
    message = f"{name} is not reachable on {where}"
    if CI:
        pytest.fail(f"{message}; under CI=true the {name} tests must run, start {name} first")
    pytest.skip(f"{message}: run the suite with scripts/test, which starts a private {name}")


def need_postgresql() -> None:
    need_service("PostgreSQL", PG_ADMIN_URL)


def need_redis() -> None:
    need_service("Redis", REDIS_TEST_URL)


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


@pytest.fixture(scope="session")
def postgresql_database() -> Iterator[str]:
    need_postgresql()
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
        # Tests sign supervisors and administrators in with a password alone; tests/auth/test_second_factor.py
        # turns the production default (second factor required) back on.
        "HOTLINE_TOTP_REQUIRED_ROLES": "",
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
    need_redis()
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    client.close()
    return REDIS_TEST_URL


@pytest.fixture
def client(env: Settings):
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def fixtures_dir() -> Path:
    """``tests/fixtures/``: captures and other recorded inputs, kept in the repository so that a
    plain clone runs every test (nothing is read from outside the checkout)."""
    return FIXTURES


# ---------------------------------------------------------------- browser tests (Playwright + Chromium)
CHROMIUM = os.environ.get("HOTLINE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield _HarnessBrowser(b)
        b.close()


class _HarnessBrowser:
    """Playwright's ``wait_for_function`` evaluates its predicate with ``eval``, which the
    application's Content-Security-Policy (rightly) forbids: test contexts bypass the CSP unless a
    test asks to run under it (``new_context(bypass_csp=False)``, as tests/browser/test_second_factor.py does)."""

    def __init__(self, browser: object) -> None:
        self._browser = browser

    def new_context(self, **kwargs: object) -> object:
        kwargs.setdefault("bypass_csp", True)
        return self._browser.new_context(**kwargs)

    def new_page(self, **kwargs: object) -> object:
        kwargs.setdefault("bypass_csp", True)
        return self._browser.new_page(**kwargs)

    def __getattr__(self, name: str) -> object:
        return getattr(self._browser, name)


@pytest.fixture
def live_env(sqlite_env, monkeypatch):
    """Plain-HTTP cookies for the loopback server (Secure cookies need TLS)."""
    from hotline.settings import get_settings, reset_settings

    monkeypatch.setenv("HOTLINE_PUBLIC_BASE_URL", "http://127.0.0.1")
    reset_settings()
    return get_settings()
