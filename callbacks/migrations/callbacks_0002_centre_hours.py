"""callbacks: each centre's own callback hours (falling back to HOTLINE_CALLBACK_HOURS)

Revision ID: callbacks_0002
Revises: callbacks_0001
Create Date: 2026-12-05 05:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "callbacks_0002"
down_revision = "callbacks_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("callback_centre_hours",
                    sa.Column("centre_id", sa.Integer(), nullable=False),
                    sa.Column("hours", sa.String(length=16), nullable=False),
                    sa.Column("updated_at", hotline.db.UTCDateTime(), nullable=False),
                    sa.Column("updated_by", sa.String(length=128), nullable=False),
                    sa.ForeignKeyConstraint(["centre_id"], ["centres.id"], name=op.f("fk_callback_centre_hours_centre_id_centres"),
                                            ondelete="CASCADE"),
                    sa.PrimaryKeyConstraint("centre_id", name=op.f("pk_callback_centre_hours")))


def downgrade() -> None:
    op.drop_table("callback_centre_hours")
