"""Every change to a call record after it was first completed, and its completion itself.

``CallRecord`` and ``CallRecordIssue`` (``hotline.calls.models``) hold the record; this table
keeps who changed which fields, from what to what, so a completed record is never silently
rewritten.  Values are the record's own codes and texts: the table is as sensitive as the record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, EncryptedJSON, UTCDateTime, utcnow


class CallRecordRevision(Base):
    __tablename__ = "call_record_revisions"
    __table_args__ = (Index("ix_call_record_revisions_record", "record_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("call_records.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)  # the record's version after this change
    action: Mapped[str] = mapped_column(String(32))  # completed | edited | closed_non_counselling
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # field: [before, after]; encrypted at rest (holds note text).
    changes: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)
