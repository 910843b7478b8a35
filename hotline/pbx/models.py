"""One row per call hotline asks the PBX to place (``pbx_commands``).

The row is the truth between the web and the PBX: the web writes it ``pending``; an AMI listener
claims it (``sent``, exactly once, by a conditional UPDATE; only the listener of the row's ``pbx``
when it names one) and sends the ``Originate``; the PBX's
answer ends it ``placed`` or ``failed`` with a reason.  The number to call is encrypted at rest and
cleared once the command has ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db import Base, EncryptedText, JSONType, UTCDateTime, utcnow

STATUSES = ("pending", "sent", "placed", "failed")
ENDED = ("placed", "failed")
KINDS = ("call", "spy")


class PbxCommand(Base):
    __tablename__ = "pbx_commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(8), default="call")  # call | spy
    provider: Mapped[str] = mapped_column(String(16))  # asterisk | twilio
    #: the PBX it must go out on (the name of an AMI listener, its ``source``); "" = any listener
    pbx: Mapped[str] = mapped_column(String(128), default="")
    ref: Mapped[str] = mapped_column(String(64), default="", index=True)
    #: the counsellor's (or supervisor's) own phone: an AMI interface or a Twilio client/number
    device: Mapped[str] = mapped_column(String(255), default="")
    #: the number to call (E.164), only while the command is pending or sent
    dial_number: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)
    caller_id: Mapped[str] = mapped_column(String(32), default="")  # the hotline number shown
    #: what else the provider needs (listen-in: the spied channel and the mode)
    options: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reason: Mapped[str] = mapped_column(String(255), default="")  # English msgid, translated when shown
    call_uid: Mapped[str] = mapped_column(String(128), default="")
    claimed_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
