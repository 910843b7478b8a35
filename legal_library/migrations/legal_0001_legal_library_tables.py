"""legal library tables

Revision ID: legal_0001
Revises: (none; depends on core_0001)
Create Date: 2026-11-23 11:17:24.782434
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import hotline.db

revision = 'legal_0001'
down_revision = None
branch_labels = ('legal_library',)
depends_on = 'core_0001'


def upgrade() -> None:
    op.create_table('legal_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('doc_type', sa.String(length=24), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('number_key', sa.String(length=64), nullable=False),
    sa.Column('title_vi', sa.Text(), nullable=False),
    sa.Column('title_en', sa.Text(), nullable=False),
    sa.Column('title_key', sa.Text(), nullable=False),
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('in_force_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amended_by', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('superseded_by', sa.String(length=64), nullable=True),
    sa.Column('superseded_from', sa.Date(), nullable=True),
    sa.Column('expired_on', sa.Date(), nullable=True),
    sa.Column('aliases', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('source_url', sa.String(length=500), nullable=False),
    sa.Column('last_checked_on', sa.Date(), nullable=True),
    sa.Column('summary_vi', sa.Text(), nullable=False),
    sa.Column('summary_en', sa.Text(), nullable=False),
    sa.Column('verified', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', hotline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hotline.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_documents')),
    sa.UniqueConstraint('number', name=op.f('uq_legal_documents_number'))
    )
    with op.batch_alter_table('legal_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_documents_number_key'), ['number_key'], unique=False)

    op.create_table('legal_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('article_number', sa.String(length=16), nullable=False),
    sa.Column('meaning_vi', sa.Text(), nullable=False),
    sa.Column('meaning_en', sa.Text(), nullable=False),
    sa.Column('next_step_vi', sa.Text(), nullable=False),
    sa.Column('next_step_en', sa.Text(), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('updated_at', hotline.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['legal_documents.id'], name=op.f('fk_legal_notes_document_id_legal_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_notes')),
    sa.UniqueConstraint('document_id', 'article_number', name=op.f('uq_legal_notes_document_id_article_number'))
    )
    op.create_table('legal_tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('article_number', sa.String(length=16), nullable=False),
    sa.Column('scheme', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['legal_documents.id'], name=op.f('fk_legal_tags_document_id_legal_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_tags')),
    sa.UniqueConstraint('document_id', 'article_number', 'scheme', 'code', name=op.f('uq_legal_tags_document_id_article_number_scheme_code'))
    )
    with op.batch_alter_table('legal_tags', schema=None) as batch_op:
        batch_op.create_index('ix_legal_tags_scheme_code', ['scheme', 'code'], unique=False)

    op.create_table('legal_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('version_no', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('source_kind', sa.String(length=16), nullable=False),
    sa.Column('source_name', sa.String(length=255), nullable=False),
    sa.Column('preamble', sa.Text(), nullable=False),
    sa.Column('report', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', hotline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', hotline.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['legal_documents.id'], name=op.f('fk_legal_versions_document_id_legal_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_versions')),
    sa.UniqueConstraint('document_id', 'version_no', name=op.f('uq_legal_versions_document_id_version_no'))
    )
    with op.batch_alter_table('legal_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_versions_document_id'), ['document_id'], unique=False)

    op.create_table('legal_articles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('sort', sa.Integer(), nullable=False),
    sa.Column('heading', sa.Text(), nullable=False),
    sa.Column('heading_verified', sa.Boolean(), nullable=False),
    sa.Column('chapter', sa.String(length=16), nullable=False),
    sa.Column('chapter_title', sa.Text(), nullable=False),
    sa.Column('section', sa.String(length=16), nullable=False),
    sa.Column('section_title', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('clauses', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('text_verified', sa.Boolean(), nullable=False),
    sa.Column('duplicate', sa.Boolean(), nullable=False),
    sa.Column('is_current', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['legal_documents.id'], name=op.f('fk_legal_articles_document_id_legal_documents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['legal_versions.id'], name=op.f('fk_legal_articles_version_id_legal_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_articles'))
    )
    with op.batch_alter_table('legal_articles', schema=None) as batch_op:
        batch_op.create_index('ix_legal_articles_current', ['is_current', 'document_id'], unique=False)
        batch_op.create_index('ix_legal_articles_doc_number', ['document_id', 'number'], unique=False)
        batch_op.create_index('ix_legal_articles_number', ['number', 'document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_legal_articles_version_id'), ['version_id'], unique=False)

    op.create_table('legal_terms',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=48).with_variant(sa.VARCHAR(length=48, collation='C'), 'postgresql'), nullable=False),
    sa.Column('weight', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['legal_articles.id'], name=op.f('fk_legal_terms_article_id_legal_articles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_terms'))
    )
    with op.batch_alter_table('legal_terms', schema=None) as batch_op:
        batch_op.create_index('ix_legal_terms_article_term', ['article_id', 'term'], unique=False)
        batch_op.create_index('ix_legal_terms_term', ['term', 'article_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('legal_terms', schema=None) as batch_op:
        batch_op.drop_index('ix_legal_terms_term')
        batch_op.drop_index('ix_legal_terms_article_term')

    op.drop_table('legal_terms')
    with op.batch_alter_table('legal_articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_articles_version_id'))
        batch_op.drop_index('ix_legal_articles_number')
        batch_op.drop_index('ix_legal_articles_doc_number')
        batch_op.drop_index('ix_legal_articles_current')

    op.drop_table('legal_articles')
    with op.batch_alter_table('legal_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_versions_document_id'))

    op.drop_table('legal_versions')
    with op.batch_alter_table('legal_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_legal_tags_scheme_code')

    op.drop_table('legal_tags')
    op.drop_table('legal_notes')
    with op.batch_alter_table('legal_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_documents_number_key'))

    op.drop_table('legal_documents')
