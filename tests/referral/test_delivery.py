"""Delivery: a receiver down and then back, errors dead-lettered with the reason, one delivery id
for every try (no duplicate ever reaches the receiver as a different delivery), signature checks,
and the real RQ worker on Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import select

from hotline.db import session_scope
from tests.referral.peers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _create(world, *services, urgency="urgent"):
    from hotline.auth.deps import Principal
    from referral import jobs, service

    p = Principal(id=world.uid("lan"), username="lan", display_name="", role="counsellor", centre_id=1, language="vi")
    with session_scope() as db:
        made = service.create(db, record_id=world.record_id, actor=p,
                              data={"service_ids": list(services), "urgency": urgency, "ask": "Nhận tạm lánh"})
        ids = [(r.id, r.delivery.delivery_id) for r in made]
    for _, delivery_id in ids:
        jobs.queue_delivery(delivery_id)
    return ids


def _row(ref_id: int):
    from referral.models import Referral

    with session_scope() as db:
        r = db.get(Referral, ref_id)
        return {"state": r.state, "status": r.delivery.status, "attempts": r.delivery.attempts,
                "error": r.delivery.last_error, "reason": r.failure_reason,
                "events": [e.action for e in r.events]}


def test_receiver_down_then_back(world):
    world.receiver.stop()  # the partner's server is down: connection refused
    [(ref_id, delivery_id)] = _create(world, "t-shelter-a")
    wait_for(lambda: _row(ref_id)["status"] == "retrying")
    row = _row(ref_id)
    assert row["state"] == "queued" and "could not reach" in row["error"]
    world.receiver.start()  # back on the same port
    wait_for(lambda: _row(ref_id)["state"] == "delivered", timeout=15)
    assert world.receiver.accepted == {delivery_id: 1}
    assert world.receiver.bad_signatures == 0
    assert "retry" in _row(ref_id)["events"]


def test_errors_are_retried_then_dead_lettered_and_a_retry_keeps_the_delivery_id(fast_retries, app_client):
    world = fast_retries
    from hotline import bus

    sub = bus.Subscription(["centre:1"])
    world.receiver.fail_next = 100  # answers 503 to everything
    [(ref_id, delivery_id)] = _create(world, "t-shelter-a")
    wait_for(lambda: _row(ref_id)["state"] == "failed", timeout=15)
    row = _row(ref_id)
    assert row["status"] == "dead" and row["attempts"] == 3  # first try + two retries
    assert "HTTP 503" in row["reason"]
    assert [r["delivery"] for r in world.receiver.requests] == [delivery_id] * 3
    msg = wait_for(lambda: sub.get(0.1))
    assert msg["type"] == "referral_alert" and msg["alert"]["kind"] == "failed" and "503" in msg["alert"]["reason"]
    sub.close()
    # The counsellor sees why, and tries again once the partner is fixed: same delivery id.
    token = world.login(app_client, "lan")
    page = app_client.get(f"/referrals/{ref_id}")
    # a sentence in the counsellor's language, no exception text, no raw JSON
    assert "Không liên lạc được với hệ thống của đối tác" in page.text
    assert "HTTP 503" not in page.text and "preview-payload" not in page.text and '"delivery_id"' not in page.text
    assert 'id="ref-message"' in page.text
    world.receiver.fail_next = 0
    r = app_client.post(f"/referrals/{ref_id}/retry", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    wait_for(lambda: _row(ref_id)["state"] == "delivered")
    assert world.receiver.accepted == {delivery_id: 1}
    r = app_client.post(f"/referrals/{ref_id}/retry", data={"csrf_token": token})
    assert r.status_code == 422  # nothing to retry any more


def test_duplicate_runs_send_once(world):
    from referral import jobs

    world.receiver.stop()
    world.receiver.start()
    from hotline.auth.deps import Principal
    from referral import service

    p = Principal(id=world.uid("lan"), username="lan", display_name="", role="counsellor", centre_id=1, language="vi")
    with session_scope() as db:
        [ref] = service.create(db, record_id=world.record_id, actor=p,
                               data={"service_ids": ["t-shelter-a"], "urgency": "urgent", "ask": "x"})
        ref_id, delivery_id = ref.id, ref.delivery.delivery_id
    # The same job run by several workers at once, and again afterwards: one try reaches the partner.
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(jobs.deliver(delivery_id))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.append(jobs.deliver(delivery_id))
    assert sorted(results) == ["sent", "skipped", "skipped", "skipped", "skipped"]
    assert world.receiver.accepted == {delivery_id: 1} and len(world.receiver.requests) == 1
    assert _row(ref_id)["state"] == "delivered"


def test_wrong_secret_is_refused_by_the_receiver(fast_retries):
    world = fast_retries
    # The directory's secret no longer matches what the partner checks: the partner refuses (401).
    from directory.models import Service

    with session_scope() as db:
        svc = db.scalar(select(Service).where(Service.id == "t-shelter-a"))
        svc.referral_webhook_secret = "a-different-secret-0123456789"
    [(ref_id, _)] = _create(world, "t-shelter-a")
    wait_for(lambda: _row(ref_id)["state"] == "failed", timeout=15)
    assert "HTTP 401" in _row(ref_id)["reason"]
    assert world.receiver.bad_signatures == 3 and world.receiver.accepted == {}


def test_a_partner_that_never_answers_times_out(fast_retries, monkeypatch):
    world = fast_retries
    from referral import jobs

    monkeypatch.setattr(jobs, "WEBHOOK_TIMEOUT", 0.5)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    from directory.models import Service

    with session_scope() as db:
        svc = db.scalar(select(Service).where(Service.id == "t-shelter-a"))
        svc.referral_webhook_url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
    try:
        [(ref_id, _)] = _create(world, "t-shelter-a")
        wait_for(lambda: _row(ref_id)["state"] == "failed", timeout=15)
        assert "did not answer within" in _row(ref_id)["reason"]
    finally:
        silent.close()


def test_smtp_down_then_dead_lettered_with_reason(fast_retries):
    world = fast_retries
    world.smtp.stop()
    [(ref_id, _)] = _create(world, "t-shelter-b")
    wait_for(lambda: _row(ref_id)["state"] == "failed", timeout=15)
    assert "ConnectionRefusedError" in _row(ref_id)["reason"]


def test_through_the_real_rq_worker(world, redis_url, monkeypatch):
    """Redis queue, ``hotline worker`` in its own process: a receiver down at first gets the
    referral once it is back, through RQ's retry with backoff."""
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    # Tries a second apart, enough of them that a loaded machine restarting the receiver late
    # still leaves one (with "1,1" all three tries could fail before it was back).
    monkeypatch.setenv("HOTLINE_REFERRAL_RETRY_SECONDS", ",".join(["1"] * 20))
    from hotline.settings import reset_settings

    reset_settings()
    world.receiver.stop()
    env = {k: v for k, v in os.environ.items()}
    worker = subprocess.Popen([sys.executable, "-m", "hotline", "--log-format", "console", "worker"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        (ref_id, delivery_id), (sms_id, _sms_delivery) = _create(world, "t-shelter-a", "t-legal")
        wait_for(lambda: _row(ref_id)["attempts"] >= 1, timeout=30)
        world.receiver.start()
        wait_for(lambda: _row(ref_id)["state"] == "delivered", timeout=30)
        assert world.receiver.accepted == {delivery_id: 1}
        # The SMS job runs in the same worker; on a loaded machine it may come some seconds later.
        # Wait for it to settle either way, and say why if it failed.
        wait_for(lambda: _row(sms_id)["state"] in ("sent", "delivered", "failed"), timeout=45)
        assert _row(sms_id)["state"] != "failed", _row(sms_id)
        assert len(world.twilio.messages) == 1
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_retries_stop_once_the_partner_answered(world):
    from referral import answers, jobs
    from referral.models import Referral

    world.receiver.fail_next = 100
    [(ref_id, delivery_id)] = _create(world, "t-shelter-a")
    wait_for(lambda: _row(ref_id)["status"] == "retrying", timeout=15)
    tries = len(world.receiver.requests)
    with session_scope() as db:  # the partner accepted by account or by telephone link meanwhile
        answers.decide(db, ref=db.get(Referral, ref_id), decision="accepted", note="", by="partner1")
    jobs.deliver(delivery_id)  # the retry comes due
    row = _row(ref_id)
    assert row["state"] == "accepted" and row["status"] == "sent" and len(world.receiver.requests) == tries
