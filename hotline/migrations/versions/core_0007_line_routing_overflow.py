"""centres: lines' routing settings (overflow centre, opening hours, holidays, closed message);
calls and call records remember the centre a call overflowed to

Revision ID: core_0007_line_routing
Revises: core_0006_pbx_commands
Create Date: 2026-12-05 02:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = "core_0007_line_routing"
down_revision = "core_0006_pbx_commands"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("overflow_centre_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("overflow_wait_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("hours", hotline.db.JSONType, nullable=True))
        batch.add_column(sa.Column("closed_on_holidays", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("closed_dates", hotline.db.JSONType, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("closed_message", sa.String(length=32), nullable=False,
                                   server_default="callback"))
        batch.create_foreign_key(op.f("fk_lines_overflow_centre_id_centres"), "centres", ["overflow_centre_id"],
                                 ["id"], ondelete="SET NULL")
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("overflow_centre_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_calls_overflow_centre_id_centres"), "centres", ["overflow_centre_id"],
                                 ["id"], ondelete="SET NULL")
        batch.create_index(op.f("ix_calls_overflow_centre_id"), ["overflow_centre_id"])
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("overflow_centre_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_call_records_overflow_centre_id_centres"), "centres",
                                 ["overflow_centre_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.drop_constraint(op.f("fk_call_records_overflow_centre_id_centres"), type_="foreignkey")
        batch.drop_column("overflow_centre_id")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index(op.f("ix_calls_overflow_centre_id"))
        batch.drop_constraint(op.f("fk_calls_overflow_centre_id_centres"), type_="foreignkey")
        batch.drop_column("overflow_centre_id")
    with op.batch_alter_table("lines") as batch:
        batch.drop_constraint(op.f("fk_lines_overflow_centre_id_centres"), type_="foreignkey")
        for column in ("closed_message", "closed_dates", "closed_on_holidays", "hours", "overflow_wait_seconds",
                       "overflow_centre_id"):
            batch.drop_column(column)
