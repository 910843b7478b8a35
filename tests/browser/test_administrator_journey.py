"""The administrator's first day in Chromium through the real pages (#13, What to build 8):

- signs in with the password and a code from the authenticator app (the second factor the
  production default requires of administrators);
- users: creates a counsellor, reads out the temporary password; the counsellor signs in with it
  and is made to choose their own before anything else opens;
- directory upkeep: adds a service offered at three places (the main one and two other locations,
  the third added on the edit page), then finds it in the counsellors' search, also by the
  street and the province of another location;
- data protection: the retention periods, a legal hold on one old record; the retention run (the
  worker's daily job) removes the other old record's notes and keeps the held one's; the hold ends.

Run at 1366×768 and at 390×844 (no page wider than the phone)."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest

from tests.browser.conftest import assert_fits, sign_in
from tests.live.conftest import PASSWORD, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "mobile": {"width": 390, "height": 844}}
NEW_PASSWORD = "Hoa-sen-no-tren-dam-9"
OLD_NOTES = "Ghi chú cũ: chị kể chuyện bị đánh năm ngoái."


def _world(settings, monkeypatch) -> tuple[str, int, int]:
    """admin1 with an authenticator enrolled (its seed returned); two records from 800 days ago."""
    from hotline.auth import second_factor
    from hotline.auth.models import User
    from hotline.calls.models import CallRecord
    from hotline.db import session_scope, utcnow
    from hotline.settings import reset_settings

    monkeypatch.setenv("HOTLINE_TOTP_REQUIRED_ROLES", "supervisor,administrator")
    reset_settings()
    staff = make_staff(settings)
    old = utcnow() - timedelta(days=800)
    with session_scope() as db:
        admin = db.get(User, staff.ids["admin1"])
        seed = second_factor.new_secret(admin)
        admin.totp_enabled_at = utcnow()
        ids = []
        for _ in range(2):
            rec = CallRecord(centre_id=staff.centre_id, counsellor_id=staff.ids["tvv1"], channel="walk_in",
                             state="completed", version=2, caller_sex="female", primary_issue="dv.physical",
                             service_level=2, outcome="info_given", notes=OLD_NOTES, created_at=old,
                             completed_at=old)
            db.add(rec)
            db.flush()
            ids.append(rec.id)
    return seed, ids[0], ids[1]


def _nav(page, href: str) -> None:
    """Follow the top bar's link (on a phone the bar scrolls sideways: the link is scrolled to)."""
    link = page.locator(f'nav.topnav a[href="{href}"]')
    link.scroll_into_view_if_needed()
    link.click()
    page.wait_for_url(re.compile(rf".*{re.escape(href)}$"))


@pytest.mark.parametrize("size", ["desktop", "mobile"])
def test_administrator_first_day(browser, live_env, monkeypatch, size):
    seed, held_id, other_id = _world(live_env, monkeypatch)
    contexts = []
    errors: list[str] = []
    with LiveServer() as server:
        base = server.url

        def context():
            ctx = browser.new_context(viewport=VIEWPORTS[size], locale="vi-VN")
            contexts.append(ctx)
            page = ctx.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            return page

        try:
            # sign in: password, then the authenticator's code
            admin = context()
            admin.goto(f"{base}/login?next=/admin/users")
            admin.fill('input[name="username"]', "admin1")
            admin.fill('input[name="password"]', PASSWORD)
            admin.click('button[type="submit"].primary')
            admin.wait_for_url(f"{base}/login/second-factor*")
            assert_fits(admin)
            admin.fill('input[name="code"]', pyotp.TOTP(seed).now())
            admin.click('button[type="submit"].primary')
            admin.wait_for_url(f"{base}/admin/users")

            # users: a new counsellor with a temporary password
            assert_fits(admin)
            form = admin.locator('form[action="/admin/users"]')
            form.locator('input[name="username"]').fill("tvv_moi")
            form.locator('input[name="display_name"]').fill("Nguyễn Thị Mới")
            form.locator('select[name="role"]').select_option("counsellor")
            form.locator('select[name="centre"]').select_option(index=1)
            form.locator('button[type="submit"]').click()
            temporary = admin.locator('[data-testid="temporary-password"]').inner_text().strip()
            assert len(temporary) >= 10
            assert_fits(admin)
            admin.click('a[href="/admin/users"]')
            assert "Nguyễn Thị Mới" in admin.locator("main table").first.inner_text()

            # ... who must choose their own password at the first sign-in
            newcomer = context()
            newcomer.goto(f"{base}/login?next=/records")
            newcomer.fill('input[name="username"]', "tvv_moi")
            newcomer.fill('input[name="password"]', temporary)
            newcomer.click('button[type="submit"].primary')
            newcomer.wait_for_url(f"{base}/login/password*")
            assert_fits(newcomer)
            newcomer.goto(f"{base}/records")  # nothing opens before the new password
            newcomer.wait_for_url(re.compile(r".*/login.*"))
            newcomer.goto(f"{base}/login?next=/records")
            newcomer.fill('input[name="username"]', "tvv_moi")
            newcomer.fill('input[name="password"]', temporary)
            newcomer.click('button[type="submit"].primary')
            newcomer.wait_for_url(f"{base}/login/password*")
            newcomer.fill('input[name="new_password"]', NEW_PASSWORD)
            newcomer.fill('input[name="confirm_password"]', NEW_PASSWORD)
            newcomer.click('button[type="submit"].primary')
            newcomer.wait_for_url(f"{base}/records*")
            newcomer.context.clear_cookies()
            sign_in(newcomer, base, "tvv_moi", NEW_PASSWORD, "/records")  # the new one works, straight in
            sign_out = newcomer.locator('form[action="/logout"] button')
            assert sign_out.count() == 1

            # directory upkeep: one service, three places
            _nav(admin, "/directory/admin")
            assert_fits(admin)
            admin.click('a[href="/directory/admin/new"]')
            admin.wait_for_url(f"{base}/directory/admin/new")
            for name, value in {"id": "qn-bien-hoa", "organization_id": "org-bien-hoa",
                                "organization": "Mái ấm Biển Hòa", "name": "Mái ấm Biển Hòa",
                                "service_type": "shelter", "phones": "0255 3811 222", "hours": "24/7",
                                "languages": "vi", "beds_total": "8", "beds_free": "2", "province": "Quảng Ngãi",
                                "commune": "Nghĩa Hành", "address": "5 Lê Lợi",
                                "confidential_address": "yes"}.items():
                admin.fill(f'form.stacked [name="{name}"]', value)
            block = admin.locator("fieldset.dir-location").nth(0)
            block.locator('input[name="loc-0-name"]').fill("Điểm tiếp nhận Gia Lai")
            block.locator('input[name="loc-0-province"]').fill("Gia Lai")
            block.locator('input[name="loc-0-address"]').fill("12 Trần Hưng Đạo")
            block.locator('input[name="loc-0-phones"]').fill("0269 3822 333")
            block.locator('input[name="loc-0-hours"]').fill("T2-T6 08:00-17:00")
            assert_fits(admin)
            admin.click('form.stacked button[type="submit"]')
            admin.wait_for_selector("p.notice")
            assert "Đã lưu" in admin.locator("p.notice").inner_text()
            blocks = admin.locator("fieldset.dir-location")
            assert blocks.count() == 2  # the second place, and a blank one for another
            blocks.nth(1).locator('input[name="loc-1-name"]').fill("Điểm tư vấn Đà Nẵng")
            blocks.nth(1).locator('input[name="loc-1-province"]').fill("Đà Nẵng")
            blocks.nth(1).locator('input[name="loc-1-address"]').fill("20 Bạch Đằng")
            blocks.nth(1).locator('input[name="loc-1-phones"]').fill("0236 3833 444")
            blocks.nth(1).locator('input[name="loc-1-hours"]').fill("T7 08:00-11:00")
            admin.click('form.stacked button[type="submit"]')
            admin.wait_for_selector("p.notice")
            admin.reload()
            assert admin.locator("fieldset.dir-location").count() == 3
            assert_fits(admin)

            # ... found in the counsellors' search, also where only another location is
            _nav(admin, "/directory")
            admin.fill('main input[name="q"]', "Biển Hòa")
            admin.locator('main form button[type="submit"]').first.click()
            admin.locator('li.dir-item[data-id="qn-bien-hoa"]').wait_for()
            admin.fill('main input[name="q"]', "nhà tạm lánh Đà Nẵng")  # where only the third place is
            admin.locator('main form button[type="submit"]').first.click()
            admin.wait_for_url(re.compile(r".*q=nh%C3%A0.*"))
            found = admin.locator('li.dir-item[data-id="qn-bien-hoa"]')
            assert "dir-fallback" not in (found.get_attribute("class") or "")  # there, not "another place"
            assert "Cũng có tại: Gia Lai, Thành phố Đà Nẵng" in found.inner_text()
            assert_fits(admin)
            admin.fill('main input[name="q"]', "Bạch Đằng")  # the street of the third place only
            admin.locator('main form button[type="submit"]').first.click()
            admin.wait_for_url(re.compile(r".*q=B%E1%BA%A1ch.*"))
            admin.locator('li.dir-item[data-id="qn-bien-hoa"]').wait_for()
            admin.fill('main input[name="q"]', "nhà tạm lánh Đà Nẵng")  # where only the third place is
            admin.locator('main form button[type="submit"]').first.click()
            admin.wait_for_url(re.compile(r".*q=nh%C3%A0.*"))
            found = admin.locator('li.dir-item[data-id="qn-bien-hoa"]')
            assert "dir-fallback" not in (found.get_attribute("class") or "")  # there, not "another place"
            assert "Cũng có tại: Gia Lai, Thành phố Đà Nẵng" in found.inner_text()

            # data protection: the periods, a legal hold, the retention run, the hold ended
            _nav(admin, "/admin/retention")
            assert "730" in admin.locator("main").inner_text()
            admin.fill('input[name="record"]', str(held_id))
            admin.fill('input[name="reason"]', "Công an huyện đề nghị giữ hồ sơ (CV 12/2026)")
            admin.click('form[action="/admin/retention/holds"] button[type="submit"]')
            admin.wait_for_url(f"{base}/admin/retention?done=held")
            assert f"#{held_id}" in admin.locator("#holds").inner_text()
            assert_fits(admin)
            from hotline.cli import main

            assert main(["retention", "run"]) == 0  # what the worker runs every day
            admin.goto(f"{base}/records/{held_id}")
            assert admin.locator("#notes").input_value() == OLD_NOTES
            assert admin.locator("#retention-panel .badge").is_visible()
            admin.goto(f"{base}/records/{other_id}")
            assert admin.locator("#notes").input_value() == ""
            assert "Nội dung tự do đã được xoá" in admin.locator("#retention-panel").inner_text()
            assert_fits(admin)
            _nav(admin, "/admin/retention")
            admin.once("dialog", lambda d: d.accept())
            admin.click(f'form[action="/admin/retention/holds/{held_id}/release"] button')
            admin.wait_for_url(f"{base}/admin/retention?done=released")
            assert f"#{held_id}" not in admin.locator("#holds").inner_text()
            assert errors == [], errors
        finally:
            for ctx in contexts:
                ctx.close()
