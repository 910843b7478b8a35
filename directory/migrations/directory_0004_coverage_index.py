"""directory: a partial index on the entries that serve provinces beyond their own

Searches with a place look in the province, then at the entries whose service areas cover it:
``coverage <> ''`` holds only those few, so that look costs an index read, not a scan.

Revision ID: directory_0004
Revises: directory_0003
Create Date: 2026-12-05 00:30:00
"""
from __future__ import annotations

from alembic import op

revision = 'directory_0004'
down_revision = 'directory_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_dir_services_coverage ON dir_services (coverage) WHERE coverage <> ''")


def downgrade() -> None:
    op.execute("DROP INDEX ix_dir_services_coverage")
