"""Centres (a province's social-work centre, a national line) and the lines they answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, UTCDateTime, utcnow


class Centre(Base):
    __tablename__ = "centres"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh")
    province_code: Mapped[str | None] = mapped_column(String(16))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the PBX (the name of its AMI listener, ``hotline-ami@NAME``) where this centre's phones and
    #: queues live: its callbacks and follow-up calls go out there; "" = any (one PBX)
    pbx: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list[Line]] = relationship(back_populates="centre", cascade="all, delete-orphan",
                                             foreign_keys="Line.centre_id")


class Line(Base):
    """A number, DID, Twilio number or Asterisk queue that belongs to a centre.

    ``identifier`` is normalised: E.164 for numbers, the queue name as configured for queues.
    """

    __tablename__ = "lines"
    __table_args__ = (UniqueConstraint("provider", "kind", "identifier"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))  # asterisk | twilio | any
    kind: Mapped[str] = mapped_column(String(16))  # number | queue
    identifier: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the PBX whose trunk carries this number (calls shown with it go out there); "" = the centre's
    pbx: Mapped[str] = mapped_column(String(64), default="")

    # Routing (``hotline.centres.routing``): where a call goes when nobody here takes it, and when
    # the line is open.  ``hours`` None = always open; else weekday code (MO..SU) → [[HH:MM, HH:MM], …]
    # in the centre's timezone (a closing time at or before the opening runs past midnight).
    overflow_centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id", ondelete="SET NULL"))
    overflow_wait_seconds: Mapped[int | None] = mapped_column(Integer)
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    closed_on_holidays: Mapped[bool] = mapped_column(Boolean, default=True)
    closed_dates: Mapped[list[str]] = mapped_column(JSONType, default=list)  # ISO dates (local holidays)
    closed_message: Mapped[str] = mapped_column(String(32), default="callback")

    centre: Mapped[Centre] = relationship(back_populates="lines", foreign_keys=[centre_id])


class AgentIdentity(Base):
    """Maps an AMI queue-member interface or a Twilio client identity to a counsellor."""

    __tablename__ = "agent_identities"
    __table_args__ = (UniqueConstraint("provider", "identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    identity: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
