"""callbacks: a follow-up's attempts before the assignee chose to try again after the limit

Revision ID: callbacks_0003
Revises: callbacks_0002
Create Date: 2026-12-05 05:31:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "callbacks_0003"
down_revision = "callbacks_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callback_follow_ups") as batch:
        batch.add_column(sa.Column("attempts_base", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("callback_follow_ups") as batch:
        batch.drop_column("attempts_base")
