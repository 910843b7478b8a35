"""Faults (#14 "What to build" 5): a worker killed with SIGKILL in the middle of a referral delivery.
A private Redis (tests/services.py), ``hotline worker`` in its own process, a partner endpoint that
holds the first request open; the worker is killed while it waits for the answer. The try stays
"sending"; once its claim is stale (5 minutes: the claim's time is moved back rather than waiting)
the next worker's sweep tries again, with the same delivery id. Counted: requests the partner got,
distinct delivery ids (1), the referral delivered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from hotline.db import session_scope, utcnow
from hotline.settings import reset_settings
from referral.models import Delivery, Referral
from tests.helpers import free_port, wait_for
from tests.referral.conftest import SECRET, _service
from tests.services import RedisServer, ServiceError

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


class HoldingPartner:
    """Keeps every request; holds the first one open until ``release`` is set."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[str] = []
        self.release = threading.Event()
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                partner.requests.append(self.headers.get("X-Hotline-Delivery", ""))
                if len(partner.requests) == 1:
                    partner.release.wait(60)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the worker that asked is dead

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def own_redis(monkeypatch) -> Iterator[RedisServer]:
    try:
        server = RedisServer()
        server.start()
    except ServiceError as exc:
        pytest.skip(f"no redis-server to start a private one: {exc}")
    monkeypatch.setenv("HOTLINE_REDIS_URL", server.url(0))
    reset_settings()
    yield server
    server.close()


def _worker() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hotline", "--log-format", "console", "worker"], cwd=ROOT,
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(worker: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_a_worker_killed_mid_delivery_sends_again_with_the_same_delivery_id(sqlite_world, own_redis):
    from hotline.auth.deps import Principal
    from referral import jobs, service

    world = sqlite_world
    partner = HoldingPartner()
    with session_scope() as db:
        _service(db, id="t-hold", organization_id="org-h", organization="Nhà tạm lánh H", name="Nhà tạm lánh H",
                 service_type="shelter", referral_method="webhook",
                 referral_webhook_url=f"http://127.0.0.1:{partner.port}/hook", referral_webhook_secret=SECRET)
    p = Principal(id=world.uid("lan"), username="lan", display_name="", role="counsellor", centre_id=1, language="vi")
    with session_scope() as db:
        [ref] = service.create(db, record_id=world.record_id, actor=p,
                               data={"service_ids": ["t-hold"], "urgency": "urgent", "ask": "Nhận tạm lánh"})
        ref_id, delivery_id = ref.id, ref.delivery.delivery_id
    first = _worker()
    second = None
    try:
        jobs.queue_delivery(delivery_id)
        wait_for(lambda: partner.requests, timeout=90, interval=0.2, what="the first try to reach the partner")
        _stop(first, signal.SIGKILL)  # in the middle: the partner has the request, the worker no answer
        partner.release.set()
        with session_scope() as db:
            d = db.query(Delivery).filter_by(delivery_id=delivery_id).one()
            assert (d.status, d.attempts) == ("sending", 1)
            # Five minutes pass (the claim's age is what makes it stale; the worker runs real time).
            db.execute(update(Delivery).where(Delivery.id == d.id)
                       .values(claimed_at=utcnow() - timedelta(minutes=6)))
        second = _worker()  # its start-up sweep finds the stale try

        def delivered() -> bool:
            with session_scope() as db:
                return db.get(Referral, ref_id).state in ("delivered", "sent")
        wait_for(delivered, timeout=90, interval=0.3, what="the referral delivered by the second worker")
        with session_scope() as db:
            d = db.query(Delivery).filter_by(delivery_id=delivery_id).one()
            attempts, status = d.attempts, d.status
        print(f"faults/worker-sigkill: partner requests {len(partner.requests)}, distinct delivery ids "
              f"{len(set(partner.requests))}, attempts {attempts}, delivery {status}")
        assert set(partner.requests) == {delivery_id}  # retried with the same id: the partner can dedupe
        assert len(partner.requests) == 2 and attempts == 2
        assert status != "sending"
    finally:
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)
        partner.stop()
