"""A daemon thread that calls a function every few seconds and keeps going when it fails: the
refreshers of the per-process copies the voice path reads (``hotline.centres.numbers``,
``blocking.index``).  A failure is logged once (``<name>.refresh_failed``) until it works again
(``<name>.refresh_recovered``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def start(name: str, interval: Callable[[], float], work: Callable[[], object]) -> Callable[[], None]:
    """Run ``work`` every ``interval()`` seconds in a daemon thread named ``<name>-refresher``
    (``name`` like ``blocking`` or ``centres.number_lines``); returns the function that stops it."""
    stop = threading.Event()

    def loop() -> None:
        failing = False
        while not stop.wait(interval()):
            try:
                work()
                if failing:
                    log.warning(f"{name}.refresh_recovered")
                failing = False
            except Exception as exc:  # noqa: BLE001 - the database may be down: keep trying
                if not failing:
                    log.error(f"{name}.refresh_failed", extra={"reason": type(exc).__name__})
                failing = True

    thread = threading.Thread(target=loop, name=f"{name.rsplit('.', 1)[-1].replace('_', '-')}-refresher",
                              daemon=True)
    thread.start()

    def finish() -> None:
        stop.set()
        thread.join(5)

    return finish
