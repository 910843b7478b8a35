"""Background jobs of the daily log (RQ under Redis, the in-process pool otherwise).

* ``PERIODIC``: every ``SCAN_SECONDS`` one scheduler in the cluster (``hotline.queue`` lease) looks
  for days that have ended in each centre's own timezone and have no summary yet, and queues one
  build per day.  So the day that just ended is built within minutes after each local midnight,
  whatever the timezone, and a day missed while no worker ran is built at the next scan.
* ``on_worker_start``: the same catch-up when a worker starts, also retrying days whose earlier
  builds failed (the periodic scan leaves those alone, so a broken day is not retried every few
  minutes forever; administrators see it with its reason on ``/daily-log/failures``).
* ``build_day_job``: builds one day.  A failure is recorded (attempts, reason) and re-raised so
  the queue retries it after ``RETRY_INTERVALS`` seconds; a later success clears it.

Only days since the centre existed are ever built, and a built day is not rebuilt by the
schedule (``hotline daily-log build`` or the page's button rebuilds by hand).
"""

from __future__ import annotations

import logging
from datetime import date

from daily_log import service
from hotline.db import session_scope
from hotline.queue import Periodic, enqueue, take_lease

log = logging.getLogger(__name__)

SCAN_SECONDS = 300
RETRY_INTERVALS = (30, 120, 600)
LEASE_SECONDS = 30 + 120 + 600 + 300  # one build and its retries: not queued twice meanwhile


def build_day_job(centre_id: int, day: str) -> str:
    """Build one day; on failure record the reason (visible to administrators) and raise to retry."""
    when = date.fromisoformat(day)
    try:
        with session_scope() as db:
            centre = service.get_centre(db, centre_id=centre_id)
            built = service.build_day(db, centre=centre, day=when, by="worker")
            return f"{centre.code} {day}: {built.summary['totals']['received']} calls"
    except service.DayRefused as exc:
        log.warning("daily_log.refused", extra={"centre_id": centre_id, "day": day, "reason": str(exc)})
        return str(exc)  # nothing to retry: the day cannot be built (yet)
    except Exception as exc:
        try:
            with session_scope() as db:
                service.record_failure(db, centre_id=centre_id, day=when, reason=f"{type(exc).__name__}: {exc}")
        except Exception:  # the database itself may be what failed
            log.exception("daily_log.failure_not_recorded", extra={"centre_id": centre_id, "day": day})
        raise


def queue_missing_days(*, retry_failed: bool = False) -> list[tuple[int, str]]:
    """Queue a build for every ended, unbuilt day of every active centre; returns what was queued."""
    queued: list[tuple[int, str]] = []
    todo: list[tuple[int, str]] = []
    with session_scope() as db:
        for centre in service.active_centres(db):
            try:
                days = service.missing_days(db, centre=centre, skip_failed=not retry_failed)
            except Exception:  # e.g. an unknown timezone: the other centres go on
                log.exception("daily_log.scan_failed", extra={"centre_id": centre.id})
                continue
            todo.extend((centre.id, d.isoformat()) for d in days)
    for centre_id, day in todo:
        if not take_lease(f"daily_log.build:{centre_id}:{day}", LEASE_SECONDS):
            continue  # already queued by another scheduler
        enqueue(build_day_job, centre_id, day, queue="low", job_id=f"daily-log-{centre_id}-{day}",
                retry_intervals=RETRY_INTERVALS)
        queued.append((centre_id, day))
    if queued:
        log.info("daily_log.queued", extra={"count": len(queued)})
    return queued


def scan() -> None:
    queue_missing_days()


def on_worker_start() -> None:
    queue_missing_days(retry_failed=True)


PERIODIC = [Periodic(name="daily_log.scan", every=SCAN_SECONDS, func=scan)]
