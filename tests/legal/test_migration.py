"""The legal_library Alembic branch creates exactly what the models declare, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from hotline.db import Base


def _legal(diff: object) -> bool:
    text = repr(diff)
    return "legal_" in text


def test_models_and_migration_agree(db_url):
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = [d for d in compare_metadata(ctx, Base.metadata) if _legal(d)]
    finally:
        engine.dispose()
    assert diffs == []
