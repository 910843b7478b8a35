"""What the blocking pages and API show: masked numbers only, never a hash."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class BlockOut(BaseModel):
    id: int
    number: str  # masked
    reason: str
    starts_at: datetime
    expires_at: datetime
    created_by: str

    @classmethod
    def of(cls, block: object) -> BlockOut:
        b = block
        return cls(id=b.id, number=b.number_masked, reason=b.reason, starts_at=b.starts_at,  # type: ignore[attr-defined]  # a blocking.models.Block (object keeps schemas free of models)
                   expires_at=b.expires_at, created_by=b.created_by)  # type: ignore[attr-defined]  # as above


class CheckOut(BaseModel):
    blocked: int  # 1 or 0, as the Asterisk dialplan reads it
