"""records: call record revisions and counsellor presence

Revision ID: records_0001
Revises:
Create Date: 2026-11-23 11:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "records_0001"
down_revision = None
branch_labels = ("records",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "call_record_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changes", hotline.db.JSONType, nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["call_records.id"],
                                name=op.f("fk_call_record_revisions_record_id_call_records"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_call_record_revisions_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_record_revisions")),
    )
    op.create_index("ix_call_record_revisions_record", "call_record_revisions", ["record_id", "version"])
    op.create_table(
        "counsellor_presence",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("centre_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("changed_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_counsellor_presence_user_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["centre_id"], ["centres.id"],
                                name=op.f("fk_counsellor_presence_centre_id_centres"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_counsellor_presence")),
    )
    op.create_index(op.f("ix_counsellor_presence_centre_id"), "counsellor_presence", ["centre_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_counsellor_presence_centre_id"), table_name="counsellor_presence")
    op.drop_table("counsellor_presence")
    op.drop_index("ix_call_record_revisions_record", table_name="call_record_revisions")
    op.drop_table("call_record_revisions")
