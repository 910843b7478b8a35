"""Sign-in, sign-out, throttling and session expiry, through the real pages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from freezegun import freeze_time

from tests.auth.conftest import PASSWORD
from tests.helpers import create_user, csrf_from, login


def _post_login(browser, username: str, password: str, next_url: str = "/"):
    page = browser.get("/login")
    return browser.post("/login", data={"username": username, "password": password, "next": next_url,
                                        "csrf_token": csrf_from(page.text)}, follow_redirects=False)


def test_anonymous_home_goes_to_login_and_pages_need_sign_in(browser) -> None:
    r = browser.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = browser.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Faccount"
    r = browser.get("/account", headers={"accept": "application/json"}, follow_redirects=False)
    assert r.status_code == 401


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    r = _post_login(browser, "Lan ", PASSWORD, next_url="/account")
    assert r.status_code == 303 and r.headers["location"] == "/account"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("hotline_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    assert browser.get("/", follow_redirects=False).headers["location"] == "/live"
    old = browser.cookies.get("hotline_session")

    token = csrf_from(browser.get("/account").text)
    r = browser.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert browser.get("/", follow_redirects=False).headers["location"] == "/login"
    # the old cookie value is dead on the server, not just forgotten by the browser
    browser.cookies.set("hotline_session", old, domain="testserver.local")
    assert browser.get("/account", follow_redirects=False).status_code == 303


def test_next_cannot_send_the_user_off_site(browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    r = _post_login(browser, "lan", PASSWORD, next_url="//evil.example/x")
    assert r.headers["location"] == "/"


def test_wrong_password_is_refused_with_a_clear_message(browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    r = _post_login(browser, "lan", "wrong password!")
    assert r.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu." in r.text
    assert 'value="lan"' in r.text  # the user name typed is kept
    r = _post_login(browser, "nobody", "whatever-password")
    assert r.status_code == 401
    assert browser.get("/", follow_redirects=False).headers["location"] == "/login"


def _elsewhere(browser):
    """The same application seen from another address."""
    from fastapi.testclient import TestClient

    return TestClient(browser.app, base_url="https://testserver.local", client=("203.0.113.9", 40000))


def test_failures_slow_down_the_account_from_that_address_only(browser) -> None:
    """#14 finding 6: wrong passwords from one address make that address wait, doubling each time
    (never a hard lock): the same account still signs in from another address."""
    create_user("lan", PASSWORD, "counsellor")
    start = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    with freeze_time(start) as frozen:
        for _ in range(3):  # three free failures
            assert _post_login(browser, "lan", "wrong password!").status_code == 401
        r = _post_login(browser, "lan", "wrong password!")
        assert r.status_code == 429 and "Chờ 1 giây" in r.text  # the fourth: a first wait
        r = _post_login(browser, "lan", PASSWORD)
        assert r.status_code == 429, "while it waits, the address is refused even with the right password"
        other = _elsewhere(browser)
        assert _post_login(other, "lan", PASSWORD).status_code == 303, "the account is not locked for everyone"
        waits = []
        for _ in range(6):  # each further failure doubles the wait: 2, 4, 8, 16, 32, 64 s
            frozen.tick(timedelta(minutes=20))
            r = _post_login(browser, "lan", "wrong password!")
            assert r.status_code == 429
            waits.append(int(r.text.split("Chờ ")[1].split(" giây")[0]))
        assert waits == [2, 4, 8, 16, 32, 64]
        frozen.tick(timedelta(seconds=65))
        assert _post_login(browser, "lan", PASSWORD).status_code == 303


def test_the_wait_never_exceeds_fifteen_minutes_and_failures_are_forgotten_after_a_day(browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    start = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    with freeze_time(start) as frozen:
        for _ in range(20):
            frozen.tick(timedelta(minutes=16))
            _post_login(browser, "lan", "wrong password!")
        r = _post_login(browser, "lan", PASSWORD)
        assert r.status_code == 429 and "Chờ 15 phút" in r.text
        frozen.tick(timedelta(days=1, minutes=16))
        assert _post_login(browser, "lan", "wrong password!").status_code == 401  # counted from zero again
        assert _post_login(browser, "lan", PASSWORD).status_code == 303


def test_one_address_guessing_many_user_names_is_slowed_down(browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    with freeze_time(datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)):
        statuses = [_post_login(browser, f"guess{i}", "wrong password!").status_code for i in range(21)]
        assert statuses[:20] == [401] * 20 and statuses[20] == 429
        assert _post_login(browser, "lan", PASSWORD).status_code == 429
        assert _post_login(_elsewhere(browser), "lan", PASSWORD).status_code == 303


def test_disabled_account_cannot_sign_in(browser) -> None:
    from hotline.cli import main

    create_user("lan", PASSWORD, "counsellor")
    assert main(["user", "disable", "lan"]) == 0
    r = _post_login(browser, "lan", PASSWORD)
    assert r.status_code == 403 and "đã bị khoá" in r.text


def test_session_ends_after_two_idle_hours(browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    start = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    with freeze_time(start) as frozen:
        login(browser, "lan", PASSWORD)
        frozen.move_to(start + timedelta(hours=1, minutes=50))
        assert browser.get("/account").status_code == 200  # activity keeps it alive
        frozen.move_to(start + timedelta(hours=3, minutes=45))
        assert browser.get("/account").status_code == 200
        frozen.move_to(start + timedelta(hours=5, minutes=50))
        r = browser.get("/account", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_session_ends_after_twelve_hours_however_active(browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    start = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    with freeze_time(start) as frozen:
        login(browser, "lan", PASSWORD)
        for hour in range(1, 12):
            frozen.move_to(start + timedelta(hours=hour))
            assert browser.get("/account").status_code == 200
        frozen.move_to(start + timedelta(hours=12, minutes=1))
        assert browser.get("/account", follow_redirects=False).status_code == 303


def test_logout_everywhere_ends_every_browser(browser, second_browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    token = login(browser, "lan", PASSWORD)
    login(second_browser, "lan", PASSWORD)
    assert "2 trình duyệt" in browser.get("/account").text
    r = browser.post("/logout-everywhere", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert second_browser.get("/account", follow_redirects=False).status_code == 303
    assert browser.get("/account", follow_redirects=False).status_code == 303


def test_password_change_keeps_this_browser_and_ends_the_others(browser, second_browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    token = login(browser, "lan", PASSWORD)
    login(second_browser, "lan", PASSWORD)
    r = browser.post("/account/password", data={"csrf_token": token, "current_password": "not it at all",
                                                "new_password": "a new long password", "confirm_password": "a new long password"})
    assert r.status_code == 400 and "Mật khẩu hiện tại không đúng" in r.text
    r = browser.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                "new_password": "short", "confirm_password": "short"})
    assert r.status_code == 400 and "ít nhất 10 ký tự" in r.text
    r = browser.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                "new_password": "a new long password", "confirm_password": "a new long password"})
    assert r.status_code == 200 and "Đã đổi mật khẩu" in r.text
    assert second_browser.get("/account", follow_redirects=False).status_code == 303
    assert browser.get("/account").status_code == 200
    second_browser.cookies.clear()
    assert _post_login(second_browser, "lan", PASSWORD).status_code == 401
    assert _post_login(second_browser, "lan", "a new long password").status_code == 303


def test_failed_sign_ins_are_audited_without_keeping_mistyped_names(browser) -> None:
    from hotline.audit import service as audit
    from hotline.db import session_scope

    uid = create_user("lan", PASSWORD, "counsellor")
    _post_login(browser, "lan", "wrong password!")
    _post_login(browser, "correct horse battery", "x")  # a password typed into the name field
    with session_scope() as db:
        entries = audit.search(db, action="login.bad_credentials")
    assert [(e.object_id, e.detail) for e in entries] == [(None, {"unknown_user": True}),
                                                           (str(uid), {"username": "lan"})]
    assert all(e.ip == "testclient" for e in entries)


def test_signing_in_again_replaces_the_old_session(browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    create_user("minh", PASSWORD, "supervisor")
    login(browser, "lan", PASSWORD)
    first = browser.cookies.get("hotline_session")
    browser.cookies.clear()
    browser.cookies.set("hotline_session", first, domain="testserver.local")
    r = browser.get("/login?next=/account", follow_redirects=False)  # already signed in: sent on
    assert r.status_code == 303 and r.headers["location"] == "/account"
    token = csrf_from(browser.get("/account").text)
    r = browser.post("/login", data={"username": "minh", "password": PASSWORD, "csrf_token": token},
                     follow_redirects=False)
    assert r.status_code == 303
    assert "(minh)" in browser.get("/account").text
    browser.cookies.clear()
    browser.cookies.set("hotline_session", first, domain="testserver.local")
    assert browser.get("/account", follow_redirects=False).status_code == 303, "the first session was ended"
