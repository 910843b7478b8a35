"""Shared set-up for the live screen and record form tests: a centre, staff of every role,
calls fed through the ingestor's public entry point, and signed-in HTTP clients."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hotline.auth import service as auth
from hotline.auth.deps import SESSION_COOKIE
from hotline.auth.models import UserSession
from hotline.centres import service as centres
from hotline.db import session_scope
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.spool import submit

PASSWORD = "Correct-Horse-Battery-9"
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
_seq = itertools.count(1)


@dataclass
class Staff:
    centre_id: int
    other_centre_id: int
    ids: dict[str, int]


def make_staff(settings: Any) -> Staff:
    with session_scope() as db:
        centre = centres.ensure_default_centre(db, code=settings.default_centre_code,
                                               name=settings.default_centre_name, timezone="Asia/Ho_Chi_Minh")
        other = centres.create_centre(db, code="other", name="Other centre")
        ids = {}
        for name, role, cid in [("tvv1", "counsellor", centre.id), ("tvv2", "counsellor", centre.id),
                                ("gs1", "supervisor", centre.id), ("admin1", "administrator", centre.id),
                                ("partner1", "partner", centre.id), ("gs_other", "supervisor", other.id),
                                ("tvv_other", "counsellor", other.id)]:
            ids[name] = auth.create_user(db, username=name, password=PASSWORD, role=role, centre_id=cid,
                                         display_name=name.upper()).id
        centres.map_agent(db, centre=centre, provider="asterisk", identity="PJSIP/tvv1", user_id=ids["tvv1"])
        centres.map_agent(db, centre=centre, provider="asterisk", identity="PJSIP/tvv2", user_id=ids["tvv2"])
        centres.add_line(db, centre=centre, provider="asterisk", kind="queue", identifier="hotline",
                         label="Đường dây nóng 1800")
        return Staff(centre.id, other.id, ids)


_HASH: list[str] = []


def _cached_hash(password: str) -> str:
    # Argon2 is deliberately slow; seven accounts per test only need one real hash of PASSWORD.
    if password != PASSWORD:
        return _real_hash(password)
    if not _HASH:
        _HASH.append(_real_hash(PASSWORD))
    return _HASH[0]


_real_hash = auth.hash_password


@pytest.fixture
def staff(env, monkeypatch) -> Staff:
    monkeypatch.setattr(auth, "hash_password", _cached_hash)
    return make_staff(env)


def session_cookie(username: str) -> tuple[str, str]:
    """A signed-in session for ``username``: (cookie value, CSRF token)."""
    with session_scope() as db:
        user = auth.require_user(db, username=username)
        new = auth.start_session(db, user=user, ip="127.0.0.1", user_agent="pytest")
        return new.cookie_value, new.row.csrf_token


def sign_in(client: Any, username: str) -> str:
    """Put ``username``'s session cookie on ``client``; returns the CSRF token."""
    cookie, token = session_cookie(username)
    client.cookies.set(SESSION_COOKIE, cookie)
    return token


def feed_call(*, agent: str | None = "PJSIP/tvv1", caller: str = "0912345678", answered: bool = False,
              at: datetime | None = None, ended: bool = False) -> str:
    """A call arriving through the ingestor (what the AMI and Twilio adapters call); returns its key."""
    n = next(_seq)
    key = f"live-{n}-{datetime.now().timestamp()}"
    t = at or datetime.now(timezone.utc)
    events = [CallEvent(Kind.STARTED, "asterisk", key, t, channel=key, caller=caller, dialed="1800"),
              CallEvent(Kind.QUEUED, "asterisk", key, t + timedelta(seconds=1), queue="hotline")]
    if agent:
        events.append(CallEvent(Kind.OFFERED, "asterisk", key, t + timedelta(seconds=2), agent=agent))
    if agent and answered:
        events.append(CallEvent(Kind.ANSWERED, "asterisk", key, t + timedelta(seconds=4), agent=agent,
                                wait_seconds=3))
    if ended:
        events.append(CallEvent(Kind.COMPLETED, "asterisk", key, t + timedelta(seconds=60), agent=agent,
                                talk_seconds=56, reason="agent"))
        events.append(CallEvent(Kind.ENDED, "asterisk", key, t + timedelta(seconds=61), channel=key))
    submit([RawIn("asterisk", f"{key}-{i}", t, f"test {key} {i}", event_type="test", events=[e])
            for i, e in enumerate(events)])
    return key


def call_id(key: str) -> int:
    from sqlalchemy import select

    from hotline.calls.models import Call

    with session_scope() as db:
        return db.scalar(select(Call.id).where(Call.provider_key == key))


def count_sessions() -> int:
    from sqlalchemy import func, select

    with session_scope() as db:
        return db.scalar(select(func.count()).select_from(UserSession))
