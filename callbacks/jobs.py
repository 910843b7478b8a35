"""The worker's callback jobs: the list is built every minute (``PERIODIC``, run by ``hotline.queue``)."""

from __future__ import annotations

from hotline.queue import Periodic

BUILD_SECONDS = 60


def build() -> object:
    from callbacks import service

    return service.build_all()


PERIODIC = [Periodic("callbacks.build", BUILD_SECONDS, build)]
