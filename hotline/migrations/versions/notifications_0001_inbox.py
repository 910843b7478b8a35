"""notifications: the per-user inbox (partner answers, escalations, sign-off requests)

Revision ID: notifications_0001
Revises:
Create Date: 2026-12-05 02:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "notifications_0001"
down_revision = None
branch_labels = ("notifications",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("title_msgid", sa.String(length=500), nullable=False),
        sa.Column("title_values", hotline.db.JSONType, nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_user_unread", "notifications", ["user_id", "read_at"])
    op.create_index("ix_notifications_user_created", "notifications", ["user_id", "id"])
    op.create_index(op.f("ix_notifications_created_at"), "notifications", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_notifications_created_at"), table_name="notifications")
    op.drop_index("ix_notifications_user_created", table_name="notifications")
    op.drop_index("ix_notifications_user_unread", table_name="notifications")
    op.drop_table("notifications")
