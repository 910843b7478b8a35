"""Faults with the real services (#14 "What to build" 5): the disk spool full while the database is
down. A private PostgreSQL (tests/services.py) is stopped and the spool directory sits on a small
tmpfs filled to the last byte (as root; without ``mount`` the directory is made unwritable instead)
while calls keep coming from both providers: the AMI simulator to a real listener over TCP, and
signed Twilio webhooks to the web application. Every Twilio caller still gets TwiML that enqueues
them; the events wait in memory (shown in ``/readyz`` and ``/metrics``), no half-written ``.tmp`` file
stays; when space comes back they move to the disk spool, and when the database comes back they are
applied. Counted: calls received, calls kept, events lost = 0, calls counted twice = 0."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import subprocess
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hotline.calls.models import Call, DeadLetter, RawEvent
from hotline.db import session_scope
from hotline.ingest import spool
from hotline.ingest.providers.asterisk.simulator import synthetic_call
from hotline.settings import get_settings, reset_settings
from tests.ami.conftest import Rig
from tests.helpers import wait_for
from tests.services import PostgresServer
from tests.twilio.conftest import base_params, sign

pytestmark = pytest.mark.slow
BEFORE, DURING, AFTER = 2, 6, 2  # calls of each provider before, during and after the outage


class FullDisk:
    """The spool directory on a full filesystem: a 2 MB tmpfs filled up (root), else a directory
    nobody may write to; ``free()`` gives the space back."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.mode = ""
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0 and shutil.which("mount"):
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(folder)],
                                  capture_output=True, text=True)
            if done.returncode == 0:
                self.mode = "tmpfs"
                self._fill()
                return
        if os.geteuid() != 0:
            folder.chmod(0o500)
            self.mode = "read-only directory"
            return
        pytest.skip("as root without mount: no way to make the spool's disk refuse writes")

    def _fill(self) -> None:
        with open(self.folder / "filler.bin", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        with pytest.raises(OSError):  # not even an empty file's first block fits
            (self.folder / "probe.tmp").write_text("x" * 100)
        (self.folder / "probe.tmp").unlink(missing_ok=True)

    def free(self) -> None:
        if self.mode == "tmpfs":
            (self.folder / "filler.bin").unlink()
        else:
            self.folder.chmod(0o700)

    def close(self) -> None:
        if self.mode == "tmpfs":
            subprocess.run(["umount", "-l", str(self.folder)], capture_output=True)
        elif self.mode:
            self.folder.chmod(0o700)


def _ended_calls() -> int:
    with session_scope() as db:
        return int(db.scalar(select(func.count()).select_from(Call).where(Call.ended_at.is_not(None))) or 0)


def _count(model: type) -> int:
    with session_scope() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.tmp"))


def test_spool_disk_full_while_the_database_is_down_loses_and_doubles_nothing(own_pg: PostgresServer, rig: Rig,
                                                                               monkeypatch) -> None:
    folder = get_settings().spool_dir
    # A process killed while writing left a half-written file: the drainer removes it when it starts.
    stray = folder / f"{time.time_ns()}-{2 ** 22 + 7}-deadbeef.tmp"
    stray.write_text("half a line")
    from hotline.app import create_app
    from webhooks.twilio import views

    monkeypatch.setattr(views, "DRAIN_INTERVAL_SECONDS", 0.2)
    monkeypatch.setattr(views, "DB_RETRY_SECONDS", 0.5)
    monkeypatch.setenv("HOTLINE_METRICS_TOKEN", "fault-metrics-token")
    reset_settings()
    disk: FullDisk | None = None
    sent_ami: list[tuple[str, int]] = []
    sent_twilio: list[str] = []
    twiml_enqueued = 0
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(TestClient(create_app(), base_url="https://hotline.example.org"))
        assert not stray.exists()
        server = rig.server()
        listener = rig.listener(server)
        wait_for(lambda: listener.stats.resyncs >= 1, timeout=60, what="the first resync")

        def twilio_call(n: int) -> None:
            nonlocal twiml_enqueued
            sid = f"CA{n:032d}"
            sent_twilio.append(sid)
            voice = base_params(CallSid=sid, CallStatus="ringing")
            r = client.post("/webhooks/twilio/voice", content=urlencode(voice), headers={
                "X-Twilio-Signature": sign("/webhooks/twilio/voice", voice),
                "Content-Type": "application/x-www-form-urlencoded"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml"), r.text
            if ElementTree.fromstring(r.text).find("Enqueue") is not None:
                twiml_enqueued += 1
            done = base_params(CallSid=sid, CallStatus="completed", SequenceNumber="1", CallDuration="0",
                               Timestamp=format_datetime(datetime.now(timezone.utc), usegmt=True))
            r = client.post("/webhooks/twilio/status", content=urlencode(done), headers={
                "X-Twilio-Signature": sign("/webhooks/twilio/status", done),
                "Content-Type": "application/x-www-form-urlencoded"})
            assert r.status_code == 200, r.text

        def ami_call(i: int) -> None:
            c = synthetic_call(outcome="answered", wait=1, talk=5 + i % 7)
            sent_ami.append((c.linkedid, 5 + i % 7))
            server.push(c.stream())

        n = 0
        for _ in range(BEFORE):
            ami_call(n)
            twilio_call(n)
            n += 1
        wait_for(lambda: _ended_calls() >= 2 * BEFORE, timeout=60, what="the calls before the outage")

        disk = FullDisk(folder)
        stack.callback(disk.close)
        own_pg.stop()
        for _ in range(DURING):
            ami_call(n)
            twilio_call(n)
            n += 1
            time.sleep(0.1)
        wait_for(lambda: spool.held() > 0, timeout=60, what="events held in memory")
        time.sleep(1.0)  # the listener's last batch
        held_during = spool.held()
        ready = client.get("/readyz").json()
        metrics = client.get("/metrics", headers={"Authorization": "Bearer fault-metrics-token"}).text
        assert "held in memory" in ready["checks"]["spool"], ready
        shown = re.search(r"^hotline_spool_memory_events (\S+)$", metrics, re.M)
        assert shown and float(shown.group(1)) > 0, metrics
        assert "hotline_spool_events_lost_total 0.0" in metrics
        # Every failed write removed its half-written file (one being tried this very moment may show briefly).
        wait_for(lambda: _tmp_files(folder) == [], timeout=10, what="no .tmp file left in the spool")
        assert not spool.pending_files()  # nothing reached the disk

        disk.free()  # space comes back, the database is still down: the backlog moves to the disk spool
        wait_for(lambda: spool.held() == 0 and spool.pending_files(), timeout=60, what="the backlog on disk")
        assert client.get("/readyz").json()["checks"]["spool"] == "ok"

        own_pg.start()  # the database comes back: everything is applied
        for _ in range(AFTER):
            ami_call(n)
            twilio_call(n)
            n += 1

        def all_done() -> bool:
            try:
                return _ended_calls() == len(sent_ami) + len(sent_twilio) and not spool.pending_files()
            except Exception:  # noqa: BLE001 - the pool may still hold a connection from before the restart
                return False

        wait_for(all_done, timeout=120, interval=0.5, what="every call ended and an empty spool")
        assert _tmp_files(folder) == [] and spool.held() == 0
    with session_scope() as db:
        keys = list(db.scalars(select(Call.provider_key)))
        talk = {c.provider_key: c.talk_seconds for c in db.scalars(select(Call))}
    received = len(sent_ami) + len(sent_twilio)
    lost = [k for k, _ in sent_ami if k not in keys] + [k for k in sent_twilio if k not in keys]
    wrong = [k for k, t in sent_ami if k in talk and talk[k] != t]
    doubled = len(keys) - len(set(keys))
    print(f"faults/spool-full ({disk.mode if disk else '?'}): calls received {received} "
          f"({len(sent_ami)} AMI, {len(sent_twilio)} Twilio; {2 * DURING} while the database was down and the "
          f"disk full), Twilio callers enqueued {twiml_enqueued} of {len(sent_twilio)}, events held in memory "
          f"{held_during}, calls kept {len(keys)}, raw events {_count(RawEvent)}, dead letters {_count(DeadLetter)}, "
          f"lost {len(lost)}, counted twice {doubled}, wrong talk time {len(wrong)}, .tmp files left 0")
    assert held_during > 0
    assert twiml_enqueued == len(sent_twilio)
    assert not lost and not doubled and not wrong and len(keys) == received
    assert _count(DeadLetter) == 0
