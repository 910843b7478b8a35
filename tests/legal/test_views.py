"""Pages, the live-screen panel, the reading view and the JSON API, through the real app."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from hotline.audit.models import AuditEntry
from hotline.cli import main
from hotline.db import session_scope
from legal_library.models import LegalVersion
from tests.helpers import create_user, login

API = {"Authorization": "Bearer test-api-token"}
PASSWORD = "a-long-enough-password-1"


@pytest.fixture
def library(client):
    assert main(["legal", "seed"]) == 0
    return client


def _signed_in(client, role: str, language: str = "vi") -> str:
    create_user(f"user_{role}", PASSWORD, role, language=language)
    return login(client, f"user_{role}", PASSWORD)


def test_errors_come_in_the_users_language(library, samples):
    """English for an administrator who chose English; the same refusal in Vietnamese by default."""
    token = _signed_in(library, "administrator", language="en")
    bad = library.get("/legal", params={"issues": "nope"})
    assert bad.status_code == 400 and "unknown issue code &#39;nope&#39;" in bad.text
    assert "Mã vấn đề" not in bad.text
    r = library.post("/legal/admin/import", data={"csrf_token": token},
                     files={"file": ("list.txt", (samples / "khong_phai_luat.txt").read_bytes(), "text/plain")})
    assert r.status_code == 400 and "this does not look like a legal text" in r.text
    library.cookies.clear()
    _signed_in(library, "counsellor")
    bad = library.get("/legal", params={"issues": "nope"})
    assert bad.status_code == 400 and "Mã vấn đề không có: &#39;nope&#39;" in bad.text


def test_api_search_needs_the_token_or_a_signed_in_user(library):
    assert library.get("/api/legal/search", params={"q": "điều 185"}).status_code == 401
    r = library.get("/api/legal/search", params={"q": "dieu 185 blhs"}, headers=API)
    assert r.status_code == 200
    assert r.json()["articles"][0]["label"] == "Điều 185 Bộ luật Hình sự 100/2015/QH13"
    r = library.get("/api/legal/search", params={"issues": "dv.sexual"}, headers=API)
    assert "Điều 141 Bộ luật Hình sự 100/2015/QH13" in [a["label"] for a in r.json()["articles"]]
    bad = library.get("/api/legal/search", params={"issues": "nope"}, headers=API)
    assert bad.status_code == 400 and "Mã vấn đề không có: 'nope'" in bad.json()["detail"]
    assert library.get("/api/legal/search", headers=API).status_code == 400


def test_counsellor_uses_the_api_with_the_session(library):
    _signed_in(library, "counsellor")
    r = library.get("/api/legal/search", params={"q": "13/2022"})
    assert r.status_code == 200 and r.json()["documents"][0]["number"] == "13/2022/QH15"


def test_panel_suggests_tagged_articles_with_notes_and_the_given_button(library):
    _signed_in(library, "counsellor")
    r = library.get("/legal/panel", params={"issues": "dv.physical,child_abuse", "record_id": 42})
    assert r.status_code == 200
    html = r.text
    assert "<html" not in html  # a fragment for the live screen
    assert "Điều 3 Luật 13/2022/QH15. Hành vi bạo lực gia đình" in html
    assert "Điều 47 Luật 102/2016/QH13" in html
    assert "Liệt kê các hành vi là bạo lực gia đình" in html  # our note
    assert "chưa kiểm chứng" in html  # the unverified note is marked
    buttons = re.findall(r'<button type="button" class="legal-given" data-record-id="42" data-ref-id="(\d+)"', html)
    assert buttons
    narrowed = library.get("/legal/panel", params={"issues": "dv", "q": "cam tiep xuc"}).text
    assert "Biện pháp cấm tiếp xúc" in narrowed and "Hành vi bạo lực gia đình" not in narrowed
    assert "legal-given" not in narrowed  # no record, no button


def test_reading_view_is_large_text_with_the_status_and_the_given_button(library):
    _signed_in(library, "counsellor")
    article_id = library.get("/api/legal/search", params={"q": "điều 3 pcblgđ"}).json()["articles"][0]["id"]
    r = library.get(f"/legal/articles/{article_id}/read", params={"record_id": 7})
    assert r.status_code == 200
    assert 'class="legal-read"' in r.text  # large text: the stylesheet's .legal-read (no inline style under the CSP)
    assert "Hành vi bạo lực gia đình" in r.text and "Việc cần làm" in r.text
    assert f'data-record-id="7" data-ref-id="{article_id}"' in r.text
    assert '<script src="/static/js/legal-given.js"' in r.text and "<script>" not in r.text
    assert '<dialog id="lock-reason-dialog"' in r.text  # a signed-off record asks for the reason
    js = library.get("/static/js/legal-given.js").text + library.get("/static/js/lock-reason.js").text
    assert "hotlineReferences.give" in js and "/records/" in js and "X-CSRF-Token" in js
    assert library.get("/legal/articles/999999/read").status_code == 404
    ref = library.get(f"/api/legal/articles/{article_id}/reference").json()
    assert ref == {"kind": "legal", "ref_id": str(article_id), "label": "Điều 3 Luật 13/2022/QH15: Hành vi bạo lực gia đình",
                   "document_number": "13/2022/QH15", "article_number": "3", "status": "in_force",
                   "url": f"/legal/articles/{article_id}/read"}


def test_search_and_document_pages(library):
    assert library.get("/legal", follow_redirects=False).status_code == 303  # sign in first
    _signed_in(library, "counsellor")
    home = library.get("/legal")
    assert home.status_code == 200 and "13/2022/QH15" in home.text
    r = library.get("/legal", params={"q": "nđ 144"})
    assert "Hết hiệu lực, đã được thay thế: thay bằng 282/2025/NĐ-CP" in r.text
    doc_id = re.search(r'href="/legal/documents/(\d+)">Nghị định 144/2021', r.text).group(1)
    page = library.get(f"/legal/documents/{doc_id}")
    assert page.status_code == 200 and "282/2025/NĐ-CP" in page.text and "chưa kiểm tra" in page.text
    assert "31/12/2021" in page.text and "01/01/2022" in page.text
    bad = library.get("/legal", params={"issues": "nope"})
    assert bad.status_code == 400 and "Mã vấn đề không có" in bad.text


def test_partner_cannot_read_the_library(library):
    _signed_in(library, "partner")
    assert library.get("/legal/panel", params={"issues": "dv"}).status_code == 403


def test_admin_imports_reviews_and_publishes(library, samples):
    token = _signed_in(library, "administrator")
    data = (samples / "trung_lap.txt").read_bytes()
    r = library.post("/legal/admin/import", data={"csrf_token": token, "document": ""},
                     files={"file": ("trung_lap.txt", data, "text/plain")}, follow_redirects=False)
    assert r.status_code == 303
    review = library.get(r.headers["location"])
    assert "Số điều bị trùng (không gộp)" in review.text and "dòng 7, 12" in review.text
    assert "Khoản này nằm ngoài điều nào" in review.text
    assert "khoản nằm ngoài điều: <q>" in review.text  # the stored reason, shown in the reader's language
    version_id = int(r.headers["location"].rsplit("/", 1)[1])
    refused = library.post(f"/legal/admin/versions/{version_id}/publish", data={"csrf_token": token})
    assert refused.status_code == 409 and "bản nháp có số điều bị trùng" in refused.text

    html = (samples / "nghi_dinh_mau.html").read_bytes().replace("Tổng đài 111".encode(), b"<script>alert(1)</script>")
    r = library.post("/legal/admin/import", data={"csrf_token": token},
                     files={"file": ("nd.html", html, "text/html")}, follow_redirects=False)
    assert r.status_code == 303
    review = library.get(r.headers["location"])
    assert "<script>alert(1)</script>" not in review.text  # dropped by the HTML reader or escaped
    version_id = int(r.headers["location"].rsplit("/", 1)[1])
    text = "Luật số: 94/2030/QH99\nĐiều 1. <b>Thẻ</b> & ký hiệu\nNội dung.\n".encode()
    r = library.post("/legal/admin/import", data={"csrf_token": token},
                     files={"file": ("x.txt", text, "text/plain")}, follow_redirects=False)
    review = library.get(r.headers["location"])
    assert "&lt;b&gt;Thẻ&lt;/b&gt; &amp; ký hiệu" in review.text
    assert library.post(f"/legal/admin/versions/{version_id}/publish", data={"csrf_token": token},
                        follow_redirects=False).status_code == 303
    assert library.get("/api/legal/search", params={"q": "98/2030"}).json()["articles"]
    with session_scope() as session:
        actions = set(session.scalars(select(AuditEntry.action)))
        assert {"legal.import", "legal.publish"} <= actions
        assert session.scalar(select(LegalVersion.state).where(LegalVersion.id == version_id)) == "published"


def test_admin_import_refusal_and_csrf(library, samples):
    token = _signed_in(library, "administrator")
    r = library.post("/legal/admin/import", data={"csrf_token": token},
                     files={"file": ("list.txt", (samples / "khong_phai_luat.txt").read_bytes(), "text/plain")})
    assert r.status_code == 400 and "không giống văn bản pháp luật" in r.text
    no_token = library.post("/legal/admin/import", files={"file": ("a.txt", b"x", "text/plain")})
    assert no_token.status_code == 403


def test_counsellor_cannot_import(library, samples):
    token = _signed_in(library, "counsellor")
    r = library.post("/legal/admin/import", data={"csrf_token": token},
                     files={"file": ("a.txt", (samples / "luat_mau.txt").read_bytes(), "text/plain")})
    assert r.status_code == 403
    assert library.get("/legal/admin").status_code == 403
