"""Set-up for the daily log tests: the live tests' staff (a centre, every role) and helpers that put
calls and records straight into the database with exact timestamps."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone
from typing import Any

from hotline.calls.models import Call, CallRecord, CallRecordIssue
from hotline.db import session_scope
from tests.live.conftest import Staff, sign_in, staff  # noqa: F401  (fixture re-exported)

_seq = itertools.count(1)
UTC = timezone.utc


def add_call(centre_id: int, received: datetime, *, status: str = "completed", wait: int | None = 10,
             talk: int | None = 120, counsellor_id: int | None = None, record: dict[str, Any] | None = None,
             number: str = "+84912345678") -> tuple[int, int | None]:
    """A call (and, when ``record`` is given, its completed record); returns (call id, record id)."""
    n = next(_seq)
    with session_scope() as db:
        answered = received + timedelta(seconds=wait or 0) if status in {"completed", "in_progress"} else None
        ended = None if status in {"ringing", "queued", "in_progress"} else received + timedelta(
            seconds=(wait or 0) + (talk or 0))
        call = Call(provider="asterisk", provider_key=f"dl-{n}-{received.timestamp()}", centre_id=centre_id,
                    caller_number=number, caller_masked=number[:4] + "****" + number[-3:], caller_id_status="available",
                    received_at=received, queued_at=received, answered_at=answered, ended_at=ended,
                    queue_wait_seconds=wait, talk_seconds=talk if answered else None, status=status,
                    abandoned=status == "abandoned", counsellor_id=counsellor_id)
        db.add(call)
        db.flush()
        rid = None
        if record is not None:
            rid = add_record(db, centre_id, call_id=call.id, counsellor_id=counsellor_id, created=received,
                             **record)
        return call.id, rid


def add_record(db: Any, centre_id: int, *, call_id: int | None = None, counsellor_id: int | None = None,
               created: datetime, issues: tuple[str, ...] = ("dv.physical",), level: int = 2,
               outcome: str = "resolved", sex: str = "female", age: str = "30_59", role: str = "survivor",
               province: str | None = "22", consent_statistics: bool = True, state: str = "completed",
               notes: str = "ghi chú riêng tư", follow_up: date | None = None, channel: str = "telephony",
               flags: list[str] | None = None) -> int:
    rec = CallRecord(call_id=call_id, centre_id=centre_id, counsellor_id=counsellor_id, channel=channel,
                     state=state, caller_role=role, caller_sex=sex, caller_age_group=age, province_code=province,
                     consent_statistics=consent_statistics, primary_issue=issues[0] if issues else None,
                     service_level=level, outcome=outcome, notes=notes, follow_up_needed=follow_up is not None,
                     follow_up_date=follow_up, created_at=created, updated_at=created, flags=flags or [],
                     completed_at=created + timedelta(minutes=5) if state == "completed" else None)
    rec.issues = [CallRecordIssue(code=c, is_primary=i == 0) for i, c in enumerate(issues)]
    db.add(rec)
    db.flush()
    return rec.id


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
