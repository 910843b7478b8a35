"""referral: free text encrypted at rest (content and event details become TEXT), retention mark

Encrypted values (``enc1:<key id>:…``) are not JSON, so ``content`` and the events' ``detail``
become TEXT, as core_0003 did for call records; existing rows stay readable as plaintext until
``hotline keys rotate`` encrypts them.

Revision ID: referral_0002
Revises: referral_0001
Create Date: 2026-11-23 14:15:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hotline.db

revision = "referral_0002"
down_revision = "referral_0001"
branch_labels = None
depends_on = "core_0003"

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("referral_referrals") as batch:
        batch.alter_column("content", type_=sa.Text(), existing_type=_JSON, existing_nullable=False,
                           **({"postgresql_using": "content::text"} if pg else {}))
        batch.add_column(sa.Column("purged_at", hotline.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("referral_events") as batch:
        batch.alter_column("detail", type_=sa.Text(), existing_type=_JSON, existing_nullable=False,
                           **({"postgresql_using": "detail::text"} if pg else {}))


def downgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    for table, column in (("referral_referrals", "content"), ("referral_events", "detail"),
                          ("referral_referrals", "ask"), ("referral_referrals", "decision_note")):
        found = bind.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {column} LIKE 'enc1:%'")).scalar()
        if found:
            raise RuntimeError(f"{table}.{column} holds {found} encrypted values; the schema before referral_0002 "
                               "cannot hold them. Export what you need with the current version instead.")
    with op.batch_alter_table("referral_events") as batch:
        batch.alter_column("detail", type_=_JSON, existing_type=sa.Text(), existing_nullable=False,
                           **({"postgresql_using": "detail::jsonb"} if pg else {}))
    with op.batch_alter_table("referral_referrals") as batch:
        batch.drop_column("purged_at")
        batch.alter_column("content", type_=_JSON, existing_type=sa.Text(), existing_nullable=False,
                           **({"postgresql_using": "content::jsonb"} if pg else {}))
