"""Over a real server and real server-sent events: a notification's count reaches its recipient's
open screens only (the live screen's stream filters it like every other message)."""

from __future__ import annotations

import pytest

from hotline.auth import service as auth
from hotline.db import session_scope
from hotline.i18n import Text
from hotline.notifications import service
from tests.live.sse_helpers import SSE, LiveServer

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _cookie(name: str) -> str:
    with session_scope() as db:
        return auth.start_session(db, user=auth.require_user(db, username=name)).cookie_value


@pytest.fixture(params=["in-process", "redis"])
def bus_kind(request, staff, monkeypatch):
    """The same through the in-process bus (the demo) and through Redis pub/sub (production)."""
    if request.param == "redis":
        from hotline.settings import reset_settings

        monkeypatch.setenv("HOTLINE_REDIS_URL", request.getfixturevalue("redis_url"))
        reset_settings()
    return request.param


def test_the_count_reaches_the_recipients_screen_only(staff, bus_kind):
    with LiveServer() as server:
        mine, boss, other = (SSE(server.url, _cookie(n)) for n in ("tvv1", "gs1", "tvv2"))
        try:
            for s in (mine, boss, other):
                assert s.status == 200
                s.next("hello")
            with session_scope() as db:
                service.notify(db, user_ids=[staff.ids["tvv1"]], kind="referral.accepted", link="/referrals/1",
                               title=Text("%(service)s accepted referral %(code)s.", service="X", code="HL-1"))
            ev = mine.next("notification", timeout=10)
            assert ev["data"]["notification"]["user_id"] == staff.ids["tvv1"]
            assert ev["data"]["notification"]["unread"] == 1
            assert "title" not in ev["data"]["notification"]  # the stream says how many, the inbox says what
            with session_scope() as db:
                service.mark_read(db, user_id=staff.ids["tvv1"])
            assert mine.next("notification", timeout=10)["data"]["notification"]["unread"] == 0
            assert [e for e in boss.drain(0.5) + other.drain(0.1) if e.get("event") == "notification"] == []
        finally:
            for s in (mine, boss, other):
                s.close()
