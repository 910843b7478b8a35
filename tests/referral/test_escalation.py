"""Escalation: an emergency referral nobody acknowledged in time alerts the centre's supervisors on
the live screen and suggests the next service of the same type with a free bed."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time

from hotline.db import session_scope


def _create(world, service_id="t-shelter-a", urgency="emergency"):
    from hotline.auth.deps import Principal
    from referral import service

    p = Principal(id=world.uid("lan"), username="lan", display_name="", role="counsellor", centre_id=1, language="vi")
    with session_scope() as db:
        [ref] = service.create(db, record_id=world.record_id, actor=p,
                               data={"service_ids": [service_id], "urgency": urgency, "ask": "Cần chỗ ở ngay"})
        return ref.id, ref.public_id


def _drain(sub):
    out = []
    while (m := sub.get(0.05)) is not None:
        out.append(m)
    return [m for m in out if m.get("type") == "referral_alert"]


def test_unanswered_emergency_alerts_supervisors_once_with_a_suggestion(world):
    from hotline import bus
    from referral import jobs
    from referral.models import Referral

    sub = bus.Subscription(["centre:1"])
    ref_id, _ = _create(world)
    routine_id, _ = _create(world, urgency="urgent")
    with freeze_time(timedelta(minutes=14)):
        assert jobs.sweep()["escalated"] == 0
    assert _drain(sub) == []
    with freeze_time(timedelta(minutes=16)):
        assert jobs.sweep()["escalated"] == 1
        assert jobs.sweep()["escalated"] == 0  # once only
    [alert] = _drain(sub)
    a = alert["alert"]
    assert a["kind"] == "escalation" and a["referral_id"] == ref_id and a["minutes"] >= 15
    # Same type (shelter), a free bed, not the one already asked.
    assert a["suggestion"]["service_id"] == "t-shelter-b" and a["suggestion"]["beds_free"] == 3
    with session_scope() as db:
        ref = db.get(Referral, ref_id)
        assert ref.escalated_at is not None and ref.escalation["suggestion"]["name"] == "Ngôi nhà Bình Yên"
        assert db.get(Referral, routine_id).escalated_at is None
    sub.close()


def test_acknowledged_emergency_is_not_escalated(world):
    from hotline.auth.deps import Principal  # noqa: F401 - the import itself is what is checked
    from referral import jobs, service
    from referral.models import Referral

    ref_id, _ = _create(world)
    with session_scope() as db:
        service.decide(db, ref=db.get(Referral, ref_id), decision="received", note="", by="test")
    with freeze_time(timedelta(minutes=30)):
        assert jobs.sweep()["escalated"] == 0


def test_the_wait_is_a_setting(world, monkeypatch):
    from hotline.settings import reset_settings
    from referral import jobs

    monkeypatch.setenv("HOTLINE_REFERRAL_ESCALATION_MINUTES", "5")
    reset_settings()
    _create(world)
    with freeze_time(timedelta(minutes=6)):
        assert jobs.sweep()["escalated"] == 1


def test_no_suggestion_when_no_other_bed(world):
    from hotline import bus
    from referral import jobs

    sub = bus.Subscription(["centre:1"])
    _create(world, service_id="t-shelter-b")  # the only shelter with free beds was already asked
    with freeze_time(timedelta(minutes=16)):
        jobs.sweep()
    [alert] = _drain(sub)
    assert alert["alert"]["suggestion"] is None
    sub.close()


def test_alerts_reach_supervisors_not_other_counsellors(world, app_client):
    """The live screen's visibility rules (registered by the referral package) show the alert to
    the centre's supervisors and to the counsellor who made the referral, nobody else."""
    from hotline.live import service as live

    msg = {"type": "referral_alert", "alert": {"kind": "escalation", "created_by": world.uid("lan")}}
    sup = live.Viewer(world.uid("sup"), "supervisor", 1, frozenset())
    lan = live.Viewer(world.uid("lan"), "counsellor", 1, frozenset())
    hoa = live.Viewer(world.uid("hoa"), "counsellor", 1, frozenset())
    assert live.visible(sup, msg) and live.visible(lan, msg) and not live.visible(hoa, msg)


def test_escalation_reaches_the_supervisors_live_screen(sqlite_world):
    """Over a real server and real server-sent events: the supervisor's live stream gets the alert,
    another counsellor's does not."""
    world = sqlite_world
    from datetime import datetime, timezone

    from hotline.auth import service as auth
    from referral import service
    from tests.live.sse_helpers import SSE, LiveServer

    def cookie(name: str) -> str:
        world.uid(name)
        with session_scope() as db:
            return auth.start_session(db, user=auth.require_user(db, username=name)).cookie_value

    ref_id, _ = _create(world)
    with LiveServer() as server:
        boss, other = SSE(server.url, cookie("sup")), SSE(server.url, cookie("hoa"))
        try:
            assert boss.status == 200 and other.status == 200
            boss.next("hello"), other.next("hello")
            with session_scope() as db:
                service.escalate_due(db, now=datetime.now(timezone.utc) + timedelta(minutes=16))
            ev = boss.next("referral_alert", timeout=10)
            assert ev["data"]["alert"]["kind"] == "escalation" and ev["data"]["alert"]["referral_id"] == ref_id
            assert ev["data"]["alert"]["suggestion"]["name"] == "Ngôi nhà Bình Yên"
            assert [e for e in other.drain(0.5) if e.get("event") == "referral_alert"] == []
        finally:
            boss.close()
            other.close()
    # The live screen page carries the place the alert is shown in, and its wording.
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    with TestClient(create_app()) as c:
        world.login(c, "sup")
        page = c.get("/live")
        assert 'id="referral-alerts"' in page.text and 'id="referral-alert-labels"' in page.text
