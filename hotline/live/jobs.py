"""Background work of the live screen: wrap-ups that have run their time end (available again,
unpaused on the Asterisk queue) even when the counsellor's screen is closed.

``PERIODIC`` is declared in ``hotline.domains`` and run by ``hotline.queue``.
"""

from __future__ import annotations

from hotline.queue import Periodic

WRAP_UP_CHECK_SECONDS = 10


def end_wrap_ups() -> int:
    """Every wrap-up past its time becomes available and is announced; returns how many."""
    from sqlalchemy import select

    from hotline.db import session_scope
    from hotline.live import service
    from hotline.live.models import CounsellorPresence

    with session_scope() as db:
        ids = list(db.scalars(select(CounsellorPresence.user_id).where(CounsellorPresence.state == "wrap_up")))
        rows = [row for row in (service.end_wrap_up(db, user_id=i) for i in ids) if row is not None]
        if rows:
            db.commit()
            for row in rows:
                service.announce_presence(db, row=row, reason="wrap_up_over")
    return len(rows)


PERIODIC = [Periodic("live.wrap_up", WRAP_UP_CHECK_SECONDS, end_wrap_ups)]
