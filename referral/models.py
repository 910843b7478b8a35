"""Tables of the referral domain.

* ``referral_referrals``: one hand-off of one call record to one directory service, with the exact
  content the partner receives frozen at creation (what the counsellor previewed is what is sent).
* ``referral_deliveries``: the one delivery of a referral; its ``delivery_id`` is the idempotency
  key every try carries, so a receiver that sees it twice knows it is the same delivery.
* ``referral_events``: the state history (who, when, why), shown on the call record.
* ``referral_links``: single-use signed links for partners without accounts.
* ``referral_ack_nonces``: signatures of webhook acknowledgements already accepted (replays refused).
* ``referral_partner_members``: which directory organisation a partner user answers for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, EncryptedJSON, EncryptedText, JSONType, UTCDateTime, utcnow

STATES = ("queued", "sent", "delivered", "accepted", "declined", "expired", "cancelled", "failed")
OPEN_STATES = ("queued", "sent", "delivered")
FINAL_STATES = ("accepted", "declined", "expired", "cancelled", "failed")
URGENCIES = ("routine", "urgent", "emergency")
METHODS = ("webhook", "email", "sms")
DELIVERY_STATUSES = ("pending", "sending", "retrying", "sent", "dead")


class Referral(Base):
    __tablename__ = "referral_referrals"
    __table_args__ = (
        Index("ix_referral_referrals_centre_created", "centre_id", "created_at"),
        Index("ix_referral_referrals_state_urgency", "state", "urgency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # unguessable, what partners see
    code: Mapped[str] = mapped_column(String(24), unique=True)  # case code, e.g. HL-7K3P9Q
    record_id: Mapped[int | None] = mapped_column(ForeignKey("call_records.id", ondelete="SET NULL"), index=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    service_id: Mapped[str] = mapped_column(String(64), index=True)
    service_name: Mapped[str] = mapped_column(String(255))
    service_type: Mapped[str] = mapped_column(String(32), default="other")
    organization_id: Mapped[str] = mapped_column(String(64), index=True)
    organization_name: Mapped[str] = mapped_column(String(255), default="")
    method: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    urgency: Mapped[str] = mapped_column(String(16), default="routine")
    ask: Mapped[str] = mapped_column(EncryptedText, default="")  # free text: encrypted at rest
    extras: Mapped[list[Any]] = mapped_column(JSONType, default=list)  # which optional fields were ticked
    content: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)  # exactly what the partner receives
    override_reason: Mapped[str | None] = mapped_column(EncryptedText)  # supervisor override of missing consent
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str] = mapped_column(String(255), default="")
    decision_note: Mapped[str] = mapped_column(EncryptedText, default="")
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # free text removed by retention

    delivery: Mapped[Delivery | None] = relationship(back_populates="referral", uselist=False,
                                                     cascade="all, delete-orphan")
    events: Mapped[list[Event]] = relationship(back_populates="referral", cascade="all, delete-orphan",
                                               order_by="Event.id")


class Delivery(Base):
    __tablename__ = "referral_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)  # idempotency key, same on every try
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral_referrals.id", ondelete="CASCADE"), unique=True)
    method: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500), default="")  # URL, address or number (for staff)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_ref: Mapped[str] = mapped_column(String(128), default="")  # Twilio SID, SMTP message id

    referral: Mapped[Referral] = relationship(back_populates="delivery")


class Event(Base):
    __tablename__ = "referral_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral_referrals.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(32))  # created, sent, delivered, accepted, retry, escalated …
    state: Mapped[str] = mapped_column(String(16))  # the referral's state after the event
    actor: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)  # may hold notes and reasons

    referral: Mapped[Referral] = relationship(back_populates="events")


class Link(Base):
    __tablename__ = "referral_links"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # random; the link carries it, signed
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral_referrals.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AckNonce(Base):
    __tablename__ = "referral_ack_nonces"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the signature
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class PartnerMember(Base):
    __tablename__ = "referral_partner_members"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255), default="")
