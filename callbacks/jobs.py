"""The worker's callback jobs (``PERIODIC``, run by ``hotline.queue``): the callback list is built every
minute; follow-up reminders go out every ten minutes (each at most once a day)."""

from __future__ import annotations

from hotline.queue import Periodic

BUILD_SECONDS = 60
REMIND_SECONDS = 600


def build() -> object:
    from callbacks import service

    return service.build_all()


def remind() -> object:
    from callbacks import service

    return service.send_all_reminders()


PERIODIC = [Periodic("callbacks.build", BUILD_SECONDS, build),
            Periodic("callbacks.follow_up_reminders", REMIND_SECONDS, remind)]
