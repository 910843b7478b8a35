"""Background work of the security package: the daily retention run.

``PERIODIC`` is declared in ``hotline.domains`` and run by ``hotline.queue``: one worker in the cluster
runs retention once a day (without Redis, the web process does).
"""

from __future__ import annotations

import logging

from hotline.queue import Periodic

log = logging.getLogger(__name__)

DAY = 24 * 3600


def retention_job() -> None:
    """Apply the retention periods; logs counts only, never what was removed."""
    from hotline.security.service import run_retention

    report = run_retention()
    log.info("retention.done", extra={"records": len(report.records), "revisions": report.revisions,
                                      "calls": len(report.calls), "raw_events": report.raw_events,
                                      "dead_letters": report.dead_letters, "held_records": report.held_records,
                                      "follow_up_calls": report.follow_up_calls})


PERIODIC = [Periodic("security.retention", DAY, retention_job)]
