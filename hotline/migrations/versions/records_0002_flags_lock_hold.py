"""records: caller flags, sign-off lock, legal hold and retention marks on call records

Revision ID: records_0002
Revises: records_0001
Create Date: 2026-11-23 13:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "records_0002"
down_revision = "records_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("flags", hotline.db.JSONType, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("locked_at", hotline.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("legal_hold", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("legal_hold_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("purged_at", hotline.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        for name in ("purged_at", "legal_hold_reason", "legal_hold", "locked_at", "flags"):
            batch.drop_column(name)
