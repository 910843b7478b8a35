"""directory: full HSDS schedules, per-location phones and schedules, coverage, partner taxonomies,
and "địa chỉ tin cậy" (trusted address) as its own type

- ``dir_schedules``: the HSDS schedule a row comes from (``schedule_id``), its location, and the rule
  (freq, interval, byday list, valid_from/valid_to, dtstart/until, timezone, description) as JSON;
- ``dir_phones.location_id``; ``dir_locations.location_type`` (virtual locations);
- ``dir_services.coverage`` (province codes served), ``hours_complex``, ``hours_note``;
- ``dir_taxonomy_terms.description`` and ``maps_to`` (a partner's term → our type, remembered);
- shelters that name themselves "địa chỉ tin cậy" (trusted address) become ``trusted_address``.

Revision ID: directory_0003
Revises: directory_0002
Create Date: 2026-12-05 00:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'directory_0003'
down_revision = 'directory_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy on SQLite: it would drop the FTS triggers of dir_services).
    json_type = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
    op.add_column('dir_schedules', sa.Column('schedule_id', sa.String(140), nullable=False, server_default=''))
    op.add_column('dir_schedules', sa.Column('location_id', sa.String(64), nullable=True))
    op.add_column('dir_schedules', sa.Column('rule', json_type, nullable=True))
    op.add_column('dir_phones', sa.Column('location_id', sa.String(64), nullable=True))
    op.add_column('dir_locations', sa.Column('location_type', sa.String(16), nullable=False, server_default='physical'))
    op.add_column('dir_services', sa.Column('coverage', sa.String(500), nullable=False, server_default=''))
    op.add_column('dir_services', sa.Column('hours_complex', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('dir_services', sa.Column('hours_note', sa.Text(), nullable=False, server_default=''))
    op.add_column('dir_taxonomy_terms', sa.Column('description', sa.Text(), nullable=False, server_default=''))
    op.add_column('dir_taxonomy_terms', sa.Column('maps_to', sa.String(32), nullable=True))
    # Trusted addresses were filed as shelters: those whose text says so move to their own type.
    op.execute("INSERT INTO dir_taxonomy_terms (id, taxonomy, code, name_vi, name_en, description) "
               "SELECT 'hotline-service-type:trusted_address', 'hotline-service-type', 'trusted_address', "
               "'Địa chỉ tin cậy', 'Trusted address', '' WHERE NOT EXISTS (SELECT 1 FROM dir_taxonomy_terms "
               "WHERE id = 'hotline-service-type:trusted_address')")
    op.execute("UPDATE dir_taxonomy_terms SET name_vi = 'Nhà tạm lánh', name_en = 'Shelter' "
               "WHERE id = 'hotline-service-type:shelter'")
    moved = "service_type = 'shelter' AND search_doc LIKE '% dia chi tin cay%'"
    op.execute("UPDATE dir_attributes SET taxonomy_term_id = 'hotline-service-type:trusted_address' "
               f"WHERE taxonomy_term_id = 'hotline-service-type:shelter' AND service_pk IN "
               f"(SELECT pk FROM dir_services WHERE {moved})")
    op.execute("INSERT INTO dir_changes (service_id, at, actor, action, detail) SELECT id, CURRENT_TIMESTAMP, "
               "'migration', 'update', '{\"fields\": [\"service_type\"], \"via\": \"directory_0003\"}' "
               f"FROM dir_services WHERE {moved}")
    op.execute(f"UPDATE dir_services SET service_type = 'trusted_address', content_hash = '' WHERE {moved}")


def downgrade() -> None:
    op.execute("UPDATE dir_attributes SET taxonomy_term_id = 'hotline-service-type:shelter' "
               "WHERE taxonomy_term_id = 'hotline-service-type:trusted_address'")
    op.execute("UPDATE dir_services SET service_type = 'shelter' WHERE service_type = 'trusted_address'")
    op.execute("DELETE FROM dir_taxonomy_terms WHERE id = 'hotline-service-type:trusted_address'")
    # Plain DROP COLUMN (SQLite ≥ 3.35 and PostgreSQL): a batch copy would drop the FTS triggers.
    for table, cols in (('dir_taxonomy_terms', ('maps_to', 'description')),
                        ('dir_services', ('hours_note', 'hours_complex', 'coverage')),
                        ('dir_locations', ('location_type',)), ('dir_phones', ('location_id',)),
                        ('dir_schedules', ('rule', 'location_id', 'schedule_id'))):
        for c in cols:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {c}")
