"""callbacks: a supervisor lifts a "do not call back (unsafe)" mark (kept as history, audited)

Revision ID: callbacks_0004
Revises: callbacks_0003
Create Date: 2026-12-05 05:32:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "callbacks_0004"
down_revision = "callbacks_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callback_do_not_call") as batch:
        batch.add_column(sa.Column("lifted_at", hotline.db.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("lifted_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lift_reason", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_do_not_call") as batch:
        batch.drop_column("lift_reason")
        batch.drop_column("lifted_by")
        batch.drop_column("lifted_at")
