"""blocking tables: number blocks, block proposals, blocked calls

Revision ID: blocking_0001
Revises: (none; depends on core_0001)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = 'blocking_0001'
down_revision = None
branch_labels = ('blocking',)
depends_on = 'core_0001'


def upgrade() -> None:
    op.create_table('number_blocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=True),
    sa.Column('number_hash', sa.String(length=80), nullable=False),
    sa.Column('number_masked', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('starts_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('lifted_at', hotline.db.UTCDateTime(), nullable=True),
    sa.Column('lifted_by', sa.String(length=128), nullable=True),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_number_blocks_hash_expires', 'number_blocks', ['number_hash', 'expires_at'])
    op.create_table('block_proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=True),
    sa.Column('record_id', sa.Integer(), nullable=True),
    sa.Column('number_hash', sa.String(length=80), nullable=False),
    sa.Column('number_masked', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('proposed_by_id', sa.Integer(), nullable=True),
    sa.Column('proposed_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', hotline.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['record_id'], ['call_records.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'))
    op.create_table('blocked_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('call_ref', sa.String(length=128), nullable=False),
    sa.Column('block_id', sa.Integer(), nullable=True),
    sa.Column('pressed_for_supervisor', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_blocked_calls_at', 'blocked_calls', ['at'])


def downgrade() -> None:
    op.drop_index('ix_blocked_calls_at', table_name='blocked_calls')
    op.drop_table('blocked_calls')
    op.drop_table('block_proposals')
    op.drop_index('ix_number_blocks_hash_expires', table_name='number_blocks')
    op.drop_table('number_blocks')
