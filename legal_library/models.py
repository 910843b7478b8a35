"""Legal documents, their versions and structure, our notes and tags, and the search index.

A document (``13/2022/QH15``) has versions: each import of its full text is a *draft* version
that an administrator reviews and publishes; the previous published version is archived, never
deleted.  Articles belong to a version; ``is_current`` marks the articles of the published one.
Our notes and tags are keyed by document and article number, so they survive a new version.
``legal_terms`` is a portable inverted index (folded words) over current articles only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, UTCDateTime, utcnow

DOC_TYPES = ("law", "code", "decree", "circular", "resolution", "decision", "official_letter")
DOC_STATUSES = ("in_force", "amended", "superseded", "expired")
VERSION_STATES = ("draft", "published", "archived")
TAG_SCHEMES = ("issue", "service")
SERVICE_TYPES = (
    "shelter", "social_work_centre", "police", "health", "legal_aid", "counselling",
    "child_protection", "womens_union", "hotline", "employment", "other",
)
# Byte-ordered on PostgreSQL so that prefix ranges (term >= 'ab' AND term < 'ac') use the index.
TermString = String(48).with_variant(postgresql.VARCHAR(48, collation="C"), "postgresql")


class LegalDocument(Base):
    __tablename__ = "legal_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    doc_type: Mapped[str] = mapped_column(String(24))
    number: Mapped[str] = mapped_column(String(64), unique=True)  # as printed: 13/2022/QH15
    number_key: Mapped[str] = mapped_column(String(64), index=True)  # folded, no spaces: 13/2022/qh15
    title_vi: Mapped[str] = mapped_column(Text, default="")
    title_en: Mapped[str] = mapped_column(Text, default="")
    title_key: Mapped[str] = mapped_column(Text, default="")  # folded words of both titles + aliases
    issuer: Mapped[str] = mapped_column(String(255), default="")
    issued_on: Mapped[date | None] = mapped_column(Date)
    in_force_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="in_force")
    amended_by: Mapped[list[str]] = mapped_column(JSONType, default=list)
    superseded_by: Mapped[str | None] = mapped_column(String(64))  # number of the replacement
    superseded_from: Mapped[date | None] = mapped_column(Date)
    expired_on: Mapped[date | None] = mapped_column(Date)
    aliases: Mapped[list[str]] = mapped_column(JSONType, default=list)  # BLHS, penal code…
    source_url: Mapped[str] = mapped_column(String(500), default="")
    last_checked_on: Mapped[date | None] = mapped_column(Date)
    summary_vi: Mapped[str] = mapped_column(Text, default="")
    summary_en: Mapped[str] = mapped_column(Text, default="")
    # Which facts were checked against the official text: {"number": true, "in_force_on": false, …}
    verified: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    versions: Mapped[list[LegalVersion]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="LegalVersion.version_no")


class LegalVersion(Base):
    __tablename__ = "legal_versions"
    __table_args__ = (UniqueConstraint("document_id", "version_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("legal_documents.id", ondelete="CASCADE"), index=True)
    version_no: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="draft")
    source_kind: Mapped[str] = mapped_column(String(16), default="text")  # text | html | library
    source_name: Mapped[str] = mapped_column(String(255), default="")
    preamble: Mapped[str] = mapped_column(Text, default="")
    report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # unplaced, duplicates, warnings
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    document: Mapped[LegalDocument] = relationship(back_populates="versions")


class LegalArticle(Base):
    """One article (Điều) with its place (chapter, section) and its clauses and points."""

    __tablename__ = "legal_articles"
    __table_args__ = (
        Index("ix_legal_articles_doc_number", "document_id", "number"),
        Index("ix_legal_articles_current", "is_current", "document_id"),
        Index("ix_legal_articles_number", "number", "document_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("legal_versions.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("legal_documents.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(16))  # "185", "5a"
    sort: Mapped[int] = mapped_column(Integer, default=0)
    heading: Mapped[str] = mapped_column(Text, default="")
    heading_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    chapter: Mapped[str] = mapped_column(String(16), default="")
    chapter_title: Mapped[str] = mapped_column(Text, default="")
    section: Mapped[str] = mapped_column(String(16), default="")
    section_title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")  # text before the first clause
    # [{"number": "1", "text": "…", "points": [{"letter": "a", "text": "…"}]}]
    clauses: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    text_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)


class LegalNote(Base):
    """Our plain-language note for counsellors on one article (or on the whole document: "")."""

    __tablename__ = "legal_notes"
    __table_args__ = (UniqueConstraint("document_id", "article_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("legal_documents.id", ondelete="CASCADE"))
    article_number: Mapped[str] = mapped_column(String(16), default="")
    meaning_vi: Mapped[str] = mapped_column(Text, default="")  # what it means for the caller
    meaning_en: Mapped[str] = mapped_column(Text, default="")
    next_step_vi: Mapped[str] = mapped_column(Text, default="")  # what to do next
    next_step_en: Mapped[str] = mapped_column(Text, default="")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LegalTag(Base):
    """Links an article to an issue code (scheme ``issue``) or a directory service type."""

    __tablename__ = "legal_tags"
    __table_args__ = (
        UniqueConstraint("document_id", "article_number", "scheme", "code"),
        Index("ix_legal_tags_scheme_code", "scheme", "code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("legal_documents.id", ondelete="CASCADE"))
    article_number: Mapped[str] = mapped_column(String(16))
    scheme: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64))


class LegalTerm(Base):
    """Inverted index over current articles: one row per folded word per article, plus a row
    ``#word`` for each word of the heading (so heading matches are found without scoring).

    ``(term, article_id)`` drives a search in article order; ``(article_id, term)`` checks the
    other words of the query for each candidate.
    """

    __tablename__ = "legal_terms"
    __table_args__ = (
        Index("ix_legal_terms_term", "term", "article_id"),
        Index("ix_legal_terms_article_term", "article_id", "term"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("legal_articles.id", ondelete="CASCADE"))
    term: Mapped[str] = mapped_column(TermString)
    weight: Mapped[int] = mapped_column(SmallInteger, default=1)
