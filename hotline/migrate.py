"""Alembic, driven from code: ``hotline db upgrade`` runs every domain's migrations.

Each domain package keeps its own ``migrations/`` folder as an Alembic branch (labelled with
the package name) that depends on the core branch, so domains never fight over one chain.
"""

from __future__ import annotations

import os
from importlib import util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

DOMAIN_PACKAGES = ("hotline", "directory", "legal_library", "referral", "daily_log")


def version_locations() -> list[str]:
    paths = [str(Path(__file__).parent / "migrations" / "versions")]
    for pkg in DOMAIN_PACKAGES[1:]:
        spec = util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(next(iter(spec.submodule_search_locations))) / "migrations"
        if folder.is_dir():
            paths.append(str(folder))
    return paths


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(version_locations()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def pending(url: str) -> set[str]:
    """Heads not yet applied: empty when the database is fully migrated."""
    script = ScriptDirectory.from_config(alembic_config(url))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    heads = set(script.get_heads())
    applied: set[str] = set()
    for rev in current:
        applied |= {r.revision for r in script.iterate_revisions(rev, "base")}
    return heads - applied
