"""callbacks tables: callback items, attempts, do-not-call marks, follow-up assignments

Revision ID: callbacks_0001
Revises: (none; depends on core_0001)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hotline.db

revision = 'callbacks_0001'
down_revision = None
branch_labels = ('callbacks',)
depends_on = 'core_0001'


def upgrade() -> None:
    op.create_table('callback_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('number_hash', sa.String(length=80), nullable=False),
    sa.Column('number_masked', sa.String(length=32), nullable=False),
    sa.Column('missed_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('last_missed_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('missed_calls', sa.Integer(), nullable=False),
    sa.Column('created_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_by_id', sa.Integer(), nullable=True),
    sa.Column('claimed_at', hotline.db.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', hotline.db.UTCDateTime(), nullable=True),
    sa.Column('last_outcome', sa.String(length=32), nullable=True),
    sa.Column('last_reason', sa.String(length=255), nullable=True),
    sa.Column('closed_at', hotline.db.UTCDateTime(), nullable=True),
    sa.Column('close_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_callback_items_centre_id_centres'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_callback_items_call_id_calls'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['claimed_by_id'], ['users.id'], name=op.f('fk_callback_items_claimed_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_items')),
    sa.UniqueConstraint('call_id', name=op.f('uq_callback_items_call_id')))
    op.create_index('ix_callback_items_centre_status', 'callback_items', ['centre_id', 'status'])
    op.create_index('ix_callback_items_hash', 'callback_items', ['number_hash', 'centre_id', 'last_missed_at'])
    op.create_table('callback_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('record_id', sa.Integer(), nullable=True),
    sa.Column('counsellor_id', sa.Integer(), nullable=True),
    sa.Column('command_id', sa.Integer(), nullable=True),
    sa.Column('started_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('call_uid', sa.String(length=128), nullable=True),
    sa.Column('ended_at', hotline.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_callback_attempts_centre_id_centres'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['callback_items.id'], name=op.f('fk_callback_attempts_item_id_callback_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['record_id'], ['call_records.id'], name=op.f('fk_callback_attempts_record_id_call_records'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['counsellor_id'], ['users.id'], name=op.f('fk_callback_attempts_counsellor_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_attempts')))
    op.create_index('ix_callback_attempts_ref', 'callback_attempts', ['ref'])
    op.create_index('ix_callback_attempts_started', 'callback_attempts', ['started_at'])
    op.create_index('ix_callback_attempts_command', 'callback_attempts', ['command_id'])
    op.create_table('callback_do_not_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=True),
    sa.Column('number_hash', sa.String(length=80), nullable=False),
    sa.Column('number_masked', sa.String(length=32), nullable=False),
    sa.Column('created_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_callback_do_not_call_centre_id_centres'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_do_not_call')))
    op.create_index(op.f('ix_callback_do_not_call_number_hash'), 'callback_do_not_call', ['number_hash'])
    op.create_table('callback_follow_ups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('centre_id', sa.Integer(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('assigned_by', sa.String(length=128), nullable=False),
    sa.Column('assigned_at', hotline.db.UTCDateTime(), nullable=False),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('reminded_due', sa.Date(), nullable=True),
    sa.Column('reminded_overdue', sa.Date(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_outcome', sa.String(length=32), nullable=True),
    sa.Column('done_at', hotline.db.UTCDateTime(), nullable=True),
    sa.Column('done_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['record_id'], ['call_records.id'], name=op.f('fk_callback_follow_ups_record_id_call_records'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['centre_id'], ['centres.id'], name=op.f('fk_callback_follow_ups_centre_id_centres'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_callback_follow_ups_assignee_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_follow_ups')),
    sa.UniqueConstraint('record_id', name=op.f('uq_callback_follow_ups_record_id')))
    op.create_index(op.f('ix_callback_follow_ups_centre_id'), 'callback_follow_ups', ['centre_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_callback_follow_ups_centre_id'), table_name='callback_follow_ups')
    op.drop_table('callback_follow_ups')
    op.drop_index(op.f('ix_callback_do_not_call_number_hash'), table_name='callback_do_not_call')
    op.drop_table('callback_do_not_call')
    op.drop_index('ix_callback_attempts_command', table_name='callback_attempts')
    op.drop_index('ix_callback_attempts_started', table_name='callback_attempts')
    op.drop_index('ix_callback_attempts_ref', table_name='callback_attempts')
    op.drop_table('callback_attempts')
    op.drop_index('ix_callback_items_hash', table_name='callback_items')
    op.drop_index('ix_callback_items_centre_status', table_name='callback_items')
    op.drop_table('callback_items')
