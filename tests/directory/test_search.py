"""Relevance, filters and open-now through ``hotline directory search --json`` on both databases."""

from __future__ import annotations

from freezegun import freeze_time

from tests.directory.conftest import search_ids, search_json


def test_old_province_name_finds_the_shelter_in_the_new_province_first_then_nearby(loaded):
    ids = search_ids(loaded, "nhà tạm lánh Kon Tum")
    assert ids[0] == "qn-shelter"  # Kon Tum is in Quảng Ngãi now
    shelters = [i for i in ids if i.endswith("shelter")]
    # then the nearest shelters: Gia Lai and Đà Nẵng are closer to Kon Tum than Hà Nội
    assert shelters.index("gl-shelter") < shelters.index("hn-shelter")
    assert shelters.index("dn-shelter") < shelters.index("hn-shelter")
    assert "hn-police" not in ids  # a type named in the query is the type asked for


def test_diacritics_ignored_both_ways(loaded):
    assert search_ids(loaded, "nha tam lanh quang ngai")[0] == "qn-shelter"
    # stored without diacritics, asked with them
    assert search_ids(loaded, "Trung tâm hỗ trợ phụ nữ")[0] == "hn-shelter"
    # đ folds to d both ways
    assert search_ids(loaded, "dia chi tin cay hoa cuong")[0] == "dn-shelter"
    assert search_ids(loaded, "Địa chỉ tin cậy Hòa Cường")[0] == "dn-shelter"


def test_typos_are_tolerated(loaded):
    data = search_json(loaded, "tro giup phapp lyy")
    assert data["results"][0]["id"] == "qn-legal"
    assert data["interpreted"]["corrections"]
    assert search_ids(loaded, "hoan kiemm")[:1] in (["hn-police"], ["hn-shelter"])


def test_phone_fragments_and_national_numbers(loaded):
    assert search_ids(loaded, "345 678") == ["qn-shelter"]
    assert search_ids(loaded, "+84 905 111 222") == ["dn-shelter"]
    assert search_ids(loaded, "111")[0] == "vn-111"


def test_filters(loaded):
    assert set(search_ids(loaded, "", "--type", "shelter", "--free-bed")) == {"qn-shelter", "hn-shelter", "gl-shelter"}
    assert set(search_ids(loaded, "", "--type", "Nhà tạm lánh", "--accessible")) == {"qn-shelter", "hn-shelter"}
    assert search_ids(loaded, "", "--language", "hmn") == ["gl-shelter"]
    assert set(search_ids(loaded, "", "--province", "Kon Tum")) == {"qn-shelter", "qn-legal"}
    assert search_ids(loaded, "", "--province", "ha noi", "--commune", "Phuong Hoan Kiem", "--type", "police") == ["hn-police"]


def test_unknown_filter_values_are_refused_with_suggestions(loaded):
    code, out, err = loaded("directory", "search", "x", "--province", "Quang Ngaii")
    assert code == 2 and "Quảng Ngãi" in err
    code, out, err = loaded("directory", "search", "x", "--type", "spaceship")
    assert code == 2 and "shelter" in err


def test_results_carry_number_open_state_beds_and_verification(loaded):
    with freeze_time("2026-11-23T03:00:00Z"):  # Monday 10:00 in Vietnam
        r = search_json(loaded, "nha tam lanh ha noi")["results"][0]
    assert r["id"] == "hn-shelter"
    assert r["call_number"] == "024 3999 8888" or r["call_number"].replace(" ", "") == "02439998888"
    assert r["open_now"] is True and r["beds_free"] == 5 and r["beds_total"] == 20
    assert r["last_verified_at"].startswith("2025-01-15")


def _open_ids(cli, when: str) -> set[str]:
    with freeze_time(when):
        return set(search_ids(cli, "", "--type", "shelter", "--open-now"))


def test_open_now_around_midnight(loaded):
    # dn-shelter: Friday 20:00 → 02:00; hn-shelter: weekdays 08:00-17:00; the others 24/7.
    always = {"qn-shelter", "gl-shelter", "cwd-peace-house"}  # cwd: seeded, 24/7
    assert _open_ids(loaded, "2026-11-27T16:30:00Z") == always | {"dn-shelter"}  # Fri 23:30 ICT
    assert _open_ids(loaded, "2026-11-27T18:30:00Z") == always | {"dn-shelter"}  # Sat 01:30 ICT, still Friday night
    assert _open_ids(loaded, "2026-11-27T19:30:00Z") == always  # Sat 02:30 ICT
    assert _open_ids(loaded, "2026-11-26T16:30:00Z") == always  # Thu 23:30 ICT: Friday's night not begun
    assert _open_ids(loaded, "2026-11-27T00:59:00Z") == always  # Fri 07:59 ICT
    assert _open_ids(loaded, "2026-11-27T01:00:00Z") == always | {"hn-shelter"}  # Fri 08:00 ICT


def test_open_now_on_public_holidays(loaded):
    always = {"qn-shelter", "gl-shelter", "cwd-peace-house"}  # cwd: seeded, 24/7
    assert _open_ids(loaded, "2026-09-02T03:00:00Z") == always  # National Day, Wednesday 10:00
    assert _open_ids(loaded, "2026-02-18T03:00:00Z") == always  # Tết (lunar), Wednesday
    assert _open_ids(loaded, "2026-09-09T03:00:00Z") == always | {"hn-shelter"}  # an ordinary Wednesday


def test_the_last_word_may_be_unfinished(loaded):
    # "hoa" is a whole word of the entry; "cuo" is the start of "Cường", still being typed
    assert search_ids(loaded, "hoa cuo")[0] == "dn-shelter"
    assert search_ids(loaded, "dia chi tin ca")[0] == "dn-shelter"
