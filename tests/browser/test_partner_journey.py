"""The partner's first day in Chromium through the real pages (#13, What to build 8):

- by e-mail: counsellor tvv1 refers a caller from the record's referral page to a shelter that takes
  referrals by e-mail; the hotline (its in-process queue) sends the e-mail through a real SMTP
  server on 127.0.0.1 (aiosmtpd); the partner opens the link from the captured message, sees the
  minimal content (place by name, the centre's phone number) and accepts;
- by account: a second referral, to a service of partner1's organisation; partner1 signs in, sees
  the list, opens it and declines with a reason;
- the counsellor sees both answers in the inbox, on the record page and on the referral's page.

Run at 1366×768 and at 390×844 (no page wider than the phone); screenshots go to docs/screenshots/."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.browser.conftest import assert_fits, sign_in
from tests.live.conftest import PASSWORD, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "mobile": {"width": 390, "height": 844}}
CENTRE_PHONE = "0255 3822 111"
DECLINE = "Hết giường tối nay; xin gọi Nhà Bình An"


def _world(settings, monkeypatch, smtp_port: int) -> int:
    from directory import service as directory
    from hotline.calls.models import CallRecord
    from hotline.db import session_scope, utcnow
    from hotline.records import places
    from hotline.settings import reset_settings
    from referral import partners

    for k, v in {"HOTLINE_SMTP_HOST": "127.0.0.1", "HOTLINE_SMTP_PORT": str(smtp_port),
                 "HOTLINE_SMTP_STARTTLS": "false", "HOTLINE_SMTP_FROM": "hotline@ctxh.example",
                 "HOTLINE_CENTRE_PHONE": CENTRE_PHONE}.items():
        monkeypatch.setenv(k, v)
    reset_settings()
    staff = make_staff(settings)
    with session_scope() as db:
        base = {"province": "toàn quốc", "languages": "vi", "accessible": "no", "verified": "yes",
                "last_verified_at": "2026-11-01", "last_verified_by": "test", "referral_method": "email"}
        for raw in ({"id": "j-shelter", "organization_id": "org-j", "organization": "Ngôi nhà Bình Yên",
                     "name": "Ngôi nhà Bình Yên", "service_type": "shelter", "beds_total": "6", "beds_free": "3",
                     "referral_email": "tiepnhan@binhyen.example"},
                    {"id": "j-legal", "organization_id": "org-k", "organization": "Trợ giúp pháp lý Bình Minh",
                     "name": "Trợ giúp pháp lý Bình Minh", "service_type": "legal_aid",
                     "referral_email": "tiepnhan@binhminh.example"}):
            rec, _ = directory.validate({**base, **raw})
            directory.save(db, record=rec, actor="test", action="create")
        partners.link_partner(db, user_id=staff.ids["partner1"], organization_id="org-k", by="test")
        record = CallRecord(centre_id=staff.centre_id, counsellor_id=staff.ids["tvv1"], channel="walk_in",
                            state="draft", version=1, caller_sex="female", caller_age_group="30_59",
                            primary_issue="dv.physical", risk="high", consent_referral=True,
                            consent_referral_scope={"to": "nhà tạm lánh, trợ giúp pháp lý", "data": "tỉnh, xã"},
                            province_code="51", commune_code=places.resolve_commune("Nghĩa Hành", "51"),
                            notes="Chồng đánh, đang ở nhà mẹ đẻ.", created_at=utcnow())
        db.add(record)
        db.flush()
        return record.id


def _refer(page, base: str, record_id: int, query: str, service_id: str, ask: str) -> None:
    """The counsellor's referral page: search, choose, share the place, send."""
    page.goto(f"{base}/records/{record_id}/referrals/new")
    page.fill("#q", query)
    page.click("form[method=get] button")
    page.locator(f'#service-choices input[value="{service_id}"]').check()
    page.fill("#ask", ask)
    page.check('input[name="extras"][value="province"]')
    assert_fits(page)
    page.click("#send-btn")
    page.wait_for_url(re.compile(rf".*/records/{record_id}#referrals$"))


def _mail_to(smtp, address: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in smtp.messages:
            if address in m["to"]:
                return m["message"]
        time.sleep(0.1)
    raise AssertionError(f"no e-mail to {address}: {[m['to'] for m in smtp.messages]}")


@pytest.mark.parametrize("size", ["desktop", "mobile"])
def test_partner_first_day(browser, live_env, monkeypatch, size):
    from hotline.settings import reset_settings
    from tests.referral.peers import SMTPSink

    smtp = SMTPSink().start()
    record_id = _world(live_env, monkeypatch, smtp.port)
    suffix = "" if size == "desktop" else "-mobile"
    SHOTS.mkdir(parents=True, exist_ok=True)
    server = LiveServer()
    monkeypatch.setenv("HOTLINE_PUBLIC_BASE_URL", server.url)  # the links in the e-mails lead to this server
    reset_settings()
    errors: list[str] = []
    contexts = []
    try:
        with server:
            base = server.url

            def context():
                ctx = browser.new_context(viewport=VIEWPORTS[size], locale="vi-VN")
                contexts.append(ctx)
                page = ctx.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                return page

            counsellor = context()
            sign_in(counsellor, base, "tvv1", PASSWORD, f"/records/{record_id}")
            _refer(counsellor, base, record_id, "Bình Yên", "j-shelter", "Cần chỗ ở an toàn tối nay cho một phụ nữ.")

            # 1. by e-mail: the message the SMTP server received carries the single-use link
            mail = _mail_to(smtp, "tiepnhan@binhyen.example")
            text = mail.get_body(preferencelist=("plain",)).get_content()
            assert "Xã Nghĩa Hành, Quảng Ngãi" in text and "Chồng đánh" not in text  # minimal: no notes
            link = re.search(r"(http://\S+/r/\S+)", text).group(1)
            assert link.startswith(base)
            partner = context()
            partner.goto(link)
            content = partner.locator("#referral-content")
            assert "Cần chỗ ở an toàn tối nay" in content.inner_text()
            assert partner.locator("#ref-place").inner_text().endswith("Xã Nghĩa Hành, Quảng Ngãi")
            assert CENTRE_PHONE in partner.locator("#centre-phone").inner_text()
            assert "Chồng đánh" not in partner.content()  # the notes were not shared
            assert_fits(partner)
            partner.screenshot(path=str(SHOTS / f"partner-referral{suffix}.png"))
            partner.click('#respond-form button[value="accepted"]')
            partner.locator("#answered").wait_for()
            assert "Đã tiếp nhận" in partner.locator("#answered").inner_text()
            assert_fits(partner)
            partner.goto(link)  # single use
            assert partner.locator("#respond-form").count() == 0

            # 2. by account: a second referral, to partner1's organisation
            _refer(counsellor, base, record_id, "Bình Minh", "j-legal", "Tư vấn pháp lý về ly hôn và quyền nuôi con.")
            _mail_to(smtp, "tiepnhan@binhminh.example")
            account = context()
            sign_in(account, base, "partner1", PASSWORD, "/partner")
            assert account.locator("#notif-count").inner_text() == "1"  # told of the new referral
            rows = account.locator("#partner-referrals tbody tr")
            assert rows.count() == 1 and "Trợ giúp pháp lý Bình Minh" in rows.inner_text()
            assert_fits(account)
            rows.locator("a").click()
            account.wait_for_url(re.compile(r".*/partner/referrals/\w+$"))
            assert "Tư vấn pháp lý về ly hôn" in account.locator("#referral-content").inner_text()
            assert CENTRE_PHONE in account.locator("#centre-phone").inner_text()
            account.click('#respond-form button[value="declined"]')  # a decline needs a reason
            assert account.locator(".field-error").is_visible()
            account.fill("#note", DECLINE)
            account.click('#respond-form button[value="declined"]')
            account.wait_for_url(re.compile(r".*/partner/referrals/\w+$"))
            assert account.locator("#ref-state").inner_text() == "Bị từ chối"
            assert DECLINE in account.inner_text("#referral-content")
            assert account.locator("#respond-form").count() == 0
            assert_fits(account)

            # 3. the counsellor sees both answers: in the inbox (kept, the screen was not open), on
            #    the record page and on the referral's page
            counsellor.goto(f"{base}/records/{record_id}")
            assert counsellor.locator("#notif-count").inner_text() == "2"
            table = counsellor.locator("#referrals-table")
            states = {r.get_attribute("data-state") for r in table.locator("tbody tr").all()}
            assert states == {"accepted", "declined"}, states
            assert DECLINE in table.locator('tr[data-state="declined"]').inner_text()
            assert_fits(counsellor)
            table.locator('tr[data-state="accepted"] a').click()
            counsellor.wait_for_url(re.compile(r".*/referrals/\d+$"))
            assert "Ngôi nhà Bình Yên" in counsellor.inner_text("main")
            assert counsellor.locator("#ref-state").inner_text() == "Đã tiếp nhận"
            assert_fits(counsellor)
            assert errors == [], errors
    finally:
        for ctx in contexts:
            ctx.close()
        smtp.stop()
