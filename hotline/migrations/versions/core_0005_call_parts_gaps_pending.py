"""ingest: each counsellor's part of a call, listener outages (gaps), events awaiting a call

- ``call_parts``: a transferred call keeps every counsellor's part (who, from, to, talk time);
- ``telephony_gaps``: when the AMI listener could not hear the PBX, so the day's counts may have
  a hole (shown on the wallboard, the daily log and ``hotline check``);
- ``pending_call_events``: facts about a provider key that is not a hotline call (yet): internal
  and outbound channels never become calls, a hangup that arrives before the queue join waits.

Revision ID: core_0004_call_parts_gaps
Revises: core_0004_second_factor
Create Date: 2026-12-04 23:55:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "core_0004_call_parts_gaps"
down_revision = "core_0004_second_factor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("leg", sa.String(length=128), nullable=False),
        sa.Column("agent", sa.String(length=255), nullable=False),
        sa.Column("counsellor_id", sa.Integer(), nullable=True),
        sa.Column("started_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_call_parts_call_id_calls"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["counsellor_id"], ["users.id"], name=op.f("fk_call_parts_counsellor_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_parts")),
        sa.UniqueConstraint("call_id", "leg", name=op.f("uq_call_parts_call_id_leg")),
    )
    op.create_index(op.f("ix_call_parts_call_id"), "call_parts", ["call_id"])
    op.create_table(
        "telephony_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("started_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recovered_calls", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("recovery", sa.String(length=255), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telephony_gaps")),
    )
    op.create_index(op.f("ix_telephony_gaps_started_at"), "telephony_gaps", ["started_at"])
    op.create_table(
        "pending_call_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("event", sa.Text(), nullable=True),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_call_events")),
    )
    op.create_index("ix_pending_call_events_key", "pending_call_events", ["provider", "key"])
    op.create_index(op.f("ix_pending_call_events_created_at"), "pending_call_events", ["created_at"])


def downgrade() -> None:
    op.drop_table("pending_call_events")
    op.drop_table("telephony_gaps")
    op.drop_table("call_parts")
