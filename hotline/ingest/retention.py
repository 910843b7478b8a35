"""Retention of raw provider events (``raw_events``): deleted after ``retention_raw_events_days``.

Raw events are what the providers sent (AMI frames, Twilio webhooks, refused requests), encrypted;
they serve replay and diagnosis.  The calls made from them and the dead letters stay (dead letters
keep their own copy, whose caller numbers the numbers retention removes).  Events of a call whose
record is under legal hold are kept.  A provider retry older than the period would be applied
again: Twilio retries within minutes, and the disk spool is drained within seconds.

A step of the daily retention run, declared in the composition root (``hotline.domains``, the
``ingest`` domain).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select

from hotline.calls.models import CallKey, CallRecord, RawEvent
from hotline.db import session_scope

log = logging.getLogger(__name__)

BATCH = 1000


def retain_raw_events(*, now: datetime, dry_run: bool = False, days: int | None = None, **_: Any) -> int:
    """Delete raw events received more than the retention period before ``now``; returns how many
    (would be) deleted.  Each batch commits alone."""
    from hotline.settings import get_settings

    days = get_settings().retention_raw_events_days if days is None else days
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    held = (select(CallKey.key).join(CallRecord, CallRecord.call_id == CallKey.call_id)
            .where(CallRecord.legal_hold.is_(True)))
    due = select(RawEvent.id).where(RawEvent.received_at < cutoff,
                                    or_(RawEvent.provider_key.is_(None), RawEvent.provider_key.not_in(held)))
    removed, last = 0, 0
    while True:
        with session_scope() as session:
            ids = list(session.scalars(due.where(RawEvent.id > last).order_by(RawEvent.id).limit(BATCH)))
            if not ids:
                break
            last = ids[-1]
            removed += len(ids)
            if not dry_run:
                session.execute(delete(RawEvent).where(RawEvent.id.in_(ids)))
    if removed:
        log.info("retention.raw_events", extra={"deleted": removed, "dry_run": dry_run, "days": days})
    return removed

