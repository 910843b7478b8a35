"""A partner's HSDS 3.0 package (``data/partner_hsds``: 40 Vietnamese services written by another
system: uuids, plural file names, its own taxonomy, RFC 5545 day lists, monthly and fortnightly
rules, a text-only schedule, several locations per service with their own phones and hours,
virtual national lines, service areas) through the CLI on both databases."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import empty_tables
from tests.directory.conftest import DATA, search_json

PARTNER = DATA / "partner_hsds"


def _rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(sql))]
    engine.dispose()
    return rows


def _service_id(name: str) -> str:
    with (PARTNER / "services.csv").open(encoding="utf-8") as fh:
        return next(r["id"] for r in csv.DictReader(fh) if r["name"] == name)


def test_the_whole_partner_package_imports_with_warnings_for_unknown_terms(env, cli):
    code, out, err = cli("directory", "import", str(PARTNER))
    assert code == 0, err
    assert "40 mới" in out and "0 bỏ qua" in out
    # Terms nobody mapped yet: kept, the services imported as "other", each with a warning.
    assert err.count("Nhóm tự lực") == 3 and "Hỗ trợ người khuyết tật" in err and "ánh xạ" in err
    types = dict(_rows(env.database_url, "SELECT service_type, count(*) FROM dir_services GROUP BY service_type"))
    assert types["trusted_address"] == 4 and types["social_work"] == 4 and types["other"] == 6
    kept = _rows(env.database_url, "SELECT code, name_vi, maps_to FROM dir_taxonomy_terms WHERE code = 'peer_support'")
    assert kept == [("peer_support", "Nhóm tự lực", None)]
    # Virtual national numbers serve everyone; a service area of two provinces is its coverage.
    national = search_json(cli, "Tổng đài quốc gia bảo vệ trẻ em")["results"][0]
    assert national["coverage"] == ["*"] and national["province"] == ""
    online = _service_id("Tư vấn pháp luật trực tuyến miễn phí")
    assert online in [r["id"] for r in search_json(cli, "", "--type", "legal_aid", "--province", "Gia Lai")["results"]]
    # A schedule given only as text is kept and shown as such.
    text_only = _rows(env.database_url, "SELECT count(*) FROM dir_services WHERE hours_note LIKE 'Liên hệ trước%'")
    assert text_only == [(3,)]


def test_byday_lists_monthly_and_fortnightly_rules_decide_open_at(env, cli):
    assert cli("directory", "import", str(PARTNER))[0] == 0
    weekdays = _service_id("Trung tâm Công tác xã hội Quảng Ngãi")  # MO-FR 07:30-11:30, 13:30-17:00
    monthly = _service_id("Chi nhánh trợ giúp pháp lý số 5, Quảng Ngãi")  # MONTHLY 1SA,3SA 08:00-11:00
    fortnightly = _service_id("Chi nhánh trợ giúp pháp lý số 27, Gia Lai")  # every 2nd week TU,TH from 2026-01-06

    def open_ids(when: str, *argv: str) -> set[str]:
        data = search_json(cli, *argv, "--open-at", when, "--limit", "100")
        assert data["open_at"].startswith(when.replace(" ", "T"))
        return {r["id"] for r in data["results"]}

    assert weekdays in open_ids("2026-12-02 09:00", "", "--type", "social_work")  # a Wednesday, not only Mondays
    assert weekdays in open_ids("2026-12-04 16:00", "", "--type", "social_work")  # Friday afternoon
    assert weekdays not in open_ids("2026-12-05 15:00", "", "--type", "social_work")  # Saturday afternoon
    assert weekdays not in open_ids("2026-12-02 12:30", "", "--type", "social_work")  # lunch
    assert monthly in open_ids("2026-12-05 09:00", "", "--type", "legal_aid")  # first Saturday of December
    assert monthly not in open_ids("2026-12-12 09:00", "", "--type", "legal_aid")  # second Saturday
    assert monthly in open_ids("2026-12-19 09:00", "", "--type", "legal_aid")  # third
    assert fortnightly in open_ids("2026-01-06 14:00", "", "--type", "legal_aid")  # dtstart week
    assert fortnightly not in open_ids("2026-01-13 14:00", "", "--type", "legal_aid")  # the week between
    assert fortnightly in open_ids("2026-01-22 14:00", "", "--type", "legal_aid")
    # Public holidays: closed on 2 September (National Day), a Wednesday in 2026.
    assert weekdays not in open_ids("2026-09-02 09:00", "", "--type", "social_work")
    code, out, err = cli("directory", "search", "x", "--open-at", "next tuesday")
    assert code != 0 and "next tuesday" in err and "22:00" in err


def test_several_locations_keep_their_own_phones_and_hours(env, cli):
    assert cli("directory", "import", str(PARTNER))[0] == 0
    sid = _service_id("Trung tâm Công tác xã hội Quảng Ngãi")
    locs = _rows(env.database_url, "SELECT l.location_id FROM dir_service_at_location l JOIN dir_services s "
                                   f"ON s.pk = l.service_pk WHERE s.id = '{sid}' ORDER BY l.pk")
    assert len(locs) == 2
    phones = _rows(env.database_url, "SELECT p.location_id FROM dir_phones p JOIN dir_services s ON s.pk = p.service_pk "
                                     f"WHERE s.id = '{sid}' ORDER BY p.pk")
    assert phones[0] == (None,) and phones[1] == (locs[1][0],)
    # The second place opens on weekends: the service is open on a Sunday morning through it.
    data = search_json(cli, "", "--type", "social_work", "--open-at", "2026-12-06 09:00", "--limit", "50")
    assert sid in [r["id"] for r in data["results"]]


def test_round_trip_import_export_import_gives_the_same_services(env, cli, tmp_path: Path):
    assert cli("directory", "import", str(PARTNER))[0] == 0
    first = tmp_path / "first"
    assert cli("directory", "export", "--format", "hsds-csv", "--out", str(first), "--include-confidential")[0] == 0
    with (first / "schedules.csv").open(encoding="utf-8") as fh:
        rules = list(csv.DictReader(fh))
    assert {r["byday"] for r in rules} >= {"MO,TU,WE,TH,FR", "1SA,3SA", "TU,TH", "SA,SU"}
    assert any(r["interval"] == "2" and r["dtstart"] == "2026-01-06" and r["timezone"] == "7" for r in rules)
    assert any(r["valid_from"] == "2025-01-01" for r in rules)
    # Into the same database: nothing changes.
    code, out, err = cli("directory", "import", str(first))
    assert code == 0 and "0 mới, 0 cập nhật, 40 không đổi" in out, out + err
    # Into an empty database: the same package comes out again, file for file.
    empty_tables(env.database_url)
    from directory.search import clear_caches

    clear_caches()
    code, out, err = cli("directory", "import", str(first))
    assert code == 0 and "40 mới" in out, err
    second = tmp_path / "second"
    assert cli("directory", "export", "--format", "hsds-csv", "--out", str(second), "--include-confidential")[0] == 0
    for file in sorted(first.iterdir()):
        assert (second / file.name).read_text(encoding="utf-8") == file.read_text(encoding="utf-8"), file.name


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "pkg"
    shutil.copytree(PARTNER, folder)
    return folder


def _edit(file: Path, change) -> None:
    with file.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows, fields = list(reader), list(reader.fieldnames or [])
    fields = change(rows, fields) or fields
    with file.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fields)
        w.writeheader()
        w.writerows(rows)


def test_broken_packages_give_a_reason_per_row_and_write_nothing(env, cli, tmp_path: Path):
    pkg = _copy(tmp_path)

    def dup_and_dangle(rows, fields):
        rows[1]["id"] = rows[0]["id"]  # duplicate id
        rows[2]["organization_id"] = "no-such-org"  # dangling reference
        for r in rows:
            r["colour"] = "blue"  # a column HSDS does not define
        return [*fields, "colour"]

    _edit(pkg / "services.csv", dup_and_dangle)
    _edit(pkg / "schedules.csv", lambda rows, f: rows[-1].update(byday="Monday-Friday"))
    (pkg / "languages.csv").write_bytes("id,service_id,name,code\nx,y,Ti\xeáng Vi\xeạt,vi\n".encode("cp1258", "replace"))
    (pkg / "phones.csv").unlink()
    code, out, err = cli("directory", "import", str(pkg))
    assert code == 2
    assert "services.csv line 3" in err and "trùng" in err  # duplicate id, with its line
    assert "no-such-org" in err
    assert "'colour'" in err
    assert "Monday-Friday" in err
    assert "languages.csv" in err and "UTF-8" in err
    assert "phones.csv" in err
    assert "không ghi gì cả" in err
    assert _rows(env.database_url, "SELECT count(*) FROM dir_services") == [(0,)]
    # --skip-invalid writes what is sound: left out are both rows sharing an id (which one is right is
    # not ours to guess), the one naming a missing organisation and the one whose schedule is wrong.
    code, out, err = cli("directory", "import", str(pkg), "--skip-invalid")
    assert code == 0, err
    assert _rows(env.database_url, "SELECT count(*) FROM dir_services")[0][0] == 36


def test_missing_datapackage_and_bad_json_are_clear_errors(env, cli, tmp_path: Path):
    pkg = _copy(tmp_path)
    (pkg / "datapackage.json").write_text("{not json", encoding="utf-8")
    code, out, err = cli("directory", "import", str(pkg))
    assert code == 2 and "datapackage.json" in err and "Traceback" not in err
    (pkg / "datapackage.json").unlink()
    code, out, err = cli("directory", "import", str(pkg))
    assert code == 2 and "datapackage.json" in err


def test_a_json_package_with_rows_inline_is_read_the_same(env, cli, tmp_path: Path):
    meta = json.loads((PARTNER / "datapackage.json").read_text(encoding="utf-8"))
    for res in meta["resources"]:
        with (PARTNER / res.pop("path")).open(encoding="utf-8") as fh:
            res["data"] = [{k: v for k, v in r.items() if v != "" or k in ("postal_code", "city", "address_1")}
                           for r in csv.DictReader(fh)]
    path = tmp_path / "partner.json"
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    code, out, err = cli("directory", "import", str(path))
    assert code == 0 and "40 mới" in out, err


def test_malformed_json_packages_are_refused_with_a_reason(env, cli, tmp_path: Path):
    for body, word in (({"resources": {"service": []}}, "resources"),
                       ({"resources": [{"name": "service", "data": {"id": "x"}}]}, "data"),
                       ({"resources": [{"name": "service", "data": ["x"]}]}, "data")):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(body), encoding="utf-8")
        code, out, err = cli("directory", "import", str(path))
        assert code == 2 and word in err and "Traceback" not in err, err
