"""Counsellors' presence (available, busy, wrap-up, away).

Importing this module also registers the record revision table, so ``hotline.models`` needs
one line for the live screen and the record form together.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, UTCDateTime, utcnow
from hotline.records import models as records_models  # noqa: F401  (call_record_revisions)

PRESENCE_STATES = ("available", "busy", "wrap_up", "away")
# What a counsellor may choose; busy and wrap-up are also set by their calls (``live.service.follow_calls``).
MANUAL_STATES = ("available", "busy", "away")


class CounsellorPresence(Base):
    __tablename__ = "counsellor_presence"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="away")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
