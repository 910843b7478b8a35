"""Tables of the daily_log domain.

* ``DailyLog``: one row per centre and local day: the built summary (JSON, codes and counts only,
  never free-text notes), when it was built and how often, and the supervisor's sign-off.
* ``DailyLogComment``: supervisors' comments on a day.
* ``DailyLogFailure``: a build that failed (every attempt counted, the last reason kept) until a
  later build of the same day succeeds; administrators see the unresolved ones.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, JSONType, UTCDateTime, utcnow


class DailyLog(Base):
    __tablename__ = "daily_logs"
    __table_args__ = (UniqueConstraint("centre_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    build_count: Mapped[int] = mapped_column(Integer, default=1)
    built_by: Mapped[str] = mapped_column(String(128), default="worker")  # worker | cli | username
    signed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_off_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    signed_digest: Mapped[str | None] = mapped_column(String(64))  # the summary's digest when signed off
    digest: Mapped[str | None] = mapped_column(String(64))  # the current summary's digest
    received: Mapped[int | None] = mapped_column(Integer)  # calls received (for lists, without the summary)


class DailyLogComment(Base):
    __tablename__ = "daily_log_comments"
    __table_args__ = (Index("ix_daily_log_comments_day", "centre_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    text: Mapped[str] = mapped_column(Text)


class DailyLogFailure(Base):
    __tablename__ = "daily_log_failures"
    __table_args__ = (Index("ix_daily_log_failures_open", "resolved_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    reason: Mapped[str] = mapped_column(Text)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
