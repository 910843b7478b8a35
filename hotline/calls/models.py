"""Calls, the records counsellors keep about them, and the raw provider events behind them."""

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
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, EncryptedBytes, EncryptedJSON, EncryptedText, JSONType, UTCDateTime, utcnow

CALL_STATUSES = (
    "ringing", "queued", "in_progress", "completed", "abandoned", "missed", "failed", "unknown_outcome",
)
OPEN_STATUSES = ("ringing", "queued", "in_progress")
PROVIDERS = ("asterisk", "twilio")


class Call(Base):
    """One real call, however many channels or legs the provider used for it."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_centre_received", "centre_id", "received_at"),
        Index("ix_calls_status", "status"),
        Index("ix_calls_number_hash", "number_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_key: Mapped[str] = mapped_column(String(128))  # AMI Linkedid / Twilio CallSid (first seen)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id", ondelete="SET NULL"))
    unrouted: Mapped[bool] = mapped_column(Boolean, default=False)  # no centre claims the line
    # The centre a call overflowed to (its line's overflow centre answered it): the call stays the
    # line's centre's, and both centres' supervisors see it.
    overflow_centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id", ondelete="SET NULL"),
                                                           index=True)
    dialed: Mapped[str | None] = mapped_column(String(128))
    queue: Mapped[str | None] = mapped_column(String(128))

    # Full numbers are encrypted at rest (hotline.security); compare callers through number_hash.
    caller_raw: Mapped[str | None] = mapped_column(EncryptedText)
    caller_id_status: Mapped[str] = mapped_column(String(16), default="unavailable")
    caller_number: Mapped[str | None] = mapped_column(EncryptedText)  # E.164 or short code
    caller_masked: Mapped[str] = mapped_column(String(32), default="")
    number_hash: Mapped[str | None] = mapped_column(String(80))  # "<key id>:<hmac hex>"

    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queue_wait_seconds: Mapped[int | None] = mapped_column(Integer)
    talk_seconds: Mapped[int | None] = mapped_column(Integer)

    # Facts only ever accumulate; the status is derived from them, so the order in which
    # events arrive does not matter and a duplicate changes nothing.
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_reason: Mapped[str | None] = mapped_column(String(64))
    resync_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # gone at a resync
    status: Mapped[str] = mapped_column(String(16), default="ringing")
    source: Mapped[str] = mapped_column(String(128), default="")  # which PBX / account reported it
    facts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # which values are reported

    offered_to: Mapped[str | None] = mapped_column(String(255))
    answered_by: Mapped[str | None] = mapped_column(String(255))  # queue member / client identity
    counsellor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    end_reason: Mapped[str | None] = mapped_column(String(64))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    keys: Mapped[list[CallKey]] = relationship(back_populates="call", cascade="all, delete-orphan")


class CallKey(Base):
    """Every provider key that names a call: Linkedids (also re-stamped ones), channel
    Uniqueids, Twilio CallSids of the parent and child legs."""

    __tablename__ = "call_keys"
    __table_args__ = (UniqueConstraint("provider", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="call")  # call | channel | leg
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)

    call: Mapped[Call] = relationship(back_populates="keys")


class RawEvent(Base):
    """Every provider event as it arrived, append-only. ``dedupe_key`` makes redelivery harmless."""

    __tablename__ = "raw_events"
    __table_args__ = (Index("ix_raw_events_received", "received_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    event_type: Mapped[str] = mapped_column(String(64), default="")
    provider_key: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[str] = mapped_column(EncryptedText)  # decoded text (invalid bytes replaced)
    payload_bytes: Mapped[bytes | None] = mapped_column(EncryptedBytes)  # original bytes when not UTF-8
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # caller IDs removed by retention


class CallPart(Base):
    """One counsellor's (or outside party's) part of a call: from the moment the caller is
    bridged with them to the moment one of them leaves.  A transferred call has several."""

    __tablename__ = "call_parts"
    __table_args__ = (UniqueConstraint("call_id", "leg"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    leg: Mapped[str] = mapped_column(String(128))  # the provider's id of the counsellor's channel / leg
    agent: Mapped[str] = mapped_column(String(255), default="")  # interface / device / client identity
    counsellor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    talk_seconds: Mapped[int | None] = mapped_column(Integer)


class PendingCallEvent(Base):
    """A call event about a provider key that is not (yet) a hotline call: an internal or
    outbound channel, or a caller's hangup that arrived before the queue join.  Applied when the
    key becomes a call; dropped after a while (the raw event stays in ``raw_events``)."""

    __tablename__ = "pending_call_events"
    __table_args__ = (Index("ix_pending_call_events_key", "provider", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    event: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class TelephonyGap(Base):
    """A time the listener could not hear the PBX: calls that began and ended inside it may be
    missing from the day's counts (unless recovered from ``queue_log``)."""

    __tablename__ = "telephony_gaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovered_calls: Mapped[int] = mapped_column(Integer, default=0)
    recovery: Mapped[str] = mapped_column(String(255), default="")  # what was (not) recovered, and why


class DeadLetter(Base):
    """An event that could not be applied, with the reason, kept for a person to look at."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    raw_event_id: Mapped[int | None] = mapped_column(ForeignKey("raw_events.id", ondelete="SET NULL"))
    payload: Mapped[str] = mapped_column(EncryptedText, default="")
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # caller IDs removed by retention


class TaxonomyTerm(Base):
    """A copy of ``hotline/data/taxonomies.json`` for reports to join on."""

    __tablename__ = "taxonomy_terms"
    __table_args__ = (UniqueConstraint("scheme", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scheme: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    parent_code: Mapped[str | None] = mapped_column(String(64))
    label_vi: Mapped[str] = mapped_column(String(255))
    label_en: Mapped[str] = mapped_column(String(255))
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    version: Mapped[str] = mapped_column(String(32))
    sort: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CallRecord(Base):
    """What the counsellor records about a call (or a walk-in). No name is ever required."""

    __tablename__ = "call_records"
    __table_args__ = (Index("ix_call_records_centre_created", "centre_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"), unique=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    # The call's overflow centre (copied from the call): its supervisors see the record too.
    overflow_centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id", ondelete="SET NULL"))
    counsellor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(32), default="telephony")
    state: Mapped[str] = mapped_column(String(16), default="draft")  # draft | completed
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Every UPDATE says "WHERE version = <the version read>": two saves racing on one record (two
    # tabs, a save and a reference) cannot both win; the loser gets a conflict, not a lost edit.
    # The services set the next version themselves.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    caller_role: Mapped[str | None] = mapped_column(String(32))
    caller_sex: Mapped[str] = mapped_column(String(16), default="unknown")
    caller_age_group: Mapped[str] = mapped_column(String(16), default="unknown")
    province_code: Mapped[str | None] = mapped_column(String(16))
    commune_code: Mapped[str | None] = mapped_column(String(16))
    ethnic_minority: Mapped[str | None] = mapped_column(String(64))
    disability: Mapped[bool | None] = mapped_column(Boolean)
    language: Mapped[str | None] = mapped_column(String(32))

    consent_record: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_statistics: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_callback: Mapped[bool] = mapped_column(Boolean, default=False)
    callback_safe_time: Mapped[str | None] = mapped_column(EncryptedText)
    callback_safe_method: Mapped[str | None] = mapped_column(String(32))
    consent_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_referral_scope: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)  # free text
    child_consent: Mapped[bool | None] = mapped_column(Boolean)
    representative_consent: Mapped[bool | None] = mapped_column(Boolean)

    primary_issue: Mapped[str | None] = mapped_column(String(64))
    service_level: Mapped[int] = mapped_column(Integer, default=0)
    child_protection_level: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(32))
    follow_up_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    follow_up_date: Mapped[date | None] = mapped_column(Date)
    risk: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(EncryptedText, default="")  # encrypted at rest
    references_given: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # Caller flags shown in the caller's history (e.g. safety risk, perpetrator, repeat prank).
    flags: Mapped[list[Any]] = mapped_column(JSONType, default=list)

    # Set when a supervisor signs off the record's day; a later edit needs a reason.
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Retention: a legal hold keeps free text and full numbers past their retention period.
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    legal_hold_reason: Mapped[str | None] = mapped_column(Text)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # free text removed by retention

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    issues: Mapped[list[CallRecordIssue]] = relationship(
        back_populates="record", cascade="all, delete-orphan", order_by="CallRecordIssue.id"
    )


class CallRecordIssue(Base):
    __tablename__ = "call_record_issues"
    __table_args__ = (UniqueConstraint("record_id", "code"), Index("ix_call_record_issues_code", "code"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("call_records.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    record: Mapped[CallRecord] = relationship(back_populates="issues")
