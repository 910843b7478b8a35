"""A worker module for the periodic-task tests: counts how often its task and start hook ran."""

from __future__ import annotations

from hotline.queue import Periodic

RUNS: list[str] = []


def _task() -> None:
    RUNS.append("task")


def on_worker_start() -> None:
    RUNS.append("start")


PERIODIC = [Periodic(name="probe", every=60, func=_task)]
