"""The counsellor's first day, whole, in Chromium through the real pages: sign in → a call pops
(signed Twilio webhooks into the real ingest) → it is answered and the live screen becomes its
workspace → the record (place pickers, imminent-risk prompt) → the directory and legal panels →
a referral with consent to a service that takes referrals by e-mail → complete → back to live.
Run at 1366×768 and at 390×844; the screenshots go to docs/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import pytest

from tests.browser.conftest import sign_in
from tests.live.conftest import PASSWORD, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "mobile": {"width": 390, "height": 844}}


def _world(settings, monkeypatch, smtp_port: int):
    from directory import service as directory
    from hotline.centres import service as centres
    from hotline.db import session_scope
    from hotline.settings import reset_settings
    from legal_library.service import seed as seed_legal
    from tests.twilio.conftest import LINE

    for k, v in {"HOTLINE_SMTP_HOST": "127.0.0.1", "HOTLINE_SMTP_PORT": str(smtp_port),
                 "HOTLINE_SMTP_STARTTLS": "false", "HOTLINE_SMTP_FROM": "hotline@ctxh.example"}.items():
        monkeypatch.setenv(k, v)
    reset_settings()
    staff = make_staff(settings)
    with session_scope() as db:
        centre = centres.get_centre(db, settings.default_centre_code)
        centres.add_line(db, centre=centre, provider="twilio", kind="number", identifier=LINE, label="Tổng đài 1800")
        centres.map_agent(db, centre=centre, provider="twilio", identity="client:tvv1", user_id=staff.ids["tvv1"])
        base = {"province": "toàn quốc", "languages": "vi", "accessible": "no", "verified": "yes",
                "last_verified_at": "2026-11-01", "last_verified_by": "test"}
        for raw in ({"id": "j-shelter", "organization_id": "org-j", "organization": "Ngôi nhà Bình Yên",
                     "name": "Ngôi nhà Bình Yên", "service_type": "shelter", "beds_total": "6", "beds_free": "3",
                     "referral_method": "email", "referral_email": "tiepnhan@binhyen.example",
                     "phones": "0912 345 678"},
                    {"id": "j-police", "organization_id": "org-p", "organization": "Công an xã Bình Yên",
                     "name": "Công an xã Bình Yên", "service_type": "police"}):
            rec, _ = directory.validate({**base, **raw})
            directory.save(db, record=rec, actor="test", action="create")
    with session_scope() as db:
        seed_legal(db)
    return staff


def _twilio_call(base_url: str, call_sid: str) -> None:
    """Twilio's real requests, signed: the call rings in the queue, then counsellor tvv1 takes it."""
    import httpx

    from tests.twilio.conftest import base_params, sign

    agent_sid = "CA" + call_sid[-1] * 32

    def post(client: httpx.Client, path: str, params: dict[str, str]) -> ElementTree.Element:
        r = client.post(path, content=urlencode(params), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sign(path, params)})
        assert r.status_code == 200, r.text
        return ElementTree.fromstring(r.text)

    with httpx.Client(base_url=base_url) as tw:
        post(tw, "/webhooks/twilio/voice", base_params(CallSid=call_sid, CallStatus="ringing"))
        agent = post(tw, "/webhooks/twilio/agent", {"CallSid": agent_sid, "From": "client:tvv1",
                                                    "Caller": "client:tvv1", "To": ""})
        url = urlsplit(agent.find("Dial/Queue").get("url"))
        post(tw, url.path + (f"?{url.query}" if url.query else ""),
             base_params(CallSid=call_sid, CallStatus="in-progress", QueueSid="QU" + "9" * 32, QueueTime="7",
                         DequeingCallSid=agent_sid))


@pytest.mark.parametrize("size", ["desktop", "mobile"])
def test_counsellor_first_day(browser, live_env, monkeypatch, size):
    from tests.referral.peers import SMTPSink

    smtp = SMTPSink().start()
    _world(live_env, monkeypatch, smtp.port)
    SHOTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if size == "desktop" else "-mobile"
    with LiveServer() as server:
        base = server.url
        ctx = browser.new_context(viewport=VIEWPORTS[size], locale="vi-VN")
        errors: list[str] = []
        try:
            page = ctx.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            sign_in(page, base, "tvv1", PASSWORD, "/live")
            page.wait_for_function("document.getElementById('sse-status').textContent.length > 0")
            assert page.locator("#no-call").is_visible()
            assert page.locator("#presence-now").inner_text() == "Vắng mặt"

            # the call rings, then this counsellor answers: the live screen becomes its workspace
            _twilio_call(base, "CA" + ("7" if size == "desktop" else "8") * 32)
            card = page.locator("#call-card")
            card.wait_for(timeout=15000)
            assert card.locator("#cc-caller").inner_text() == "0912 *** 678"
            assert card.locator("#cc-line").inner_text() == "Tổng đài 1800"
            page.wait_for_function("document.getElementById('cc-talk').textContent !== '—'")
            assert re.fullmatch(r"\d+:\d\d", card.locator("#cc-talk").inner_text())
            page.wait_for_function("document.getElementById('presence-now').textContent === 'Đang bận'")
            assert page.locator("#record-form").is_visible()
            # the form is below the call, the panels beside it (below it on a phone)
            form_box = page.locator("#record-form").bounding_box()
            card_box = card.bounding_box()
            panel_box = page.locator("#directory-panel").bounding_box()
            assert form_box and card_box and panel_box and form_box["y"] > card_box["y"]
            if size == "desktop":
                assert panel_box["x"] > form_box["x"] + form_box["width"] - 5 and panel_box["y"] < 400
            page.screenshot(path=str(SHOTS / f"live-screen{suffix}.png"))

            # the record: who called, where (pickers: old name found, diacritics ignored), what happened
            page.select_option('select[name="caller_role"]', "survivor")
            page.select_option('select[name="caller_sex"]', "female")
            page.select_option('select[name="caller_age_group"]', "30_59")
            province = page.locator("#pick-province_code")
            province.click()
            province.fill("kon tum")
            page.wait_for_function("(document.querySelector('#list-province_code li') || {}).textContent"
                                   " === 'Kon Tum → Quảng Ngãi'")
            province.press("Enter")
            assert province.input_value() == "Quảng Ngãi"
            assert page.locator('input[name="province_code"]').input_value() == "51"
            commune = page.locator("#pick-commune_code")
            commune.click()
            commune.fill("nghia hanh")  # "Nghĩa Hành" without its marks
            page.wait_for_function("(document.querySelector('#list-commune_code li') || {}).textContent"
                                   " === 'Xã Nghĩa Hành'")
            commune.press("Enter")
            assert commune.input_value() == "Xã Nghĩa Hành"
            page.locator("details", has=page.locator('input[value="dv.physical"]')).locator("summary").click()
            page.check('input[name="issues"][value="dv.physical"]')
            page.check('input[name="primary_issue"][value="dv.physical"]')
            # imminent risk: a prompt with the emergency steps, and the call highlighted
            page.select_option('select[name="risk"]', "imminent")
            dialog = page.locator("#risk-dialog")
            dialog.wait_for(state="visible")
            assert "113" in dialog.inner_text()
            page.click("#risk-dialog-ok")
            assert page.locator("#risk-banner").is_visible()
            assert "risk-imminent" in (card.get_attribute("class") or "")
            page.check('input[name="consent_record"]')
            page.check('input[name="consent_referral"]')
            page.fill('input[name="referral_to"]', "nhà tạm lánh")
            notes = page.locator("#notes")
            page.keyboard.press("Alt+g")  # the notes, the same key on every page
            assert page.evaluate("document.activeElement.id") == "notes"
            notes.type("Chị bị chồng đánh, đang ở nhà hàng xóm. Cần chỗ ở an toàn tối nay.")
            # the save state stays in sight while typing
            status = page.locator("#save-status")
            page.wait_for_function("(document.body.dataset.savedVersion || '0') > '1'")
            assert status.is_visible() and status.inner_text().startswith("Đã lưu")
            assert page.evaluate("(() => { const r = document.getElementById('save-status').getBoundingClientRect();"
                                 " return r.top >= 0 && r.bottom <= window.innerHeight; })()")

            # the directory panel: Alt+D, search, give the address to the caller
            page.keyboard.press("Alt+d")
            page.keyboard.type("Bình Yên")
            page.keyboard.press("Enter")
            give = page.locator('#directory-panel button[data-ref-id="j-shelter"]')
            give.wait_for()
            give.click()
            page.locator("#directory-panel button[data-ref-id].done").wait_for()
            # the legal panel: Alt+L, search, give an article
            page.keyboard.press("Alt+l")
            page.keyboard.type("bạo lực gia đình")
            page.keyboard.press("Enter")
            article = page.locator("#legal-panel button[data-ref-id]").first
            article.wait_for()
            article.click()
            page.locator("#legal-panel button[data-ref-id].done").first.wait_for()

            # the record page: this call's number (masked), status and talk time; the strip never moves it
            record_url = page.locator("#record-form").get_attribute("action")
            page.keyboard.press("Alt+r")  # YOUR call's record
            page.wait_for_url(re.compile(r".*/records/\d+$"))
            assert urlsplit(page.url).path == record_url
            assert page.locator("#cc-caller").inner_text() == "0912 *** 678"
            assert page.locator("#cc-status").inner_text()
            assert page.locator("#references").inner_text().count("\n") >= 1
            page.screenshot(path=str(SHOTS / f"record{suffix}.png"), full_page=False)

            # a referral with consent to the service that takes referrals by e-mail
            page.click("#referrals a.button")
            page.wait_for_url(re.compile(r".*/referrals/new$"))
            page.fill("#q", "Bình Yên")
            page.click("form[method=get] button")
            choice = page.locator('#service-choices input[value="j-shelter"]')
            choice.wait_for()
            assert choice.is_enabled()  # takes referrals by e-mail: selectable
            assert page.locator('#service-choices input[value="j-police"]').is_disabled()
            choice.check()
            page.fill("#ask", "Cần chỗ ở an toàn tối nay cho một phụ nữ.")
            page.click("#send-btn")
            page.wait_for_url(re.compile(r".*/records/\d+#referrals$"))  # back on the record, the referral listed
            assert urlsplit(page.url).path == record_url
            assert "Ngôi nhà Bình Yên" in page.locator("#referrals-table").inner_text()

            # the last fields, complete: back on the live screen
            page.select_option('select[name="service_level"]', "3")
            page.select_option('select[name="outcome"]', "referred")
            page.wait_for_function("(document.body.dataset.savedVersion || '0') > '1'")
            page.keyboard.press("Control+Enter")
            page.wait_for_url(re.compile(r".*/live\?completed=\d+$"), timeout=15000)
            assert page.locator("#no-call").is_visible()
            assert "Đã hoàn tất hồ sơ" in page.locator(".notice").inner_text()
            assert errors == [], errors
        finally:
            ctx.close()
            smtp.stop()
