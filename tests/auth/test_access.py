"""Role checks, CSRF, the API token and escaping, through HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from hotline.auth.deps import Principal, csrf_protect, current_principal, require_roles
from hotline.settings import Settings
from hotline.web import render
from tests.auth.conftest import PASSWORD
from tests.helpers import create_user, login


def _probe_router() -> APIRouter:
    """Stand-ins for other domains' pages, built only from the public dependencies."""
    router = APIRouter()

    @router.get("/probe/counsellor")
    def counsellor_page(p: Principal = Depends(require_roles("counsellor", "supervisor", "administrator"))):
        return {"username": p.username, "role": p.role}

    @router.post("/probe/save", dependencies=[Depends(csrf_protect)])
    def save(p: Principal = Depends(current_principal)):
        return {"saved_by": p.username}

    @router.get("/api/probe")
    def api_probe(p: Principal = Depends(require_roles("administrator"))):
        return {"username": p.username, "service": p.is_service}

    @router.post("/api/probe", dependencies=[Depends(csrf_protect)])
    def api_probe_post(p: Principal = Depends(current_principal)):
        return {"username": p.username}

    return router


@pytest.fixture
def probe(env: Settings) -> Iterator[TestClient]:
    from hotline.app import create_app

    app: FastAPI = create_app()
    app.include_router(_probe_router())
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def test_partner_cannot_reach_counsellor_or_admin_pages(probe) -> None:
    create_user("shelter", PASSWORD, "partner")
    login(probe, "shelter", PASSWORD)
    assert probe.get("/", follow_redirects=False).headers["location"] == "/partner"
    r = probe.get("/probe/counsellor", headers={"accept": "text/html"})
    assert r.status_code == 403
    assert "Tài khoản của bạn không có quyền vào trang này." in r.text and "<html" in r.text
    assert probe.get("/probe/counsellor").status_code == 403
    for page in ("/admin/users", "/admin/agents", "/admin/audit"):
        assert probe.get(page).status_code == 403, page


def test_counsellor_reaches_counsellor_pages_but_not_admin(probe) -> None:
    create_user("lan", PASSWORD, "counsellor")
    login(probe, "lan", PASSWORD)
    assert probe.get("/probe/counsellor").json() == {"username": "lan", "role": "counsellor"}
    assert probe.get("/admin/users").status_code == 403


def test_state_changing_requests_need_the_csrf_token(probe) -> None:
    create_user("lan", PASSWORD, "counsellor")
    token = login(probe, "lan", PASSWORD)
    r = probe.post("/probe/save", data={"x": "1"})
    assert r.status_code == 403 and "mã bảo mật" in r.json()["detail"]
    assert probe.post("/probe/save", data={"csrf_token": "forged"}).status_code == 403
    assert probe.post("/logout", data={}).status_code == 403
    assert probe.get("/account").status_code == 200, "a refused logout must not sign out"
    assert probe.post("/probe/save", data={"csrf_token": token}).json() == {"saved_by": "lan"}
    assert probe.post("/probe/save", json={"a": 1}, headers={"X-CSRF-Token": token}).json() == {"saved_by": "lan"}
    assert probe.post("/probe/save", json={"a": 1}).status_code == 403


def test_the_login_form_itself_needs_its_token(browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    browser.get("/login")
    r = browser.post("/login", data={"username": "lan", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    assert browser.get("/", follow_redirects=False).headers["location"] == "/login"


def test_api_token_is_an_administrator_for_the_api_only(probe) -> None:
    auth = {"Authorization": "Bearer test-api-token"}
    assert probe.get("/api/probe", headers=auth).json() == {"username": "api", "service": True}
    assert probe.post("/api/probe", headers=auth, json={}).json() == {"username": "api"}
    r = probe.get("/api/probe", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and "Mã API không đúng" in r.json()["detail"]
    assert probe.get("/api/probe").status_code == 401
    # outside /api the token means nothing: a page still wants a signed-in user
    r = probe.get("/probe/counsellor", headers={**auth, "accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303


def test_api_token_disabled_when_empty(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from hotline.app import create_app
    from hotline.settings import reset_settings

    monkeypatch.setenv("HOTLINE_API_TOKEN", "")
    reset_settings()
    app = create_app()
    app.include_router(_probe_router())
    with TestClient(app, base_url="https://testserver") as c:
        assert c.get("/api/probe", headers={"Authorization": "Bearer "}).status_code == 401
        assert c.get("/api/probe", headers={"Authorization": "Bearer x"}).status_code == 401


def test_markup_in_a_display_name_is_shown_as_text(browser) -> None:
    create_user("lan", PASSWORD, "counsellor", display_name='<script>alert("x")</script> Lan')
    login(browser, "lan", PASSWORD)
    page = browser.get("/account").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Lan" in page


def test_language_switch_gives_english_and_is_kept_on_the_account(browser, second_browser) -> None:
    create_user("lan", PASSWORD, "counsellor")
    token = login(browser, "lan", PASSWORD)
    page = browser.get("/account").text
    assert "Đổi mật khẩu" in page and 'lang="vi"' in page
    r = browser.post("/language", data={"lang": "en", "next": "/account", "csrf_token": token})
    assert r.status_code == 200
    assert "Change password" in r.text and "Đổi mật khẩu" not in r.text and '<html lang="en">' in r.text
    # another browser signing in as the same user gets English too
    login(second_browser, "lan", PASSWORD)
    assert "Sign out everywhere" in second_browser.get("/account").text
    r = browser.post("/language", data={"lang": "vi", "next": "/account", "csrf_token": token})
    assert "Đăng xuất khỏi mọi nơi" in r.text


def test_anonymous_language_choice_is_a_cookie(browser) -> None:
    from tests.helpers import csrf_from

    page = browser.get("/login")
    assert "Quên mật khẩu?" in page.text
    r = browser.post("/language", data={"lang": "en", "next": "https://evil.example/", "csrf_token": csrf_from(page.text)},
                     follow_redirects=False)
    assert r.headers["location"] == "/"
    assert "Forgot your password?" in browser.get("/login").text


def test_dates_are_shown_dd_mm_yyyy_in_the_centre_timezone(browser) -> None:
    from datetime import datetime, timezone

    from freezegun import freeze_time

    create_user("admin", PASSWORD, "administrator")
    with freeze_time(datetime(2026, 6, 14, 18, 30, tzinfo=timezone.utc)):  # 01:30 on the 15th in Hà Nội
        login(browser, "admin", PASSWORD)
        page = browser.get("/admin/users").text
    assert "15/06/2026 01:30" in page  # the administrator's own last sign-in


def test_render_helpers_for_other_domains(env: Settings) -> None:
    """A page of another domain rendered through ``render`` gets the shared context."""
    import tempfile
    from pathlib import Path

    from hotline.app import create_app
    from hotline.web import add_template_dir

    folder = Path(tempfile.mkdtemp())
    (folder / "probe").mkdir()
    (folder / "probe" / "page.html").write_text(
        '{% extends "base.html" %}{% block title %}P{% endblock %}'
        '{% block content %}<p id="x">{{ _("Sign in") }}|{{ lang }}|{{ csrf_token|length > 20 }}|'
        '{{ principal.username }}|{{ fmt_date(when) }}|{{ value }}</p>{% endblock %}', encoding="utf-8")
    add_template_dir(folder)
    router = APIRouter()

    @router.get("/probe/page")
    def page(request: __import__("fastapi").Request, p: Principal = Depends(current_principal)):
        from datetime import datetime, timezone

        return render(request, "probe/page.html", {"when": datetime(2026, 12, 31, 17, 5, tzinfo=timezone.utc),
                                                   "value": "<b>"}, status_code=201)

    app = create_app()
    app.include_router(router)
    create_user("lan", PASSWORD, "counsellor")
    with TestClient(app, base_url="https://testserver") as c:
        login(c, "lan", PASSWORD)
        r = c.get("/probe/page")
    assert r.status_code == 201
    assert '<p id="x">Đăng nhập|vi|True|lan|01/01/2027|&lt;b&gt;</p>' in r.text


def test_a_browser_form_failing_validation_gets_a_page_naming_the_field(probe) -> None:
    create_user("admin", PASSWORD, "administrator")
    login(probe, "admin", PASSWORD)
    r = probe.get("/admin/audit", params={"page": "zero"}, headers={"accept": "text/html"})
    assert r.status_code == 422
    assert "Một số trường cần sửa" in r.text and "page:" in r.text and "sửa các trường" in r.text
    r = probe.get("/admin/audit", params={"page": "zero"}, headers={"accept": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "page"]


def test_pages_use_only_local_assets(browser) -> None:
    import re

    page = browser.get("/login").text
    assets = re.findall(r'(?:href|src)="([^"]+\.(?:css|js))"', page)
    assert assets == ["/static/css/app.css", "/static/js/app.js"]
    for asset in assets:
        r = browser.get(asset)
        assert r.status_code == 200 and len(r.content) > 500
    assert "http://" not in page and "https://" not in page
