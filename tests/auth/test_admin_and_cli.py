"""Administrator pages (users, phone agents, audit log) and the ``hotline user`` commands."""

from __future__ import annotations

import io
import json
import re
import sys
from datetime import datetime, timezone

import pytest
from freezegun import freeze_time

from hotline.audit import service as audit
from hotline.cli import main
from hotline.db import session_scope
from hotline.settings import Settings
from tests.auth.conftest import PASSWORD
from tests.helpers import create_user, csrf_from, login


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def _login_status(client, username: str, password: str) -> int:
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
                    follow_redirects=False)
    return r.status_code


# ------------------------------------------------------------------ CLI
def test_cli_user_lifecycle(env: Settings, browser, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert main(["centre", "add", "qn", "CTXH Quảng Ngãi"]) == 0
    _stdin(monkeypatch, PASSWORD + "\n")
    assert main(["user", "create", "Lan", "--role", "counsellor", "--centre", "qn", "--name", "Nguyễn Thị Lan",
                 "--password-stdin"]) == 0
    assert "created lan (counsellor)" in capsys.readouterr().out
    assert _login_status(browser, "lan", PASSWORD) == 303

    assert main(["user", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["username"] == "lan" and rows[0]["centre"] == "qn" and rows[0]["active"] is True
    assert "Nguyễn" not in json.dumps(rows, ensure_ascii=False), "the list shows no personal names"

    _stdin(monkeypatch, "another long password\n")
    assert main(["user", "reset-password", "lan", "--password-stdin"]) == 0
    assert browser.get("/account", follow_redirects=False).status_code == 303, "reset signs the user out"
    browser.cookies.clear()
    assert _login_status(browser, "lan", PASSWORD) == 401
    assert _login_status(browser, "lan", "another long password") == 303

    assert main(["user", "disable", "lan"]) == 0
    assert browser.get("/account", follow_redirects=False).status_code == 303
    assert main(["user", "list"]) == 0
    assert re.search(r"lan\s+counsellor\s+qn\s+DISABLED", capsys.readouterr().out)
    assert main(["user", "enable", "lan"]) == 0
    browser.cookies.clear()
    assert _login_status(browser, "lan", "another long password") == 303

    with session_scope() as db:
        actions = [e.action for e in audit.search(db, actor="cli")]
    assert actions == ["user.enable", "user.disable", "user.password_reset", "user.create"]


def test_cli_user_errors_are_clear_and_change_nothing(env: Settings, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _stdin(monkeypatch, "short\n")
    assert main(["user", "create", "lan", "--role", "counsellor", "--password-stdin"]) == 2
    err = capsys.readouterr().err
    assert "ít nhất 10 ký tự" in err and "at least 10 characters" in err

    _stdin(monkeypatch, PASSWORD + "\n")
    assert main(["user", "create", "lan", "--role", "counsellor", "--centre", "nowhere", "--password-stdin"]) == 2
    assert "nowhere" in capsys.readouterr().err

    _stdin(monkeypatch, "")
    assert main(["user", "create", "lan", "--role", "counsellor", "--password-stdin"]) == 2
    assert "--password-stdin" in capsys.readouterr().err

    assert main(["user", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    _stdin(monkeypatch, PASSWORD + "\n")
    assert main(["user", "create", "lan", "--role", "counsellor", "--password-stdin"]) == 0
    _stdin(monkeypatch, PASSWORD + "\n")
    assert main(["user", "create", "LAN", "--role", "supervisor", "--password-stdin"]) == 2
    assert "already taken" in capsys.readouterr().err
    assert main(["user", "disable", "ghost"]) == 2
    assert "ghost" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["user", "create", "x", "--role", "boss"])
    assert exc.value.code == 2


def test_cli_prompts_twice_on_a_terminal(env: Settings, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty(""))
    answers = iter([PASSWORD, "something else entirely"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["user", "create", "lan", "--role", "counsellor"]) == 2
    assert "differ" in capsys.readouterr().err
    answers = iter([PASSWORD, PASSWORD])
    assert main(["user", "create", "lan", "--role", "counsellor"]) == 0


# ------------------------------------------------------------------ administrator pages
def test_admin_creates_resets_and_disables_users_through_pages(browser, second_browser) -> None:
    create_user("admin", PASSWORD, "administrator")
    token = login(browser, "admin", PASSWORD)

    r = browser.post("/admin/users", data={"csrf_token": token, "username": "minh", "display_name": "Minh",
                                           "role": "supervisor", "centre": "default", "language": "en"})
    assert r.status_code == 200
    temporary = re.search(r'data-testid="temporary-password">([^<]+)<', r.text).group(1)
    assert _login_status(second_browser, "minh", temporary) == 303
    # A temporary password must be changed first (#14 finding 9): every page leads to the forced change.
    r = second_browser.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login/password"
    forced = second_browser.get("/login/password")
    assert forced.status_code == 200 and "temporary password" in forced.text  # created with English
    weak = second_browser.post("/login/password", data={"csrf_token": csrf_from(forced.text), "new_password": "aaaaaaaaaa",
                                                        "confirm_password": "aaaaaaaaaa"})
    assert weak.status_code == 400 and "different characters" in weak.text
    same = second_browser.post("/login/password", data={"csrf_token": csrf_from(forced.text), "new_password": temporary,
                                                        "confirm_password": temporary})
    assert same.status_code == 400
    r = second_browser.post("/login/password", data={"csrf_token": csrf_from(forced.text), "new_password": PASSWORD + "!",
                                                     "confirm_password": PASSWORD + "!", "next": "/account"},
                            follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert "Sign out everywhere" in second_browser.get("/account").text

    r = browser.post("/admin/users", data={"csrf_token": token, "username": "minh", "role": "counsellor"})
    assert r.status_code == 400 and "Tên đăng nhập &#39;minh&#39; đã có người dùng" in r.text
    assert 'value="minh"' in r.text, "the form keeps what was typed"

    users = browser.get("/admin/users").text
    minh_id = re.search(r'/admin/users/(\d+)/reset', users.split("minh")[1]).group(1)
    r = browser.post(f"/admin/users/{minh_id}/reset", data={"csrf_token": token})
    new_temporary = re.search(r'data-testid="temporary-password">([^<]+)<', r.text).group(1)
    assert new_temporary != temporary
    assert second_browser.get("/account", follow_redirects=False).status_code == 303
    assert _login_status(second_browser, "minh", new_temporary) == 303

    r = browser.post(f"/admin/users/{minh_id}/disable", data={"csrf_token": token})
    assert r.status_code == 200 and "Đã khoá minh" in r.text
    assert second_browser.get("/account", follow_redirects=False).status_code == 303
    assert browser.post(f"/admin/users/{minh_id}/disable", data={}).status_code == 403  # CSRF
    r = browser.post(f"/admin/users/{minh_id}/enable", data={"csrf_token": token})
    assert "minh đã có thể đăng nhập lại" in r.text

    own = re.search(r'<td class="mono">admin</td>.*?/admin/users/(\d+)/reset', users, re.S).group(1)
    r = browser.post(f"/admin/users/{own}/disable", data={"csrf_token": token})
    assert r.status_code == 400 and "không thể tự khoá" in r.text


def test_admin_maps_phone_agents(browser, env: Settings) -> None:
    create_user("admin", PASSWORD, "administrator")
    create_user("lan", PASSWORD, "counsellor", display_name="Lan")
    create_user("shelter", PASSWORD, "partner")
    token = login(browser, "admin", PASSWORD)
    form = {"csrf_token": token, "centre": "default", "provider": "asterisk", "identity": "PJSIP/tuvanvien1",
            "username": "lan"}
    r = browser.post("/admin/agents", data=form)
    assert r.status_code == 200 and "Đã lưu liên kết." in r.text
    assert "PJSIP/tuvanvien1" in r.text and "(lan)" in r.text

    from hotline.centres.service import Routing, get_centre

    with session_scope() as db:
        routing = Routing.load(db, get_centre(db, "default").id)
        assert routing.counsellor_for("asterisk", "PJSIP/tuvanvien1") is not None

    r = browser.post("/admin/agents", data={**form, "username": "shelter"})
    assert r.status_code == 400 and "không phải tư vấn viên" in r.text
    r = browser.post("/admin/agents", data={**form, "provider": "skype"})
    assert r.status_code == 400 and "asterisk hoặc twilio" in r.text
    r = browser.post("/admin/agents", data={**form, "identity": "  "})
    assert r.status_code == 400 and "PJSIP/tuvanvien1" in r.text
    r = browser.post("/admin/agents", data={**form, "username": ""})
    assert "không còn liên kết" in r.text
    with session_scope() as db:
        routing = Routing.load(db, get_centre(db, "default").id)
        assert routing.counsellor_for("asterisk", "PJSIP/tuvanvien1") is None


def test_audit_entries_are_written_and_searchable(browser, second_browser) -> None:
    create_user("admin", PASSWORD, "administrator")
    create_user("lan", PASSWORD, "counsellor")
    with freeze_time(datetime(2026, 4, 10, 3, 0, tzinfo=timezone.utc)):
        assert _login_status(second_browser, "lan", "wrong password!") == 401
    with freeze_time(datetime(2026, 4, 12, 3, 0, tzinfo=timezone.utc)):
        assert _login_status(second_browser, "lan", PASSWORD) == 303
    login(browser, "admin", PASSWORD)
    with session_scope() as db:
        audit.record(db, actor=None, action="record.view", object_type="call_record", object_id=42,
                     detail={"x": "<img src=x onerror=alert(1)>"})

    def rows(params: dict[str, str], action: str) -> int:
        page = browser.get("/admin/audit", params=params).text
        return page.count(f'<td class="mono">{action}</td>')

    assert rows({"actor": "lan"}, "login.success") == 1
    assert rows({"actor": "lan"}, "login.bad_credentials") == 0  # a failed attempt has no actor yet
    assert rows({"action": "login.*"}, "login.bad_credentials") == 1
    assert rows({"action": "login.*"}, "login.success") == 2
    assert rows({"action": "login.*"}, "record.view") == 0
    window = {"action": "login.*", "since": "2026-04-11", "until": "2026-04-12"}
    assert rows(window, "login.success") == 1 and rows(window, "login.bad_credentials") == 0
    assert "12/04/2026 10:00:00" in browser.get("/admin/audit", params=window).text  # Asia/Ho_Chi_Minh
    day = {"since": "10/04/2026", "until": "10/04/2026"}
    assert rows(day, "login.bad_credentials") == 1 and rows(day, "login.success") == 0
    page = browser.get("/admin/audit", params={"object_type": "call_record", "object_id": "42"}).text
    assert page.count('<td class="mono">record.view</td>') == 1 and "<img src=x" not in page
    r = browser.get("/admin/audit", params={"since": "yesterday"})
    assert r.status_code == 400 and "dd/mm/yyyy" in r.text
    assert browser.get("/admin/audit").status_code == 200

    with session_scope() as db:
        searches = audit.search(db, actor="admin", action="audit.search")
        assert len(searches) == 12 and searches[0].ip == "testclient"
        logins = audit.search(db, action="login.success", since=datetime(2026, 4, 11, tzinfo=timezone.utc),
                              until=datetime(2026, 4, 13, tzinfo=timezone.utc))
        assert [e.actor_username for e in logins] == ["lan"]
        assert logins[0].user_agent and logins[0].object_type == "user"
