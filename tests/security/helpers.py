"""Raw looks at the database (what a thief with a copy of it would see) and key switching."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text

from hotline.settings import get_settings, reset_settings


def raw_rows(sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(get_settings().effective_database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params).all()]
    finally:
        engine.dispose()


def raw_value(sql: str, **params: Any) -> Any:
    rows = raw_rows(sql, **params)
    assert rows, f"no row for {sql}"
    return rows[0][0]


def raw_exec(sql: str, **params: Any) -> None:
    engine = create_engine(get_settings().effective_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def use_keys(monkeypatch: pytest.MonkeyPatch, encryption: str | None = None, hashes: str | None = None) -> None:
    """Change the configured keys as an operator would (environment, then a restart)."""
    if encryption is not None:
        monkeypatch.setenv("HOTLINE_ENCRYPTION_KEYS", encryption)
    if hashes is not None:
        monkeypatch.setenv("HOTLINE_NUMBER_HASH_KEYS", hashes)
    reset_settings()
