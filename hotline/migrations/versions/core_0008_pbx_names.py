"""pbx: several PBXes: a centre and a line may name the PBX (its AMI listener) that places their
calls; each call to place remembers the PBX it must go out on

Revision ID: core_0008_pbx_names
Revises: core_0007_line_routing
Create Date: 2026-12-05 05:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0008_pbx_names"
down_revision = "core_0007_line_routing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("pbx", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("pbx", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("pbx_commands") as batch:
        batch.add_column(sa.Column("pbx", sa.String(length=128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("pbx_commands") as batch:
        batch.drop_column("pbx")
    with op.batch_alter_table("lines") as batch:
        batch.drop_column("pbx")
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("pbx")
