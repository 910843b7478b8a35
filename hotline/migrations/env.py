"""Alembic environment shared by every domain branch."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import hotline.models  # noqa: F401  (every table)
from hotline.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


# Tables that migrations manage by hand and the models do not describe (SQLite FTS5 indexes).
UNMODELLED_PREFIXES = ("dir_service_fts", "legal_fts")


# Columns and indexes made by hand on PostgreSQL (the directory's stored tsvector, trigram index).
UNMODELLED_NAMES = {("column", "search_tsv"), ("index", "ix_dir_services_search_tsv"),
                    ("index", "ix_dir_words_word_trgm")}


def include_name(name, type_, parent_names) -> bool:
    if (type_, name) in UNMODELLED_NAMES:
        return False
    return not (type_ == "table" and name and name.startswith(UNMODELLED_PREFIXES))


def _run(connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
