"""Shared set-up for the operations tests: settings on a real database, subprocesses of the
real ``hotline`` command, free ports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hotline.settings import Settings, reset_settings
from tests.conftest import ROOT, _configure
from tests.helpers import free_port, wait_for  # noqa: F401  (re-exported for the tests here)

HOTLINE = str(Path(sys.executable).with_name("hotline"))
DEPLOY = ROOT / "deploy"






def hotline_env(**extra: str) -> dict[str, str]:
    """The current HOTLINE_* settings of this test process, for a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_") or k.startswith("HOTLINE_TEST_")}
    env.update({k: v for k, v in os.environ.items() if k.startswith("HOTLINE_") and not k.startswith("HOTLINE_TEST_")})
    env.update(extra)
    return env


def run_hotline(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HOTLINE, *args], env=env or hotline_env(), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


class Proc:
    """A long-running ``hotline`` subprocess whose stderr (the JSON log) goes to a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path):
        self.name = name
        self.log = logdir / f"{name}.log"
        self._fh = open(self.log, "wb")  # noqa: SIM115 - the process writes to it until stop() closes it
        self.proc = subprocess.Popen([HOTLINE, *args], env=env, stdout=self._fh, stderr=subprocess.STDOUT, cwd=ROOT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self, grace: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._fh.close()


def wait_http(url: str, proc: Proc, timeout: float = 30.0) -> None:
    last = {"answer": "no answer"}

    def up() -> bool:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited: {proc.output()[-2000:]}")
        try:
            r = httpx.get(url, timeout=1)
        except httpx.HTTPError:
            return False
        last["answer"] = f"{r.status_code} {r.text[:300]}"
        return r.status_code == 200

    try:
        wait_for(up, timeout, f"{proc.name} at {url}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last answer: {last['answer']}; its log ends with: "
                             f"{proc.output()[-800:]}") from None


@pytest.fixture
def pg_env(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on an empty, migrated PostgreSQL database (in-process queue and pub/sub)."""
    yield _configure(monkeypatch, tmp_path, pg_url)
    reset_settings()
