"""The inbox over HTTP: the header's count on every signed-in page, the list, marking read (CSRF),
following a notification, and nobody seeing anyone else's."""

from __future__ import annotations

import re

import pytest

from hotline.db import session_scope
from hotline.i18n import Text
from hotline.notifications import service
from tests.live.conftest import sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _tell(user_id: int, n: int = 1, link: str = "/referrals") -> None:
    with session_scope() as db:
        for _ in range(n):
            service.notify(db, user_ids=[user_id], kind="referral.accepted", link=link,
                           title=Text("%(service)s accepted referral %(code)s.", service="Nhà tạm lánh X",
                                      code="HL-ABC123"))


def _badge(html: str) -> str | None:
    m = re.search(r'id="notif-count"( hidden)?>(\d+)<', html)
    return None if m is None or m.group(1) else m.group(2)


def test_every_signed_in_page_shows_the_count(client, staff):
    _tell(staff.ids["tvv1"], 3)
    sign_in(client, "tvv1")
    for path in ("/live", "/records", "/referrals", "/account", "/notifications"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert _badge(page.text) == "3", path
        assert 'aria-label="Thông báo: 3 chưa đọc"' in page.text
    # a partner's page too (no notifications: the badge is there, hidden, and nothing fails)
    client.cookies.clear()
    sign_in(client, "partner1")
    page = client.get("/partner")
    assert page.status_code == 200 and 'id="notif-link"' in page.text and _badge(page.text) is None
    assert client.get("/notifications").status_code == 200
    # signed out: no badge
    client.cookies.clear()
    assert 'id="notif-link"' not in client.get("/login").text


def test_the_list_marks_unread_and_links_through(client, staff):
    _tell(staff.ids["tvv1"], 2, link="/referrals")
    sign_in(client, "tvv1")
    page = client.get("/notifications")
    assert page.status_code == 200
    assert page.text.count("notif-unread") == 2
    assert "Nhà tạm lánh X đã tiếp nhận chuyển gửi HL-ABC123." in page.text
    assert "Đánh dấu đã đọc" in page.text and "Đánh dấu tất cả đã đọc" in page.text
    ids = [int(x) for x in re.findall(r'href="/notifications/(\d+)/open"', page.text)]
    assert len(ids) == 2
    r = client.get(f"/notifications/{ids[0]}/open", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/referrals"
    page = client.get("/notifications")
    assert page.text.count("notif-unread") == 1 and _badge(page.text) == "1"
    assert client.get("/notifications/count", headers={"Accept": "application/json"}).json() == {"unread": 1}


def test_marking_read_needs_the_csrf_token(client, staff):
    _tell(staff.ids["tvv1"], 2)
    token = sign_in(client, "tvv1")
    with session_scope() as db:
        first = service.list_for(db, user_id=staff.ids["tvv1"]).items[0].id
    assert client.post(f"/notifications/{first}/read", follow_redirects=False).status_code == 403
    assert client.post("/notifications/read-all", follow_redirects=False).status_code == 403
    r = client.post(f"/notifications/{first}/read?next=/notifications%3Fpage%3D1", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/notifications?page=1"
    r = client.post(f"/notifications/{first}/read?next=https://evil.example/", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.headers["location"] == "/notifications"  # only back to the list
    r = client.post("/notifications/read-all", headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert r.json() == {"changed": 1, "unread": 0}


def test_nobody_sees_or_marks_anyone_elses(client, staff):
    _tell(staff.ids["tvv2"], 1)
    with session_scope() as db:
        theirs = service.list_for(db, user_id=staff.ids["tvv2"]).items[0].id
    for who in ("tvv1", "gs1", "admin1", "partner1"):
        client.cookies.clear()
        token = sign_in(client, who)
        assert client.get(f"/notifications/{theirs}/open", follow_redirects=False).status_code == 404
        assert client.post(f"/notifications/{theirs}/read", data={"csrf_token": token},
                           follow_redirects=False).status_code == 404
        assert "HL-ABC123" not in client.get("/notifications").text
    with session_scope() as db:
        assert service.unread_count(db, user_id=staff.ids["tvv2"]) == 1


def test_english_readers_get_english(client, staff):
    _tell(staff.ids["tvv1"], 1)
    token = sign_in(client, "tvv1")
    client.post("/language", data={"lang": "en", "next": "/notifications", "csrf_token": token})
    page = client.get("/notifications")
    assert "Nhà tạm lánh X accepted referral HL-ABC123." in page.text
    assert "Mark as read" in page.text and 'aria-label="Notifications: 1 unread"' in page.text
