"""Database engine, sessions and the declarative base shared by every domain.

Both SQLite (demo, tests) and PostgreSQL (production) are supported.  Times are stored as UTC;
``UTCDateTime`` gives back aware datetimes on both backends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, LargeBinary, MetaData, Text, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# JSON that is JSONB on PostgreSQL.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class EncryptedText(TypeDecorator[str]):
    """Text encrypted at rest (``hotline.security.crypto``): code reads and writes plain ``str``.

    The column holds ``enc1:<key id>:…``; never compare it in SQL (each write has a fresh nonce).
    Rows written before encryption hold plaintext and still read back.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        from hotline.security.crypto import encrypt_text

        return encrypt_text(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        from hotline.security.crypto import decrypt_text

        return decrypt_text(value)


class EncryptedBytes(TypeDecorator[bytes]):
    """Bytes encrypted at rest, as ``EncryptedText``."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        from hotline.security.crypto import encrypt_bytes

        return encrypt_bytes(value)

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        from hotline.security.crypto import decrypt_bytes

        return decrypt_bytes(bytes(value) if value is not None else None)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON document encrypted at rest as one text value (not queryable in SQL)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        from hotline.security.crypto import encrypt_text

        if value is None:
            return None
        return encrypt_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        from hotline.security.crypto import decrypt_text

        if value is None:
            return None
        if not isinstance(value, str):  # a JSON column read before its migration ran
            return value
        return json.loads(decrypt_text(value) or "null")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


_engine: Engine | None = None
_sessionmaker: sessionmaker[Session] | None = None


def get_engine() -> Engine:
    global _engine, _sessionmaker
    if _engine is None:
        from hotline.settings import get_settings

        _engine = make_engine(get_settings().effective_database_url)
        _sessionmaker = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def _forget_parent_connections() -> None:
    """A forked child (``hotline worker --fork``, uvicorn's workers) must not reuse the parent's
    pooled connections, which the parent's threads still use: the child's pool starts empty."""
    if _engine is not None:
        _engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_connections)


def reset_engine() -> None:
    global _engine, _sessionmaker
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _sessionmaker = None


def new_session() -> Session:
    get_engine()
    assert _sessionmaker is not None
    return _sessionmaker()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def rowcount(result: Any) -> int:
    """Rows an UPDATE or DELETE touched (``Session.execute`` is typed as returning a plain ``Result``,
    which has no ``rowcount``; the cursor result it returns has)."""
    return int(getattr(result, "rowcount", 0) or 0)


def insert_ignore(session: Session, table: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's dialect."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database dialect {name!r}: use PostgreSQL or SQLite")


def db_session() -> Iterator[Session]:
    """FastAPI dependency: one session per request, committed when the route returns."""
    with session_scope() as session:
        yield session
