"""Second factor (RFC 6238 TOTP) and passwords, through the real pages (#14 "What to build" 2, finding 9):
required for supervisors and administrators, optional for counsellors, recovery codes that work
once, an audited administrator reset; common passwords and passwords built from the user or the
centre's name refused."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pyotp
import pytest
from freezegun import freeze_time
from sqlalchemy import select

from hotline.audit.models import AuditEntry
from hotline.auth import service
from hotline.db import session_scope
from hotline.settings import get_settings, reset_settings
from tests.auth.conftest import PASSWORD
from tests.helpers import create_user, csrf_from, login

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def required(env, monkeypatch):
    """The production default: supervisors and administrators need a second factor."""
    monkeypatch.delenv("HOTLINE_TOTP_REQUIRED_ROLES")
    reset_settings()
    assert get_settings().totp_required_roles == "supervisor,administrator"
    return get_settings()


def _password_step(client, username: str, password: str = PASSWORD, next_url: str = "/account"):
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "next": next_url,
                                       "csrf_token": csrf_from(page.text)}, follow_redirects=False)


def _seed_from(html: str) -> str:
    return re.search(r'id="totp-seed">([^<]+)<', html).group(1).replace(" ", "")


def _enrol(client, frozen) -> tuple[str, list[str]]:
    page = client.get("/login/enrol")
    assert page.status_code == 200 and "<svg" in page.text and "<script" not in page.text.split("<svg")[1].split("</svg>")[0]
    seed = _seed_from(page.text)
    wrong = client.post("/login/enrol", data={"csrf_token": csrf_from(page.text), "code": "000000", "next": "/account"})
    assert wrong.status_code == 400 and _seed_from(wrong.text) == seed  # the same seed stays while enrolling
    done = client.post("/login/enrol", data={"csrf_token": csrf_from(page.text), "code": pyotp.TOTP(seed).now(),
                                             "next": "/account"})
    assert done.status_code == 200
    codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", done.text)
    assert len(codes) == 10 and 'href="/account"' in done.text
    return seed, codes


def test_supervisor_must_enrol_then_signs_in_with_a_code_or_a_recovery_code(browser, required):
    create_user("sup", PASSWORD, "supervisor")
    with freeze_time(T0) as frozen:
        r = _password_step(browser, "sup")
        assert r.status_code == 303 and r.headers["location"].startswith("/login/enrol")
        # Half signed in: no page, no API, until the second factor is set up.
        assert browser.get("/account", follow_redirects=False).headers["location"] == "/login/enrol"
        assert browser.get("/records", headers={"Accept": "application/json"}).status_code == 401
        seed, codes = _enrol(browser, frozen)
        assert browser.get("/account").status_code == 200

        token = csrf_from(browser.get("/account").text)
        browser.post("/logout", data={"csrf_token": token})
        frozen.tick(timedelta(seconds=31))
        r = _password_step(browser, "sup")
        assert r.headers["location"].startswith("/login/second-factor")
        page = browser.get("/login/second-factor")
        bad = browser.post("/login/second-factor", data={"csrf_token": csrf_from(page.text), "code": "123456"})
        assert bad.status_code == 401 and "Mã không đúng" in bad.text
        code = pyotp.TOTP(seed).now()
        ok = browser.post("/login/second-factor", data={"csrf_token": csrf_from(page.text), "code": code,
                                                        "next": "/account"}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/account"
        assert browser.get("/account").status_code == 200

        # The same code cannot be used twice (replay), a recovery code works once.
        token = csrf_from(browser.get("/account").text)
        browser.post("/logout", data={"csrf_token": token})
        _password_step(browser, "sup")
        page = browser.get("/login/second-factor")
        again = browser.post("/login/second-factor", data={"csrf_token": csrf_from(page.text), "code": code})
        assert again.status_code == 401
        rec = browser.post("/login/second-factor", data={"csrf_token": csrf_from(page.text), "code": codes[0].upper()},
                           follow_redirects=False)
        assert rec.status_code == 303
        token = csrf_from(browser.get("/account").text)
        browser.post("/logout", data={"csrf_token": token})
        _password_step(browser, "sup")
        page = browser.get("/login/second-factor")
        assert browser.post("/login/second-factor", data={"csrf_token": csrf_from(page.text),
                                                          "code": codes[0]}).status_code == 401
    with session_scope() as db:
        actions = list(db.scalars(select(AuditEntry.action)))
    assert {"second_factor.enrol", "login.second_factor_totp", "login.second_factor_recovery",
            "login.second_factor_failed"} <= set(actions)


def test_wrong_codes_slow_the_address_down(browser, required):
    create_user("sup", PASSWORD, "supervisor")
    with freeze_time(T0) as frozen:
        _password_step(browser, "sup")
        _enrol(browser, frozen)
        browser.post("/logout", data={"csrf_token": csrf_from(browser.get("/account").text)})
        _password_step(browser, "sup")
        page = browser.get("/login/second-factor")
        statuses = [browser.post("/login/second-factor", data={"csrf_token": csrf_from(page.text), "code": "000000"})
                    .status_code for _ in range(5)]
        assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]


def test_counsellors_may_enrol_and_an_administrator_reset_is_audited(browser, second_browser, required):
    create_user("lan", PASSWORD, "counsellor")
    create_user("boss", PASSWORD, "administrator")
    with freeze_time(T0) as frozen:
        r = _password_step(browser, "lan")
        assert r.status_code == 303 and r.headers["location"] == "/account"  # optional for counsellors
        page = browser.get("/account/second-factor")
        seed = _seed_from(page.text)
        done = browser.post("/account/second-factor", data={"csrf_token": csrf_from(page.text),
                                                            "code": pyotp.TOTP(seed).now()})
        assert done.status_code == 200 and len(re.findall(r"<li>[a-z2-9]{5}-[a-z2-9]{5}</li>", done.text)) == 10
        assert "Còn 10 mã khôi phục" in browser.get("/account/second-factor").text

        # The administrator (who enrols first, being required to) resets lan's second factor.
        _password_step(second_browser, "boss")
        _enrol(second_browser, frozen)
        users = second_browser.get("/admin/users").text
        lan_id = re.search(r'<td class="mono">lan</td>.*?/admin/users/(\d+)/reset-2fa', users, re.S).group(1)
        r = second_browser.post(f"/admin/users/{lan_id}/reset-2fa", data={"csrf_token": csrf_from(users)})
        assert r.status_code == 200 and "lan" in r.text
    with session_scope() as db:
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "user.second_factor_reset"))
        assert entry is not None and entry.object_id == lan_id and entry.actor_username == "boss"
        user = service.get_user(db, username="lan")
        assert user.totp_secret is None and user.recovery_codes is None
    assert browser.get("/account", follow_redirects=False).status_code == 303  # signed out everywhere


def test_the_session_is_rotated_when_the_second_factor_passes(browser, second_browser, required):
    """ASVS 3.2.1: the cookie given after the password step opens nothing but the second-factor
    step, and is worthless once that step passes (a new cookie and CSRF token take over)."""
    create_user("sup", PASSWORD, "supervisor")
    with freeze_time(T0) as frozen:
        _password_step(browser, "sup")
        enrol_cookie = browser.cookies["hotline_session"]
        _seed, _codes = _enrol(browser, frozen)
        signed_in = browser.cookies["hotline_session"]
        assert signed_in != enrol_cookie  # enrolment passed: rotated too
        browser.post("/logout", data={"csrf_token": csrf_from(browser.get("/account").text)})
        frozen.tick(timedelta(seconds=31))

        _password_step(browser, "sup")
        half = browser.cookies["hotline_session"]
        page = browser.get("/login/second-factor")
        half_token = csrf_from(page.text)

        def as_half(method: str, url: str, **kwargs):
            return second_browser.request(method, url, headers={"Cookie": f"hotline_session={half}",
                                                                **kwargs.pop("headers", {})},
                                          follow_redirects=False, **kwargs)

        # Before the second factor: only the second-factor step answers.
        assert as_half("GET", "/account").headers["location"] == "/login/second-factor"
        assert as_half("GET", "/live", headers={"Accept": "application/json"}).status_code == 401
        assert as_half("GET", "/api/calls").status_code == 401
        assert as_half("POST", "/account/password", data={"csrf_token": half_token, "current_password": PASSWORD,
                                                          "new_password": "x" * 12,
                                                          "confirm_password": "x" * 12}).status_code == 303
        assert as_half("GET", "/login/enrol").headers["location"] == "/login"  # not this stage

        ok = browser.post("/login/second-factor", data={"csrf_token": half_token, "next": "/account",
                                                        "code": pyotp.TOTP(_seed).now()}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/account"
        fresh = browser.cookies["hotline_session"]
        assert fresh != half and "hotline_session=" in ok.headers["set-cookie"]
        account = browser.get("/account")
        assert account.status_code == 200 and csrf_from(account.text) != half_token

        # The half-signed-in cookie is gone: neither a page nor the second-factor step accepts it.
        assert as_half("GET", "/account").headers["location"].startswith("/login?next=")
        assert as_half("GET", "/login/second-factor").headers["location"] == "/login"
        assert as_half("POST", "/login/second-factor", data={"csrf_token": half_token, "code": "000000"}
                       ).status_code in (303, 403)
    with session_scope() as db:
        user = service.get_user(db, username="sup")
        assert service.count_sessions(db, user_id=user.id) == 1  # the rotated-out rows are deleted


@pytest.mark.parametrize("password, why", [
    ("aaaaaaaaaa", "ít ký tự khác nhau"),
    ("password123", "phổ biến nhất"),
    ("qwertyuiop", "phổ biến nhất"),
    ("1qaz2wsx3edc", "phổ biến nhất"),
    ("lanlan-2026!", "tên đăng nhập"),
    ("TrungTam-2026", "tên trung tâm"),
    ("congtacxahoi99", "tên trung tâm"),
])
def test_weak_passwords_are_refused_with_the_reason(browser, env, password, why):
    create_user("lan", PASSWORD, "counsellor")
    token = login(browser, "lan", PASSWORD)
    r = browser.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                "new_password": password, "confirm_password": password})
    assert r.status_code == 400 and why in r.text, (password, r.text[-2000:])


def test_the_common_password_list_ships_with_its_licence():
    from hotline.auth import passwords

    common = passwords.common_passwords()
    assert len(common) >= 95_000  # 100,000 lines, fewer once case is folded and "123456" in common and "aaaaaaaaaa" in common
    licence = passwords.COMMON_FILE.with_name("common-passwords.LICENSE.txt").read_text()
    assert "MIT License" in licence and "SecLists" in licence




def test_cli_resets_a_second_factor_and_sets_temporary_passwords(env, monkeypatch, capsys):
    import io
    import sys

    from hotline.cli import main

    create_user("boss", PASSWORD, "administrator")
    with session_scope() as db:
        from hotline.auth import second_factor

        user = service.get_user(db, username="boss")
        second_factor.new_secret(user)
        assert second_factor.confirm(user, pyotp.TOTP(second_factor._seed(user)).now())
    assert main(["user", "reset-2fa", "boss"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("Tam-thoi-mot-lan-42\n"))
    assert main(["user", "reset-password", "boss", "--password-stdin", "--temporary"]) == 0
    with session_scope() as db:
        user = service.get_user(db, username="boss")
        assert user.totp_secret is None and user.must_change_password
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == "user.second_factor_reset")).actor_username == "cli"
