"""pbx: calls hotline places itself (callbacks, supervisors' listen-in), one row each

Revision ID: core_0006_pbx_commands
Revises: core_0004_call_parts_gaps
Create Date: 2026-12-05 02:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "core_0006_pbx_commands"
down_revision = "core_0004_call_parts_gaps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pbx_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=255), nullable=False),
        sa.Column("dial_number", hotline.db.EncryptedText(), nullable=True),
        sa.Column("caller_id", sa.String(length=32), nullable=False),
        sa.Column("options", hotline.db.JSONType, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("call_uid", sa.String(length=128), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["centre_id"], ["centres.id"], name=op.f("fk_pbx_commands_centre_id_centres"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_pbx_commands_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pbx_commands")),
    )
    op.create_index(op.f("ix_pbx_commands_centre_id"), "pbx_commands", ["centre_id"])
    op.create_index(op.f("ix_pbx_commands_ref"), "pbx_commands", ["ref"])
    op.create_index(op.f("ix_pbx_commands_status"), "pbx_commands", ["status"])
    op.create_index(op.f("ix_pbx_commands_created_at"), "pbx_commands", ["created_at"])


def downgrade() -> None:
    op.drop_table("pbx_commands")
