"""The safety net of placing calls: commands nobody took or the PBX never answered end ``failed``,
and a Twilio command whose queued job was lost is sent.  ``PERIODIC`` is declared in ``hotline.domains``."""

from __future__ import annotations

from hotline.queue import Periodic

SWEEP_SECONDS = 10


def sweep() -> int:
    from hotline.db import session_scope
    from hotline.pbx import service, twilio

    twilio.send_pending()
    with session_scope() as db:
        return service.expire_stale(db)


PERIODIC = [Periodic("pbx.sweep", SWEEP_SECONDS, sweep)]
