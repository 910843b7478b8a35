"""security: room for encrypted notes and full numbers, key ids on number hashes, retention marks

Encrypted values (``enc1:<key id>:…``) are longer than the plaintext and are not JSON, so the
columns that hold them become TEXT.  Existing rows are not touched here (a migration has no
business holding keys): they stay readable as plaintext, and ``hotline keys rotate`` encrypts
them in batches while the service runs; ``hotline keys status`` shows how many are left.

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-23 13:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hotline.db

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = "records_0002"

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("calls") as batch:
        batch.alter_column("caller_raw", type_=sa.Text(), existing_type=sa.String(length=255))
        batch.alter_column("caller_number", type_=sa.Text(), existing_type=sa.String(length=32))
        batch.alter_column("number_hash", type_=sa.String(length=80), existing_type=sa.String(length=64))
    with op.batch_alter_table("call_records") as batch:
        batch.alter_column("callback_safe_time", type_=sa.Text(), existing_type=sa.String(length=255))
        batch.alter_column("consent_referral_scope", type_=sa.Text(), existing_type=_JSON, existing_nullable=False,
                           **({"postgresql_using": "consent_referral_scope::text"} if pg else {}))
    with op.batch_alter_table("call_record_revisions") as batch:
        batch.alter_column("changes", type_=sa.Text(), existing_type=_JSON, existing_nullable=False,
                           **({"postgresql_using": "changes::text"} if pg else {}))
    with op.batch_alter_table("raw_events") as batch:
        batch.add_column(sa.Column("purged_at", hotline.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("purged_at", hotline.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    checks = [("calls", "caller_raw"), ("calls", "caller_number"), ("call_records", "callback_safe_time"),
              ("call_records", "consent_referral_scope"), ("call_record_revisions", "changes"),
              ("call_records", "notes"), ("raw_events", "payload"), ("dead_letters", "payload")]
    for table, column in checks:
        found = bind.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {column} LIKE 'enc1:%'")).scalar()
        if found:
            raise RuntimeError(
                f"{table}.{column} holds {found} encrypted values; the schema before core_0003 cannot hold "
                "them. Export what you need with the current version instead of downgrading."
            )
    if bind.execute(sa.text("SELECT count(*) FROM calls WHERE number_hash LIKE '%:%'")).scalar():
        raise RuntimeError("calls.number_hash holds hashes with key ids, longer than the schema before core_0003 "
                           "allows; downgrading would break caller history.")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("raw_events") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("call_record_revisions") as batch:
        batch.alter_column("changes", type_=_JSON, existing_type=sa.Text(), existing_nullable=False,
                           **({"postgresql_using": "changes::jsonb"} if pg else {}))
    with op.batch_alter_table("call_records") as batch:
        batch.alter_column("consent_referral_scope", type_=_JSON, existing_type=sa.Text(), existing_nullable=False,
                           **({"postgresql_using": "consent_referral_scope::jsonb"} if pg else {}))
        batch.alter_column("callback_safe_time", type_=sa.String(length=255), existing_type=sa.Text())
    with op.batch_alter_table("calls") as batch:
        batch.alter_column("number_hash", type_=sa.String(length=64), existing_type=sa.String(length=80))
        batch.alter_column("caller_number", type_=sa.String(length=32), existing_type=sa.Text())
        batch.alter_column("caller_raw", type_=sa.String(length=255), existing_type=sa.Text())
