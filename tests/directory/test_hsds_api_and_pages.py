"""Over HTTP: the HSDS read API (responses valid against the official schemas), the taxonomy mapping
page, several locations in the upkeep form, and search pages that say what they did."""

from __future__ import annotations

import json
import re

from directory.hsds_schema import HSDS_DIR, validator
from tests.directory.conftest import DATA, search_json
from tests.directory.test_partner_package import PARTNER, _service_id
from tests.helpers import create_user, login

BEARER = {"Authorization": "Bearer test-api-token"}


def _page_schema_errors(body: dict) -> list[str]:
    """The Page shape of the HSDS OpenAPI document, with its contents checked by ``item_schema``."""
    openapi = json.loads((HSDS_DIR / "openapi.json").read_text(encoding="utf-8"))
    page = openapi["components"]["schemas"]["Page"]
    missing = [k for k in page["properties"] if k not in body]
    wrong = [k for k, v in page["properties"].items() if k in body and
             not isinstance(body[k], {"integer": int, "boolean": bool}[v["type"]])]
    return missing + wrong


def test_hsds_api_is_paged_valid_and_never_shows_a_confidential_address(client, cli):
    assert cli("directory", "import", str(PARTNER))[0] == 0
    assert cli("directory", "import", str(DATA / "sample.csv"))[0] == 0
    assert client.get("/api/hsds/services").status_code == 401
    r = client.get("/api/hsds/services", params={"per_page": 20, "page": 2}, headers=BEARER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert not _page_schema_errors(body)
    assert body["total_items"] == 46 and body["total_pages"] == 3 and body["page_number"] == 2 and body["size"] == 20
    assert not body["first_page"] and not body["last_page"]
    listed = validator("compiled/service_list.json")
    for item in body["contents"]:
        assert not list(listed.iter_errors(item)), item
    full = validator("service.json")
    sid = _service_id("Trung tâm Công tác xã hội Quảng Ngãi")
    one = client.get(f"/api/hsds/services/{sid}", headers=BEARER).json()
    assert not [e.message for e in full.iter_errors(one)]
    assert len(one["service_at_locations"]) == 2
    assert {s["byday"] for s in one["schedules"]} == {"MO,TU,WE,TH,FR"}
    assert one["service_at_locations"][1]["location"]["schedules"][0]["byday"] == "SA,SU"
    assert one["service_at_locations"][1]["location"]["phones"]
    for svc_id in ("qn-shelter", _service_id("Tổng đài quốc gia bảo vệ trẻ em")):
        one = client.get(f"/api/hsds/services/{svc_id}", headers=BEARER).json()
        assert not [e.message for e in full.iter_errors(one)], svc_id
    shelter = client.get("/api/hsds/services/qn-shelter", headers=BEARER).text
    assert "Bí Mật" not in shelter and "0123456789abcdef0123" not in shelter  # address, webhook secret
    assert client.get("/api/hsds/services/nope", headers=BEARER).status_code == 404
    assert client.get("/api/hsds/services", params={"page": 0}, headers=BEARER).status_code == 422
    assert client.get("/api/hsds/services", params={"per_page": "x"}, headers=BEARER).status_code == 422
    terms = client.get("/api/hsds/taxonomy_terms", params={"per_page": 100}, headers=BEARER).json()
    term_schema = validator("taxonomy_term.json")
    assert not _page_schema_errors(terms)
    assert all(not list(term_schema.iter_errors(t)) for t in terms["contents"])
    codes = {t["code"] for t in terms["contents"]}
    assert {"trusted_address", "shelter", "peer_support"} <= codes


def _admin(client) -> str:
    create_user("admin", "a-long-password-2", "administrator")
    return login(client, "admin", "a-long-password-2")


def test_the_mapping_page_retypes_the_entries_and_the_next_import_remembers(client, cli):
    assert cli("directory", "import", str(PARTNER))[0] == 0
    token = _admin(client)
    page = client.get("/directory/admin/taxonomy")
    assert page.status_code == 200 and "Nhóm tự lực" in page.text and "chưa chọn" in page.text
    term_id = re.search(r'<tr data-term="peer_support">.*?name="term_id" value="([^"]+)"', page.text, re.S).group(1)
    r = client.post("/directory/admin/taxonomy", data={"term_id": term_id, "maps_to": "counselling", "csrf_token": token})
    assert r.status_code == 200 and "3 mục đổi loại" in r.text
    peer = _service_id("Nhóm tự lực phụ nữ Hà Nội")
    hit = client.get("/api/directory/search", params={"q": "nhóm tự lực phụ nữ"}, headers=BEARER).json()["results"]
    assert hit[0]["id"] == peer and hit[0]["service_type"] == "counselling"
    code, out, err = cli("directory", "import", str(PARTNER))
    assert code == 0 and "Nhóm tự lực" not in err and "Hỗ trợ người khuyết tật" in err
    assert "40 không đổi" in out
    assert client.post("/directory/admin/taxonomy", data={"term_id": term_id, "maps_to": "nope",
                                                          "csrf_token": token}).status_code == 422
    assert client.post("/directory/admin/taxonomy", data={"term_id": "nope", "maps_to": "police",
                                                          "csrf_token": token}).status_code == 404


FORM = {"id": "multi-1", "organization": "Hội Phụ nữ Quảng Ngãi", "name": "Tư vấn và tạm lánh",
        "service_type": "shelter", "phones": "0912 345 111", "hours": "T2-T6 07:30-17:00", "province": "Quảng Ngãi",
        "address": "45 Hùng Vương"}


def test_the_upkeep_form_keeps_several_locations_each_with_phones_and_hours(client, cli):
    token = _admin(client)
    data = dict(FORM, csrf_token=token, **{
        "loc-count": "2", "loc-0-name": "Cơ sở Đà Nẵng", "loc-0-province": "Đà Nẵng", "loc-0-address": "9 Lê Lợi",
        "loc-0-phones": "0912 345 222", "loc-0-hours": "T7-CN 08:00-12:00", "loc-0-location_type": "physical",
        "loc-1-name": "Đường dây trực tuyến", "loc-1-location_type": "virtual", "loc-1-phones": "0912 345 333",
        "loc-1-hours": "24/7"})
    r = client.post("/directory/admin/new", data=data)
    assert r.status_code == 200, r.text
    assert "Đã lưu" in r.text and 'value="Cơ sở Đà Nẵng"' in r.text and 'value="0912 345 222"' in r.text
    assert 'value="T7,CN 08:00-12:00"' in r.text or "08:00-12:00" in r.text
    ids = re.findall(r'name="loc-\d+-id" value="([^"]+)"', r.text)
    assert ids == ["multi-1-loc2", "multi-1-loc3"]
    one = client.get("/api/hsds/services/multi-1", headers=BEARER).json()
    assert [s["location"]["location_type"] for s in one["service_at_locations"]] == ["physical", "physical", "virtual"]
    # A bad value in one location is refused with the location named, and nothing typed is lost.
    data["loc-0-hours"] = "T7 8h-12h"
    r = client.post("/directory/admin/multi-1/edit", data=data)
    assert r.status_code == 422 and "multi-1-loc2" in r.text and "T7 8h-12h" in r.text
    # Remove the virtual one.
    page = client.get("/directory/admin/multi-1/edit").text
    form = dict(re.findall(r'<input name="([a-z0-9_-]+)" value="([^"]*)"', page))
    form.update({"csrf_token": token, "loc-1-remove": "1", "loc-count": re.search(r'name="loc-count" value="(\d+)"', page).group(1)})
    r = client.post("/directory/admin/multi-1/edit", data=form)
    assert r.status_code == 200, r.text
    one = client.get("/api/hsds/services/multi-1", headers=BEARER).json()
    assert len(one["service_at_locations"]) == 2


def test_search_pages_say_what_was_not_found_and_label_types(client, cli):
    assert cli("directory", "import", str(PARTNER))[0] == 0
    create_user("lan", "a-long-password-1", "counsellor")
    login(client, "lan", "a-long-password-1")
    html = client.get("/directory/panel", params={"q": "tro giup phap ly da nang"}).text
    assert "Không có dịch vụ trợ giúp pháp lý ở Thành phố Đà Nẵng." in html
    assert html.index("Không có dịch vụ") < html.index('class="dir-item')
    assert "Gợi ý thay thế: Trợ giúp pháp lý · ~" in html
    assert "Loại: Trợ giúp pháp lý." in html and "legal_aid" not in html
    html = client.get("/directory", params={"q": "trợ giúp pháp lý", "open_at": "2026-12-08 10:00"}).text
    assert "Mở cửa lúc 10:00 08/12/2026." in html and "Lúc đó mở cửa" in html
    r = client.get("/directory/panel", params={"q": "x", "open_at": "sometime"})
    assert r.status_code == 422 and "2026-12-24 22:00" in r.text
    api = client.get("/api/directory/search", params={"q": "tro giup phap ly da nang", "open_at": "22:00"},
                     headers=BEARER).json()
    assert api["notices"][0].startswith("Không có dịch vụ trợ giúp pháp lý ở") and api["open_at"]
    assert all(r["fallback"] for r in api["results"])
    assert client.get("/api/directory/search", params={"open_at": "25:99"}, headers=BEARER).status_code == 422


def test_the_demo_has_every_type_in_the_demo_province_and_a_neighbour(env, cli):
    from hotline import domains
    from hotline.db import session_scope

    for seed in domains.demo_seeds():  # what `hotline demo` runs
        with session_scope() as session:
            seed(session)
    from directory.service_types import service_types

    for province in ("Quảng Ngãi", "Gia Lai"):
        for code in service_types():
            data = search_json(cli, "", "--type", code, "--province", province, "--limit", "1")
            assert data["results"] and not data["notices"], (province, code)
    # Đà Nẵng has no legal aid: the panel's search says so before the neighbours' offices.
    data = search_json(cli, "trợ giúp pháp lý đà nẵng")
    assert data["notices"][0] == "Không có dịch vụ trợ giúp pháp lý ở Thành phố Đà Nẵng."
    assert data["results"][0]["id"] == "demo-qn-legal-aid" and data["results"][0]["fallback"]
