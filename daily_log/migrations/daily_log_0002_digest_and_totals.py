"""daily_log: the summary's digest and call count beside it, so lists and states need not load it

Revision ID: daily_log_0002
Revises: daily_log_0001
Create Date: 2026-11-23 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "daily_log_0002"
down_revision = "daily_log_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("daily_logs") as batch:
        batch.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("received", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("daily_logs") as batch:
        batch.drop_column("received")
        batch.drop_column("digest")
