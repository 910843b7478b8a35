"""Notifications that last (#13 item 5), in Chromium against a real server: a partner accepts a
referral through the single-use link while the counsellor has no page open; the counsellor signs
in later, sees the count in the top bar of the live screen, opens /notifications, follows the
notification to the referral and the count drops.  A second answer arriving while the live
screen is open updates the count without a reload.  At 390×844 the badge is on screen."""

from __future__ import annotations

import re

import pytest

from hotline.db import session_scope, utcnow
from hotline.i18n import Text
from hotline.notifications import service as notifications
from tests.browser.conftest import sign_in
from tests.helpers import create_user
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser
PASSWORD = "Mat-khau-dai-du-2026!"


def _world() -> dict:
    """A counsellor, a record with consent to refer, a shelter taking referrals by e-mail, two
    referrals to it (made in the service: their deliveries are not the point here)."""
    from hotline.auth.deps import Principal
    from hotline.auth.models import User
    from hotline.calls.models import CallRecord
    from referral import service
    from referral.models import Referral
    from tests.referral.conftest import _service

    uid = create_user("tvv1", PASSWORD, "counsellor", display_name="Lan")
    create_user("gs1", PASSWORD, "supervisor")
    with session_scope() as db:
        _service(db, id="svc-binh-yen", organization_id="org-binh-yen", organization="Ngôi nhà Bình Yên",
                 name="Ngôi nhà Bình Yên", service_type="shelter", beds_total="6", beds_free="3",
                 referral_method="email", referral_email="tiepnhan@binhyen.example")
        user = db.get(User, uid)
        rec = CallRecord(centre_id=user.centre_id, counsellor_id=uid, channel="walk_in", state="draft", version=1,
                         caller_sex="female", caller_age_group="30_59", primary_issue="dv.physical", risk="high",
                         consent_referral=True, consent_referral_scope={"to": "nhà tạm lánh"},
                         consent_callback=True, callback_safe_method="sms", notes="Chồng đánh.", created_at=utcnow())
        db.add(rec)
        db.flush()
        actor = Principal(id=uid, username="tvv1", display_name="Lan", role="counsellor", centre_id=user.centre_id,
                          language="vi")
        refs = []
        for ask in ("Nhận tạm lánh tối nay", "Tư vấn pháp lý"):
            [ref] = service.create(db, record_id=rec.id, actor=actor,
                                   data={"service_ids": ["svc-binh-yen"], "urgency": "urgent", "ask": ask})
            token = service.link_url(service.link_for(db, db.get(Referral, ref.id))).rsplit("/r/", 1)[1]
            refs.append((ref.id, ref.code, token))
        return {"uid": uid, "refs": refs}


def _answer(browser, base: str, token: str, decision: str, note: str = "") -> None:
    """The partner, with no account, answers through the single-use link in their own browser."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = ctx.new_page()
        page.goto(f"{base}/r/{token}")
        if note:
            page.fill("#note", note)
        page.click(f'#respond-form button[value="{decision}"]')
        page.wait_for_load_state()
        assert page.locator("#respond-form").count() == 0, page.content()
    finally:
        ctx.close()


def _badge(page) -> str:
    badge = page.locator("#notif-count")
    return badge.inner_text() if badge.is_visible() else ""


def test_a_partners_answer_waits_for_the_counsellor(browser, live_env):
    world = _world()
    (ref1, code1, token1), (ref2, code2, token2) = world["refs"]
    with LiveServer() as server:
        base = server.url
        # the counsellor has no page open when the partner accepts
        _answer(browser, base, token1, "accepted", note="Đón lúc 20 giờ")

        tvv = browser.new_context(viewport={"width": 1366, "height": 768})
        boss = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = tvv.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            sign_in(page, base, "tvv1", PASSWORD, "/live")
            link = page.locator("#notif-link")
            assert link.is_visible() and "Thông báo" in link.inner_text()
            assert _badge(page) == "1"
            assert link.get_attribute("aria-label") == "Thông báo: 1 chưa đọc"

            # the supervisor was told too; their wallboard is open when the second answer comes
            board = boss.new_page()
            sign_in(board, base, "gs1", PASSWORD, "/live/wallboard")
            assert _badge(board) == "1"
            board.wait_for_function("document.getElementById('sse-status').textContent.length > 0")

            # a second answer while the live screen is open: the count changes without a reload
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
            _answer(browser, base, token2, "declined", note="Hết chỗ")
            page.wait_for_function("document.getElementById('notif-count').textContent === '2'", timeout=10000)
            assert link.get_attribute("aria-label") == "Thông báo: 2 chưa đọc"
            board.wait_for_function("document.getElementById('notif-count').textContent === '2'", timeout=10000)

            link.click()
            page.wait_for_url(f"{base}/notifications")
            items = page.locator(".notif-item.notif-unread")
            assert items.count() == 2
            accepted = page.locator(".notif-item", has_text=code1)
            assert accepted.locator("strong").inner_text() == f"Ngôi nhà Bình Yên đã tiếp nhận chuyển gửi {code1}."
            assert "Đón lúc 20 giờ" not in page.content()  # the partner's words stay on the referral page
            accepted.locator("a.notif-title").click()
            page.wait_for_url(f"{base}/referrals/{ref1}")
            assert _badge(page) == "1"
            assert page.locator("#notif-link").get_attribute("aria-label") == "Thông báo: 1 chưa đọc"

            # "Đánh dấu tất cả đã đọc": nothing left, the badge goes away
            page.locator("#notif-link").click()
            page.wait_for_url(f"{base}/notifications")
            assert page.locator(".notif-item.notif-read", has_text=code1).count() == 1
            page.click("#notif-read-all")
            page.wait_for_url(re.compile(r".*/notifications$"))
            assert page.locator(".notif-item.notif-unread").count() == 0
            assert _badge(page) == ""
            assert page.locator("#notif-link").get_attribute("aria-label") == "Thông báo: 0 chưa đọc"
            assert not [e for e in errors if "Content Security Policy" in e]
        finally:
            tvv.close()
            boss.close()

        # on a phone: the badge is in view at the top of the live screen
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        try:
            with session_scope() as db:
                notifications.notify(db, user_ids=[world["uid"]], kind="referral.accepted", link=f"/referrals/{ref2}",
                                     title=Text("%(service)s accepted referral %(code)s.", service="Ngôi nhà Bình Yên",
                                                code=code2))
            page = phone.new_page()
            sign_in(page, base, "tvv1", PASSWORD, "/live")
            badge = page.locator("#notif-count")
            assert badge.is_visible() and badge.inner_text() == "1"
            box = badge.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            assert box["y"] + box["height"] <= 844
            assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scrolling
        finally:
            phone.close()
