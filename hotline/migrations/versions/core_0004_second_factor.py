"""auth: second factor (TOTP + recovery codes), forced password change, sign-in stages

``users.totp_secret`` holds the TOTP seed encrypted at rest (``enc1:…``); ``recovery_codes`` the
SHA-256 of each unused recovery code (JSON list); ``totp_last_step`` refuses a code used twice.
``must_change_password`` marks a temporary password (set by an administrator).
``user_sessions.pending`` is the sign-in stage a session still has to pass ("" when signed in:
"second_factor", "enrol", "password").

Revision ID: core_0004_second_factor
Revises: core_0003
Create Date: 2026-12-05 00:15:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "core_0004_second_factor"
down_revision = "core_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("totp_secret", sa.Text(), nullable=True))
        batch.add_column(sa.Column("totp_enabled_at", hotline.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("recovery_codes", sa.Text(), nullable=True))
    with op.batch_alter_table("user_sessions") as batch:
        batch.add_column(sa.Column("pending", sa.String(length=16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("user_sessions") as batch:
        batch.drop_column("pending")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("recovery_codes")
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_enabled_at")
        batch.drop_column("totp_secret")
        batch.drop_column("must_change_password")
