"""The per-user inbox.

``notifications``: one row per recipient.  The title is kept as its English msgid and values
(``title_msgid``, ``title_values``: a ``hotline.i18n.Text`` taken apart), so each reader sees it in
their own language; it holds codes, names of services and dates, never a caller's words.
``link`` is a path inside the application (the object the notification is about).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, JSONType, UTCDateTime, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_unread", "user_id", "read_at"),
        Index("ix_notifications_user_created", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(48))
    title_msgid: Mapped[str] = mapped_column(String(500))
    title_values: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
