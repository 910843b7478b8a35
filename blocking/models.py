"""Blocks, counsellors' block proposals, and the calls a block turned away."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, UTCDateTime, utcnow


class NumberBlock(Base):
    """One block of one number, from ``starts_at`` until ``expires_at`` unless lifted earlier."""

    __tablename__ = "number_blocks"
    __table_args__ = (Index("ix_number_blocks_hash_expires", "number_hash", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id", ondelete="SET NULL"))
    number_hash: Mapped[str] = mapped_column(String(80))  # "<key id>:<hmac hex>", as calls.number_hash
    number_masked: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(128))
    proposal_id: Mapped[int | None] = mapped_column(Integer)


class BlockProposal(Base):
    """A counsellor's "repeat prank" proposal from a non-counselling close, for a supervisor to decide."""

    __tablename__ = "block_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id", ondelete="SET NULL"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("call_records.id", ondelete="SET NULL"))
    number_hash: Mapped[str] = mapped_column(String(80))
    number_masked: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    proposed_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | accepted | refused
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BlockedCall(Base):
    """A call a block turned away before the queue (the daily log counts these)."""

    __tablename__ = "blocked_calls"
    __table_args__ = (Index("ix_blocked_calls_at", "at"), Index("ix_blocked_calls_ref", "provider", "call_ref"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    provider: Mapped[str] = mapped_column(String(16))
    call_ref: Mapped[str] = mapped_column(String(128), default="")  # CallSid / Asterisk uniqueid
    block_id: Mapped[int | None] = mapped_column(Integer)
    pressed_for_supervisor: Mapped[bool] = mapped_column(default=False)
