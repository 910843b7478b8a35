"""Callback items (one per missed, abandoned or out-of-hours call to call back), the attempts to reach the
caller (callbacks and follow-ups alike), numbers not to call back, and follow-up assignments."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, UTCDateTime, utcnow

ITEM_KINDS = ("missed", "abandoned", "requested")  # requested: out-of-hours key press
# open: on the list | claimed: one counsellor holds it | done: reached | closed: ended otherwise | expired
ITEM_STATUSES = ("open", "claimed", "done", "closed", "expired")
OUTCOMES = ("reached", "no_answer", "unsafe", "wrong_number")


class CallbackItem(Base):
    """A missed (or abandoned, or out-of-hours) call to call back, one per caller and centre while open."""

    __tablename__ = "callback_items"
    __table_args__ = (Index("ix_callback_items_centre_status", "centre_id", "status"),
                      Index("ix_callback_items_hash", "number_hash", "centre_id", "last_missed_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    number_hash: Mapped[str] = mapped_column(String(80))  # as calls.number_hash
    number_masked: Mapped[str] = mapped_column(String(32))
    missed_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the first missed call
    last_missed_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the latest one from the same caller
    missed_calls: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # attempts that reached the phone (not PBX failures)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    last_reason: Mapped[str | None] = mapped_column(String(255))  # English msgid of a PBX failure
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(String(32))  # outcome, answered_since, blocked, do_not_call, attempts


class CallbackAttempt(Base):
    """One try to reach a caller back: a callback item's (ref ``cb:<item>``) or a follow-up's (``fu:<record>``)."""

    __tablename__ = "callback_attempts"
    __table_args__ = (Index("ix_callback_attempts_ref", "ref"), Index("ix_callback_attempts_started", "started_at"),
                      Index("ix_callback_attempts_command", "command_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("callback_items.id", ondelete="CASCADE"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("call_records.id", ondelete="CASCADE"))
    counsellor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    command_id: Mapped[int | None] = mapped_column(Integer)  # hotline.pbx's command
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # placing: asked the PBX | placed: the PBX rang the phones | failed: the PBX could not | done: outcome given
    status: Mapped[str] = mapped_column(String(16), default="placing")
    outcome: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(255))
    call_uid: Mapped[str | None] = mapped_column(String(128))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DoNotCallBack(Base):
    """A number someone else answered when we called back: no callback is ever made to it again."""

    __tablename__ = "callback_do_not_call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id", ondelete="SET NULL"))
    number_hash: Mapped[str] = mapped_column(String(80), index=True)
    number_masked: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64), default="")  # the attempt's ref
    # a supervisor lifted the mark (audited): the row stays as the history, it no longer stops callbacks
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(128))
    lift_reason: Mapped[str | None] = mapped_column(String(255))


class FollowUp(Base):
    """Who follows a record up, and which reminders went out (made when the record is first listed)."""

    __tablename__ = "callback_follow_ups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("call_records.id", ondelete="CASCADE"), unique=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_by: Mapped[str] = mapped_column(String(128), default="")
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due: Mapped[date | None] = mapped_column(Date)  # the date reminders were sent for
    reminded_due: Mapped[date | None] = mapped_column(Date)  # "due today" sent to the assignee on this date
    reminded_overdue: Mapped[date | None] = mapped_column(Date)  # "overdue" sent to supervisors on this date
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # attempts made before the assignee chose to try again after the limit (HOTLINE_CALLBACK_MAX_ATTEMPTS
    # counts from here): the follow-up is never dropped by the limit, the assignee decides
    attempts_base: Mapped[int] = mapped_column(Integer, default=0)
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_reason: Mapped[str | None] = mapped_column(String(32))


class CentreCallbackHours(Base):
    """A centre's own callback hours (``HH:MM-HH:MM`` in its time zone), set by its supervisors; a centre
    without a row uses ``HOTLINE_CALLBACK_HOURS``."""

    __tablename__ = "callback_centre_hours"

    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), primary_key=True)
    hours: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="")
