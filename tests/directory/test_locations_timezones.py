"""Services offered at several locations (HSDS service_at_location) and entries whose opening
hours are written in a timezone of their own, through the CLI on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from freezegun import freeze_time
from sqlalchemy import create_engine, text

from tests.directory.conftest import search_ids, search_json


def _package() -> dict:
    """Two services of one organisation: s1 at a public office and a confidential shelter, s2 at the
    same public office (a shared location)."""
    return {"name": "two-places", "resources": [
        {"name": "organization", "data": [{"id": "org-1", "name": "Hội Phụ nữ Quảng Ngãi", "description": "Hội LHPN"}]},
        {"name": "service", "data": [
            {"id": "s1", "organization_id": "org-1", "name": "Tư vấn và tạm lánh", "x_service_type": "shelter", "status": "active",
             "x_open_24_7": "true", "x_beds_total": "6", "x_beds_free": "2"},
            {"id": "s2", "organization_id": "org-1", "name": "Tư vấn pháp lý", "x_service_type": "legal_aid", "status": "active"}]},
        {"name": "location", "data": [
            {"id": "office-qn", "location_type": "physical", "organization_id": "org-1", "name": "Văn phòng", "x_province_code": "51",
             "x_commune_code": "21025"},
            {"id": "safe-house-7", "location_type": "physical", "organization_id": "org-1", "name": "Nhà an toàn", "x_province_code": "48",
             "x_commune_code": "20257", "x_confidential": "true", "latitude": "16.05", "longitude": "108.22"}]},
        {"name": "address", "data": [
            {"id": "addr-office", "location_id": "office-qn", "address_1": "45 Hùng Vương", "city": "", "state_province": "", "postal_code": "", "country": "VN", "address_type": "physical"},
            {"id": "addr-safe", "location_id": "safe-house-7", "address_1": "9 Ngõ Kín", "city": "", "state_province": "", "postal_code": "", "country": "VN", "address_type": "physical"}]},
        {"name": "schedule", "data": [  # the shared office's own hours, for both its services
            {"id": "office-hours", "location_id": "office-qn", "freq": "WEEKLY", "byday": "MO,TU,WE,TH,FR",
             "opens_at": "07:30", "closes_at": "17:00"}]},
        {"name": "service_at_location", "data": [
            {"id": "sal-s1-office", "service_id": "s1", "location_id": "office-qn"},
            {"id": "sal-s1-safe", "service_id": "s1", "location_id": "safe-house-7"},
            {"id": "sal-s2-office", "service_id": "s2", "location_id": "office-qn"}]},
    ]}


def _rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(sql))]
    engine.dispose()
    return rows


def _table(pkg: dict, name: str) -> list[dict]:
    return next(r["data"] for r in pkg["resources"] if r["name"] == name)


def test_every_location_is_imported_under_its_ids_and_exported_back(env, cli, tmp_path: Path):
    src = tmp_path / "pkg.json"
    src.write_text(json.dumps(_package(), ensure_ascii=False), encoding="utf-8")
    code, out, err = cli("directory", "import", str(src))
    assert code == 0, err
    assert "2 mới" in out
    links = _rows(env.database_url, "SELECT l.id, s.id, l.location_id FROM dir_service_at_location l "
                                    "JOIN dir_services s ON s.pk = l.service_pk ORDER BY l.id")
    assert links == [("sal-s1-office", "s1", "office-qn"), ("sal-s1-safe", "s1", "safe-house-7"),
                     ("sal-s2-office", "s2", "office-qn")]
    assert _rows(env.database_url, "SELECT id FROM dir_locations ORDER BY id") == [("office-qn",), ("safe-house-7",)]
    # The second place is searchable by its commune; the first location is the one shown.
    assert search_ids(cli, "tam lanh hoa cuong") == ["s1"]
    hit = search_json(cli, "tư vấn và tạm lánh")["results"][0]
    assert hit["id"] == "s1" and "45 Hùng Vương" in hit["address"]

    full = tmp_path / "full.json"
    assert cli("directory", "export", "--format", "hsds-json", "--out", str(full), "--include-confidential")[0] == 0
    pkg = json.loads(full.read_text(encoding="utf-8"))
    assert {(r["id"], r["service_id"], r["location_id"]) for r in _table(pkg, "service_at_location")} == {
        ("sal-s1-office", "s1", "office-qn"), ("sal-s1-safe", "s1", "safe-house-7"), ("sal-s2-office", "s2", "office-qn")}
    assert sorted(r["id"] for r in _table(pkg, "location")) == ["office-qn", "safe-house-7"]  # shared: listed once
    assert {r["id"]: r["address_1"] for r in _table(pkg, "address")} == {"addr-office": "45 Hùng Vương",
                                                                         "addr-safe": "9 Ngõ Kín"}
    code, out, err = cli("directory", "import", str(full))
    assert code == 0, err
    assert "0 mới, 0 cập nhật, 2 không đổi" in out

    public = tmp_path / "public.json"
    assert cli("directory", "export", "--format", "hsds-json", "--out", str(public))[0] == 0
    text_ = public.read_text(encoding="utf-8")
    assert "Ngõ Kín" not in text_ and "45 Hùng Vương" in text_
    safe = next(r for r in _table(json.loads(text_), "location") if r["id"] == "safe-house-7")
    assert safe.get("latitude") is None and safe.get("x_commune_code") is None


def test_a_location_dropped_from_the_package_is_unlinked_and_a_bad_one_is_named(env, cli, tmp_path: Path):
    src = tmp_path / "pkg.json"
    src.write_text(json.dumps(_package(), ensure_ascii=False), encoding="utf-8")
    assert cli("directory", "import", str(src))[0] == 0
    pkg = _package()
    _table(pkg, "service_at_location")[:] = [r for r in _table(pkg, "service_at_location") if r["id"] != "sal-s1-safe"]
    src.write_text(json.dumps(pkg, ensure_ascii=False), encoding="utf-8")
    code, out, err = cli("directory", "import", str(src))
    assert code == 0, err
    assert "1 cập nhật, 1 không đổi" in out
    assert _rows(env.database_url, "SELECT l.id FROM dir_service_at_location l ORDER BY l.id") == [
        ("sal-s1-office",), ("sal-s2-office",)]
    assert search_ids(cli, "tam lanh hoa cuong") == []

    pkg = _package()
    _table(pkg, "location")[1]["x_province_code"] = "Atlantis"
    src.write_text(json.dumps(pkg, ensure_ascii=False), encoding="utf-8")
    code, out, err = cli("directory", "import", str(src))
    assert code == 2 and "service[0] [s1]" in err and "'safe-house-7'" in err and "Atlantis" in err


CSV = ("Mã,Tổ chức,Tên dịch vụ,Loại dịch vụ,Giờ mở cửa,Múi giờ,Tỉnh/thành phố\n"
       "vn-office,Org,Văn phòng tư vấn,counselling,T2-T6 08:00-17:00,,Quảng Ngãi\n"
       "tokyo-office,Org,Văn phòng Tokyo,counselling,T2-T6 08:00-17:00,asia/tokyo,Quảng Ngãi\n")


def test_timezone_column_is_validated_and_the_hours_are_read_in_it(env, cli, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV.replace("asia/tokyo", "Asia/Tokio"), encoding="utf-8")
    code, out, err = cli("directory", "import", str(bad))
    assert code == 2 and "line 3 [tokyo-office]" in err and "'Asia/Tokio'" in err and "Asia/Tokyo" in err
    good = tmp_path / "good.csv"
    good.write_text(CSV, encoding="utf-8")
    assert cli("directory", "import", str(good))[0] == 0
    # Monday 08:30 UTC: 15:30 in Vietnam (the centre's timezone), 17:30 in Tokyo (closed).
    with freeze_time("2026-11-23T08:30:00Z"):
        assert search_ids(cli, "", "--type", "counselling", "--open-now") == ["vn-office"]
        results = {r["id"]: r for r in search_json(cli, "van phong", "--type", "counselling")["results"]}
    assert results["tokyo-office"]["timezone"] == "Asia/Tokyo" and results["tokyo-office"]["open_now"] is False
    assert results["vn-office"]["timezone"] == "Asia/Ho_Chi_Minh" and results["vn-office"]["open_now"] is True
    # Monday 00:30 UTC: 07:30 in Vietnam (not yet open), 09:30 in Tokyo.
    with freeze_time("2026-11-23T00:30:00Z"):
        assert search_ids(cli, "", "--type", "counselling", "--open-now") == ["tokyo-office"]
    # The timezone survives an export in the template and a re-import changes nothing.
    out_csv = tmp_path / "export.csv"
    assert cli("directory", "export", "--format", "csv", "--out", str(out_csv))[0] == 0
    assert "Múi giờ" in out_csv.read_text(encoding="utf-8") and "Asia/Tokyo" in out_csv.read_text(encoding="utf-8")
    code, out, err = cli("directory", "import", str(out_csv))
    assert code == 0 and "2 không đổi" in out, out + err


def test_a_place_asked_finds_a_service_by_any_of_its_locations(env, cli, tmp_path: Path):
    """#13: s1's main office is in Quảng Ngãi, its other place in Đà Nẵng: asked for a shelter in
    Đà Nẵng, s1 is a service there (not "another place, ~100 km away") and says where else it is."""
    src = tmp_path / "pkg.json"
    src.write_text(json.dumps(_package(), ensure_ascii=False), encoding="utf-8")
    assert cli("directory", "import", str(src))[0] == 0
    found = search_json(cli, "nhà tạm lánh Đà Nẵng")
    hit = next(r for r in found["results"] if r["id"] == "s1")
    assert hit["fallback"] is False, found
    assert not found.get("notices"), found
    found = search_json(cli, "tạm lánh", "--province", "Đà Nẵng")
    assert [r["id"] for r in found["results"] if not r["fallback"]] == ["s1"]
    # elsewhere, s1 is still found, as a place outside the one asked
    found = search_json(cli, "tạm lánh", "--province", "Hà Nội")
    assert all(r["fallback"] for r in found["results"] if r["id"] == "s1")
