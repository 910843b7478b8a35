"""directory: stored tsvector on PostgreSQL; a service's timezone is empty unless it has its own

PostgreSQL used an expression index on ``to_tsvector('simple', search_doc)``: whenever the planner
started from another index (a province, a type) it re-parsed the whole document of every
candidate row, ~0.1 ms a row.  A stored generated column parses it once, at write time.

``dir_services.timezone`` now holds only a timezone given for the entry (template column
"Múi giờ" / "Timezone"); empty means "the centre's timezone", decided when the schedule is read.
Entries written before this revision all carried the default, so they become empty.

Revision ID: directory_0002
Revises: directory_0001
Create Date: 2026-11-23 13:25:00
"""
from __future__ import annotations

from alembic import op

revision = 'directory_0002'
down_revision = 'directory_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE dir_services SET timezone = '' WHERE timezone = 'Asia/Ho_Chi_Minh'")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE dir_services ADD COLUMN search_tsv tsvector "
               "GENERATED ALWAYS AS (strip(to_tsvector('simple'::regconfig, search_doc))) STORED")
    op.execute("DROP INDEX IF EXISTS ix_dir_services_search_doc_tsv")
    op.execute("CREATE INDEX ix_dir_services_search_tsv ON dir_services USING gin (search_tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_dir_services_search_tsv")
        op.execute("ALTER TABLE dir_services DROP COLUMN IF EXISTS search_tsv")
        op.execute("CREATE INDEX ix_dir_services_search_doc_tsv ON dir_services "
                   "USING gin (to_tsvector('simple'::regconfig, search_doc))")
    op.execute("UPDATE dir_services SET timezone = 'Asia/Ho_Chi_Minh' WHERE timezone = ''")
