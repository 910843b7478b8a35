"""Referral fixtures: a centre with staff and partner accounts, directory services that take
referrals by webhook, e-mail and SMS, a call record with consent, and the real local peers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hotline.settings import get_settings, reset_settings
from tests.helpers import create_user
from tests.referral.peers import Receiver, SMTPSink, TwilioStandIn

SECRET = "shelter-a-webhook-secret-0123456789"
PASSWORD = "a-long-password-for-tests"


@dataclass
class World:
    receiver: Receiver
    smtp: SMTPSink
    twilio: TwilioStandIn
    record_id: int
    users: dict[str, int]

    ROLES = {"lan": "counsellor", "hoa": "counsellor", "sup": "supervisor", "admin": "administrator",
             "pa": "partner", "pb": "partner", "far": "supervisor"}

    def uid(self, name: str) -> int:
        """The account's id, created on first use (argon2 hashing is slow: only what a test needs)."""
        if name not in self.users:
            self.users[name] = create_user(name, PASSWORD, self.ROLES[name],
                                           centre_code="other" if name == "far" else None)
        return self.users[name]

    def login(self, client, name: str) -> str:
        from tests.helpers import login

        self.uid(name)
        return login(client, name, PASSWORD)

    def record(self, **changes: Any) -> int:
        """Change the call record's fields (consent, age, risk …) as the counsellor would."""
        from hotline.calls.models import CallRecord
        from hotline.db import session_scope

        with session_scope() as db:
            rec = db.get(CallRecord, self.record_id)
            for k, v in changes.items():
                setattr(rec, k, v)
        return self.record_id


def _service(db: Any, **raw: str) -> None:
    from directory import service as directory

    base = {"province": "toàn quốc", "languages": "vi", "accessible": "no", "verified": "yes",
            "last_verified_at": "2026-11-01", "last_verified_by": "test"}
    rec, _ = directory.validate({**base, **raw})
    directory.save(db, record=rec, actor="test", action="create")


def make_world(receiver: Receiver, smtp: SMTPSink, twilio: TwilioStandIn) -> World:
    from hotline.auth.models import User
    from hotline.calls.models import CallRecord
    from hotline.centres.service import create_centre, ensure_default_centre
    from hotline.db import session_scope, utcnow

    s = get_settings()
    with session_scope() as db:
        ensure_default_centre(db, code=s.default_centre_code, name=s.default_centre_name, timezone=s.default_timezone)
        create_centre(db, code="other", name="Trung tâm khác")
        _service(db, id="t-shelter-a", organization_id="org-a", organization="Nhà tạm lánh Bình An", name="Nhà tạm lánh Bình An",
                 service_type="shelter", beds_total="4", beds_free="0", referral_method="webhook",
                 referral_webhook_url=receiver.url, referral_webhook_secret=SECRET)
        _service(db, id="t-shelter-b", organization_id="org-b", organization="Ngôi nhà Bình Yên", name="Ngôi nhà Bình Yên",
                 service_type="shelter", beds_total="6", beds_free="3", referral_method="email",
                 referral_email="tiepnhan@binhyen.example", phones="0912 345 678")
        _service(db, id="t-legal", organization_id="org-c", organization="Trợ giúp pháp lý Quảng Ngãi",
                 name="Trợ giúp pháp lý Quảng Ngãi", service_type="legal_aid", referral_method="sms",
                 referral_sms="0987 654 321")
        _service(db, id="t-police", organization_id="org-d", organization="Công an xã", name="Công an xã",
                 service_type="police")
    users = {"lan": create_user("lan", PASSWORD, "counsellor")}
    with session_scope() as db:
        lan = db.get(User, users["lan"])
        rec = CallRecord(centre_id=lan.centre_id, counsellor_id=lan.id, channel="walk_in", state="draft", version=1,
                         caller_sex="female", caller_age_group="30_59", primary_issue="dv.physical", risk="high",
                         consent_referral=True, consent_referral_scope={"to": "nhà tạm lánh, trợ giúp pháp lý"},
                         consent_callback=True, callback_safe_method="sms", callback_safe_time="sau 20 giờ",
                         notes="Chồng đánh, đang ở nhà mẹ đẻ.", province_code="51", created_at=utcnow())
        db.add(rec)
        db.flush()
        record_id = rec.id
    return World(receiver=receiver, smtp=smtp, twilio=twilio, record_id=record_id, users=users)


def peer_env(receiver_port: int, smtp: SMTPSink, twilio: TwilioStandIn) -> dict[str, str]:
    return {"HOTLINE_SMTP_HOST": "127.0.0.1", "HOTLINE_SMTP_PORT": str(smtp.port), "HOTLINE_SMTP_STARTTLS": "false",
            "HOTLINE_SMTP_FROM": "hotline@ctxh.example", "HOTLINE_TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
            "HOTLINE_TWILIO_SMS_FROM": "+84240000000", "HOTLINE_TWILIO_API_BASE_URL": twilio.url,
            "HOTLINE_REFERRAL_RETRY_SECONDS": "1,1",
            "HOTLINE_REFERRAL_ALLOW_HTTP_WEBHOOKS": "true"}  # the local receiver speaks plain http


@pytest.fixture(scope="session")
def _peers() -> Iterator[tuple[Receiver, SMTPSink, TwilioStandIn]]:
    receiver, smtp, twilio = Receiver(SECRET).start(), SMTPSink().start(), TwilioStandIn().start()
    yield receiver, smtp, twilio
    receiver.stop()
    smtp.stop()
    twilio.stop()


@pytest.fixture
def peers(_peers: tuple[Receiver, SMTPSink, TwilioStandIn]) -> tuple[Receiver, SMTPSink, TwilioStandIn]:
    """The same running peers for every test, emptied (and started again if a test stopped them)."""
    receiver, smtp, twilio = _peers
    if receiver._server is None:
        receiver.start()
    if not getattr(smtp, "running", False):
        smtp.start()
    with receiver.lock:
        receiver.requests.clear()
        receiver.accepted.clear()
        receiver.bad_signatures = 0
        receiver.fail_next = 0
    smtp.messages.clear()
    twilio.messages.clear()
    twilio.auth.clear()
    return _peers


@pytest.fixture
def world(env, peers, monkeypatch: pytest.MonkeyPatch) -> World:
    return _world(peers, monkeypatch)


@pytest.fixture
def sqlite_world(sqlite_env, peers, monkeypatch: pytest.MonkeyPatch) -> World:
    """For tests of transport (live stream) rather than storage: SQLite only."""
    return _world(peers, monkeypatch)


def _world(peers: tuple[Receiver, SMTPSink, TwilioStandIn], monkeypatch: pytest.MonkeyPatch) -> World:
    receiver, smtp, twilio = peers
    for k, v in peer_env(receiver.port, smtp, twilio).items():
        monkeypatch.setenv(k, v)
    reset_settings()
    return make_world(receiver, smtp, twilio)


@pytest.fixture
def app_client(world: World):
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    with TestClient(create_app()) as c:
        yield c


def fresh_client():
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    return TestClient(create_app())




@pytest.fixture
def fast_retries(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """Tries follow each other at once (dead-letter tests need not wait for the backoff)."""
    monkeypatch.setenv("HOTLINE_REFERRAL_RETRY_SECONDS", "0,0")
    reset_settings()
    return world
