"""#14, What to build 2, in a real browser (Chromium): a supervisor with a temporary password is made
to choose their own, then to set up the second factor (QR code drawn by the server, no outside
asset, no CSP violation), keeps the recovery codes, and signs in again with a code."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pyotp
import pytest

from hotline.auth import service as auth
from hotline.db import session_scope
from hotline.settings import reset_settings
from tests.live.conftest import make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser

NEW_PASSWORD = "Mua-xuan-tren-song-Han-7"


def _fresh_code(seed: str, after: str | None = None) -> str:
    """A code for now, waiting for the next 30-second step if ``after`` was this step's (used once)."""
    totp = pyotp.TOTP(seed)
    code = totp.now()
    while code == after:
        time.sleep(1)
        code = totp.now()
    return code


def test_forced_password_change_enrolment_and_sign_in_with_a_code(browser, live_env, monkeypatch):
    monkeypatch.setenv("HOTLINE_TOTP_REQUIRED_ROLES", "supervisor,administrator")
    reset_settings()
    make_staff(live_env)
    with session_scope() as db:  # what the administrator's "reset password" page does
        user = auth.require_user(db, username="gs1")
        auth.set_password(db, user=user, password="tam-thoi-ab12-cd34", temporary=True)
    with LiveServer() as server:
        base = server.url
        host = urlsplit(base).netloc
        ctx = browser.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=False)  # under the real CSP
        try:
            page = ctx.new_page()
            foreign: list[str] = []
            violations: list[str] = []
            page.on("request", lambda r: foreign.append(r.url)
                    if urlsplit(r.url).netloc != host and not r.url.startswith(("data:", "blob:")) else None)
            page.on("console", lambda m: violations.append(m.text)
                    if "Content Security Policy" in m.text or "Refused to" in m.text else None)

            page.goto(f"{base}/login?next=/records")
            page.fill('input[name="username"]', "gs1")
            page.fill('input[name="password"]', "tam-thoi-ab12-cd34")
            page.click('button[type="submit"].primary')
            page.wait_for_url(f"{base}/login/password*")
            # A weak choice is refused with the reason, in Vietnamese.
            page.fill('input[name="new_password"]', "aaaaaaaaaa")
            page.fill('input[name="confirm_password"]', "aaaaaaaaaa")
            page.click('button[type="submit"].primary')
            assert "quá ít ký tự khác nhau" in page.inner_text(".error")
            page.fill('input[name="new_password"]', NEW_PASSWORD)
            page.fill('input[name="confirm_password"]', NEW_PASSWORD)
            page.click('button[type="submit"].primary')

            page.wait_for_url(f"{base}/login/enrol*")
            assert page.locator("#totp-qr svg").is_visible()
            seed = page.inner_text("#totp-seed").replace(" ", "")
            first = _fresh_code(seed)
            page.fill('input[name="code"]', first)
            page.click('button[type="submit"].primary')
            codes = page.locator("#recovery-codes li").all_inner_texts()
            assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
            page.click("a.button.primary")
            page.wait_for_url(f"{base}/records*")

            # Sign out, then in again: password, then a (new) code.
            ctx.clear_cookies()
            page.goto(f"{base}/login?next=/records")
            page.fill('input[name="username"]', "gs1")
            page.fill('input[name="password"]', NEW_PASSWORD)
            page.click('button[type="submit"].primary')
            page.wait_for_url(f"{base}/login/second-factor*")
            page.fill('input[name="code"]', "000000")
            page.click('button[type="submit"].primary')
            assert "Mã không đúng" in page.inner_text(".error")
            page.fill('input[name="code"]', _fresh_code(seed, after=first))
            page.click('button[type="submit"].primary')
            page.wait_for_url(f"{base}/records*")
            assert foreign == [], f"assets from elsewhere: {foreign}"
            assert violations == [], violations
        finally:
            ctx.close()
