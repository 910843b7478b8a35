"""directory: an index on the locations' province

A search with a place finds the services that have any location in that province (a service
offered at several places is there wherever one of them is), so that look is an index read.

Revision ID: directory_0005
Revises: directory_0004
Create Date: 2026-12-05 03:30:00
"""
from __future__ import annotations

from alembic import op

revision = 'directory_0005'
down_revision = 'directory_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_dir_locations_province_code", "dir_locations", ["province_code"])


def downgrade() -> None:
    op.drop_index("ix_dir_locations_province_code", table_name="dir_locations")
