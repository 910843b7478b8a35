"""Partners' answers, escalations and failed deliveries are kept in the inbox (#13 item 5) of the
counsellor who made the referral and of the centre's supervisors, whether or not a screen was open."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import select

from hotline.db import session_scope


def _make(world, service_id="t-shelter-b", urgency="urgent"):
    from hotline.auth.deps import Principal
    from referral import service

    p = Principal(id=world.uid("lan"), username="lan", display_name="", role="counsellor", centre_id=1, language="vi")
    with session_scope() as db:
        [ref] = service.create(db, record_id=world.record_id, actor=p,
                               data={"service_ids": [service_id], "urgency": urgency, "ask": "Nhận tạm lánh"})
        return ref.id, ref.public_id, ref.code


def _inbox(user_id: int, lang: str = "vi") -> list[tuple[str, str, str | None]]:
    from hotline.notifications import service
    from hotline.notifications.models import Notification

    with session_scope() as db:
        rows = db.scalars(select(Notification).where(Notification.user_id == user_id).order_by(Notification.id))
        return [(n.kind, service.title_of(n).translate(lang), n.link) for n in rows]


def test_a_partners_answer_reaches_the_counsellor_and_supervisors(world, app_client):
    from hotline.cli import main

    lan, sup, hoa, far = world.uid("lan"), world.uid("sup"), world.uid("hoa"), world.uid("far")
    ref_id, public_id, code = _make(world)
    world.uid("pb")
    assert main(["referral", "partner", "link", "pb", "org-b"]) == 0
    token = world.login(app_client, "pb")
    app_client.get(f"/partner/referrals/{public_id}")  # opening it tells nobody
    assert _inbox(lan) == []
    r = app_client.post(f"/partner/referrals/{public_id}", data={"csrf_token": token, "decision": "accepted",
                                                                 "note": "Đón lúc 20 giờ"}, follow_redirects=False)
    assert r.status_code == 303
    want = ("referral.accepted", f"Ngôi nhà Bình Yên đã tiếp nhận chuyển gửi {code}.", f"/referrals/{ref_id}")
    assert _inbox(lan) == [want] and _inbox(sup) == [want]
    assert _inbox(lan, "en") == [(want[0], f"Ngôi nhà Bình Yên accepted referral {code}.", want[2])]
    assert _inbox(hoa) == [] and _inbox(far) == []  # another counsellor; another centre's supervisor
    assert "Đón lúc 20 giờ" not in str(_inbox(lan))  # the partner's note stays on the referral's page


def test_a_decline_through_the_single_use_link_is_kept(world, app_client):
    from referral import service
    from referral.models import Referral
    from tests.helpers import csrf_from

    lan = world.uid("lan")
    ref_id, _public, code = _make(world)
    with session_scope() as db:
        token = service.link_url(service.link_for(db, db.get(Referral, ref_id))).rsplit("/r/", 1)[1]
    app_client.base_url = app_client.base_url.copy_with(scheme="https")  # the public URL is https
    page = app_client.get(f"/r/{token}")
    assert page.status_code == 200
    r = app_client.post(f"/r/{token}", data={"csrf_token": csrf_from(page.text), "decision": "declined",
                                             "note": "Hết giường"}, follow_redirects=False)
    assert r.status_code in (200, 303), r.text
    assert _inbox(lan) == [("referral.declined", f"Ngôi nhà Bình Yên đã từ chối chuyển gửi {code}.",
                            f"/referrals/{ref_id}")]


def test_an_escalation_is_kept_for_the_supervisors(world):
    from referral import jobs

    sup, lan = world.uid("sup"), world.uid("lan")
    ref_id, _public, code = _make(world, service_id="t-shelter-a", urgency="emergency")
    with freeze_time(timedelta(minutes=16)):
        assert jobs.sweep()["escalated"] == 1
        assert jobs.sweep()["escalated"] == 0
    [(kind, title, link)] = _inbox(sup)
    assert kind == "escalation.referral" and link == f"/referrals/{ref_id}"
    assert title.startswith(f"Chuyển gửi khẩn cấp {code} tới Nhà tạm lánh Bình An: chưa có trả lời sau ")
    assert [k for k, _t, _l in _inbox(lan)] == ["escalation.referral"]


def test_a_dead_delivery_is_kept(fast_retries):
    from tests.referral.peers import wait_for
    from tests.referral.test_delivery import _create

    world = fast_retries
    world.receiver.fail_next = 100
    lan, sup = world.uid("lan"), world.uid("sup")
    [(ref_id, _delivery)] = _create(world, "t-shelter-a")
    with session_scope() as db:
        from referral.models import Referral

        code = db.get(Referral, ref_id).code
    wait_for(lambda: _inbox(lan), timeout=15)
    [(kind, title, link)] = _inbox(lan)
    assert kind == "referral.failed" and link == f"/referrals/{ref_id}" and code in title
    assert "503" not in title  # never the technical reason
    assert [k for k, _t, _l in _inbox(sup)] == ["referral.failed"]


def test_the_partners_accounts_find_a_new_referral_in_their_inbox(world, app_client):
    from hotline.cli import main

    pb, pa = world.uid("pb"), world.uid("pa")
    assert main(["referral", "partner", "link", "pb", "org-b"]) == 0
    assert main(["referral", "partner", "link", "pa", "org-a"]) == 0
    ref_id, public_id, code = _make(world)
    assert _inbox(pb) == [("referral.new", f"Chuyển gửi mới {code} tới Ngôi nhà Bình Yên: hãy mở để nhận hoặc từ chối.",
                           f"/partner/referrals/{public_id}")]
    assert _inbox(pa) == []  # another organisation's account
    world.login(app_client, "pb")
    page = app_client.get("/notifications")
    assert page.status_code == 200 and code in page.text and 'id="notif-count">1<' in page.text
    from hotline.notifications.models import Notification

    with session_scope() as db:
        nid = db.scalar(select(Notification.id).where(Notification.user_id == pb))
    r = app_client.get(f"/notifications/{nid}/open", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/partner/referrals/{public_id}"
    assert app_client.get(r.headers["location"]).status_code == 200
    assert 'id="notif-count" hidden>0<' in app_client.get("/partner").text
