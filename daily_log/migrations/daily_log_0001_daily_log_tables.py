"""daily_log tables: built daily summaries with sign-off, comments, failed builds

Revision ID: daily_log_0001
Revises:
Create Date: 2026-11-23 13:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import hotline.db

revision = "daily_log_0001"
down_revision = None
branch_labels = ("daily_log",)
depends_on = "core_0001"

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "daily_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("summary", JSON, nullable=False),
        sa.Column("built_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("build_count", sa.Integer(), nullable=False),
        sa.Column("built_by", sa.String(length=128), nullable=False),
        sa.Column("signed_off_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signed_off_by", sa.Integer(), nullable=True),
        sa.Column("signed_digest", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["centre_id"], ["centres.id"], name=op.f("fk_daily_logs_centre_id_centres"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["signed_off_by"], ["users.id"], name=op.f("fk_daily_logs_signed_off_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_logs")),
        sa.UniqueConstraint("centre_id", "day", name=op.f("uq_daily_logs_centre_id_day")),
    )
    op.create_table(
        "daily_log_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["centre_id"], ["centres.id"],
                                name=op.f("fk_daily_log_comments_centre_id_centres"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_daily_log_comments_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_log_comments")),
    )
    op.create_index("ix_daily_log_comments_day", "daily_log_comments", ["centre_id", "day"], unique=False)
    op.create_table(
        "daily_log_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("first_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["centre_id"], ["centres.id"],
                                name=op.f("fk_daily_log_failures_centre_id_centres"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_log_failures")),
    )
    op.create_index("ix_daily_log_failures_open", "daily_log_failures", ["resolved_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_daily_log_failures_open", table_name="daily_log_failures")
    op.drop_table("daily_log_failures")
    op.drop_index("ix_daily_log_comments_day", table_name="daily_log_comments")
    op.drop_table("daily_log_comments")
    op.drop_table("daily_logs")
