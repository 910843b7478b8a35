"""The JSON API, the counsellors' panel and the administrators' upkeep pages, over HTTP."""

from __future__ import annotations

import re

from freezegun import freeze_time

from tests.directory.conftest import DATA
from tests.helpers import create_user, login

BEARER = {"Authorization": "Bearer test-api-token"}


def _load(cli) -> None:
    assert cli("directory", "import", str(DATA / "sample.csv"))[0] == 0


def test_api_search_needs_a_token_or_a_session(client, cli):
    _load(cli)
    assert client.get("/api/directory/search", params={"q": "tam lanh"}).status_code == 401
    assert client.get("/api/directory/search", params={"q": "tam lanh"},
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.get("/api/directory/search", params={"q": "tạm lánh kon tum", "free_bed": "true"}, headers=BEARER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["results"][0]["id"] == "qn-shelter"
    assert body["interpreted"]["province"] == "51"
    r = client.get("/api/directory/search", params={"province": "Kontumm"}, headers=BEARER)
    assert r.status_code == 422 and "Kon Tum" in r.json()["detail"]


def test_panel_fragment_for_the_live_call_screen(client, cli):
    _load(cli)
    create_user("lan", "a-long-password-1", "counsellor")
    login(client, "lan", "a-long-password-1")
    with freeze_time("2026-11-23T03:00:00Z"):
        r = client.get("/directory/panel", params={"q": "nha tam lanh ha noi", "record_id": 42})
    assert r.status_code == 200
    html = r.text
    assert "<html" not in html  # a fragment, not a page
    first = html.split('class="dir-item"')[1]
    assert 'data-id="hn-shelter"' in html.split('class="dir-item"')[0] + first[:40] or "Nha tam lanh Ha Noi" in first
    assert "Đang mở" in first and "Giường trống: 5/20" in first and "15/01/2025" in first
    assert 'data-url="/records/42/references"' in first and 'data-ref-id="hn-shelter"' in first
    assert re.search(r"024\s?3999\s?8888", first)


def test_panel_escapes_entry_text(client, cli, tmp_path):
    evil = tmp_path / "evil.csv"
    evil.write_text('ID,Organization,Service name,Service type,Province\nx1,Org,<script>alert(1)</script> help,legal aid,Huế\n',
                    encoding="utf-8")
    assert cli("directory", "import", str(evil))[0] == 0
    create_user("lan", "a-long-password-1", "counsellor")
    login(client, "lan", "a-long-password-1")
    html = client.get("/directory/panel", params={"q": "help"}).text
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_counsellors_cannot_use_upkeep_pages(client, cli):
    create_user("lan", "a-long-password-1", "counsellor")
    login(client, "lan", "a-long-password-1")
    assert client.get("/directory/admin").status_code == 403
    assert client.get("/directory").status_code == 200


def _admin(client) -> str:
    create_user("admin", "a-long-password-2", "administrator")
    return login(client, "admin", "a-long-password-2")


FORM = {"id": "new-1", "organization": "Trung tâm Trợ giúp pháp lý Huế", "name": "Trợ giúp pháp lý Huế",
        "service_type": "legal_aid", "phones": "0234 3822 000", "hours": "T2-T6 07:00-17:00", "province": "Thừa Thiên Huế"}


def test_admin_adds_and_bad_input_is_refused_without_losing_it(client, cli):
    token = _admin(client)
    bad = dict(FORM, hours="T2-T6 7h-17h", province="Hue", csrf_token=token)
    r = client.post("/directory/admin/new", data=bad)
    assert r.status_code == 422
    assert "T2-T6 7h-17h" in r.text  # the value is shown
    assert 'value="Trung tâm Trợ giúp pháp lý Huế"' in r.text  # what was typed is kept
    bad = dict(FORM, province="Hue Hue", csrf_token=token)
    r = client.post("/directory/admin/new", data=bad)
    assert r.status_code == 422 and "Huế" in r.text
    r = client.post("/directory/admin/new", data=dict(FORM, province="Huế", csrf_token=token))
    assert r.status_code == 200 and "Đã lưu" in r.text
    r = client.post("/directory/admin/new", data=dict(FORM, id="new-2", province="Huế", csrf_token=token))
    assert r.status_code == 200 and "duplicate" not in r.text.lower() and "đã có ở mục new-1" in r.text  # phone warns
    r = client.post("/directory/admin/new", data=dict(FORM, province="Huế", csrf_token=token))
    assert r.status_code == 409 and "mã &#39;new-1&#39; đã có" in r.text


def test_form_errors_come_in_the_administrators_language(client):
    """English for an administrator who chose English, Vietnamese by default; the value is shown."""
    create_user("admin_en", "a-long-password-2", "administrator", language="en")
    token = login(client, "admin_en", "a-long-password-2")
    r = client.post("/directory/admin/new", data=dict(FORM, hours="T2-T6 7h-17h", name="", csrf_token=token))
    assert r.status_code == 422
    assert "invalid opening hours &#39;T2-T6 7h-17h&#39;" in r.text and "missing service name" in r.text
    assert "giờ mở cửa không hợp lệ" not in r.text and "thiếu tên dịch vụ" not in r.text
    client.cookies.clear()
    token = _admin(client)
    r = client.post("/directory/admin/new", data=dict(FORM, hours="T2-T6 7h-17h", name="", csrf_token=token))
    assert r.status_code == 422
    assert "giờ mở cửa không hợp lệ &#39;T2-T6 7h-17h&#39;" in r.text and "thiếu tên dịch vụ" in r.text


def test_admin_edit_verify_stale_list_and_history(client, cli):
    _load(cli)
    token = _admin(client)
    with freeze_time("2026-11-23T03:00:00Z"):
        stale = client.get("/directory/admin/stale").text
        assert 'data-id="qn-legal"' in stale  # never verified
        assert 'data-id="hn-shelter"' in stale  # verified 2025-01-15, more than 180 days ago
        assert 'data-id="qn-shelter"' not in stale  # verified 2026-10-01
        r = client.post("/directory/admin/qn-legal/verify", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303
        assert 'data-id="qn-legal"' not in client.get("/directory/admin/stale").text
    page = client.get("/directory/admin/gl-shelter/edit")
    assert page.status_code == 200 and "Nhà tạm lánh Gia Lai" in page.text
    form = dict(re.findall(r'<input name="([a-z_]+)" value="([^"]*)"', page.text))
    form.update({"beds_free": "1", "csrf_token": token})
    r = client.post("/directory/admin/gl-shelter/edit", data=form)
    assert r.status_code == 200, r.text
    history = client.get("/directory/admin/history", params={"service_id": "gl-shelter"}).text
    assert "beds_free" in history and "admin" in history
    assert "verify" in client.get("/directory/admin/history", params={"service_id": "qn-legal"}).text
    r = client.post("/directory/admin/gl-shelter/edit", data={"name": "x"})
    assert r.status_code == 403  # no CSRF token
