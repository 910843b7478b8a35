"""blocking: an index on blocked calls' (provider, call ref), for recording them after the answer

The voice path now records a blocked call after answering (``blocking.recorder``); writing it (and a
later key press for a supervisor) finds the call's row by its reference, once per call.

Revision ID: blocking_0002
Revises: blocking_0001
Create Date: 2026-12-05 05:30:00
"""
from __future__ import annotations

from alembic import op

revision = "blocking_0002"
down_revision = "blocking_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_blocked_calls_ref", "blocked_calls", ["provider", "call_ref"])


def downgrade() -> None:
    op.drop_index("ix_blocked_calls_ref", table_name="blocked_calls")
