"""Import (CSV template, HSDS CSV tables, HSDS JSON) and export through the CLI, both databases."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.directory.conftest import DATA, search_ids


def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return n


def _updated(url: str) -> dict[str, str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, updated_at FROM dir_services")).all())
    engine.dispose()
    return {k: str(v) for k, v in rows.items()}


def test_broken_rows_are_all_reported_and_nothing_is_written(env, cli):
    code, out, err = cli("directory", "import", str(DATA / "broken.csv"))
    assert code == 2
    assert "line 3 [bad-province]" in err and "Kon Tum" in err  # closest match suggested
    assert "line 4 [bad-hours]" in err and "T2-T6 25:00-17:00" in err  # the value is shown
    assert "line 5 [bad-commune]" in err and "Phường Hoàn Kiếm" in err
    assert "không ghi gì cả" in err  # the administrators' default language
    assert _count(env.database_url, "dir_services") == 0


def test_skip_invalid_writes_the_valid_rows_and_warns_on_duplicate_phones(env, cli):
    code, out, err = cli("directory", "import", str(DATA / "broken.csv"), "--skip-invalid")
    assert code == 0, err
    assert "2 mới" in out and "3 bỏ qua" in out
    assert "CẢNH BÁO line 6 [ok-2]" in err and "trùng với" in err
    assert _count(env.database_url, "dir_services") == 2
    assert search_ids(cli, "second good") == ["ok-2"]


def test_progress_is_shown(env, cli):
    code, out, err = cli("directory", "import", str(DATA / "sample.csv"))
    assert code == 0
    assert "kiểm tra [##############################] 100% 6/6" in err and "ghi [" in err and "6/6" in err


def test_reimport_updates_by_id_and_changes_nothing_else(env, cli, tmp_path: Path):
    assert cli("directory", "import", str(DATA / "sample.csv"))[0] == 0
    before = _updated(env.database_url)
    history_before = _count(env.database_url, "dir_changes")
    code, out, err = cli("directory", "import", str(DATA / "sample.csv"))
    assert "0 mới, 0 cập nhật, 6 không đổi" in out
    assert _updated(env.database_url) == before
    assert _count(env.database_url, "dir_changes") == history_before
    # change one row: only that row is updated
    text_ = (DATA / "sample.csv").read_text(encoding="utf-8").replace("Nhà tạm lánh Gia Lai", "Nhà tạm lánh Pleiku")
    changed = tmp_path / "changed.csv"
    changed.write_text(text_, encoding="utf-8")
    code, out, err = cli("directory", "import", str(changed))
    assert "0 mới, 1 cập nhật, 5 không đổi" in out
    after = _updated(env.database_url)
    assert [k for k in after if after[k] != before[k]] == ["gl-shelter"]
    assert search_ids(cli, "pleiku") == ["gl-shelter"]


def test_english_headers_and_unknown_columns(env, cli, tmp_path: Path):
    good = tmp_path / "en.csv"
    good.write_text("ID,Organization,Service name,Service type,Province\nx1,Org,Legal help,Legal aid,Hue\n", encoding="utf-8")
    assert cli("directory", "import", str(good))[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,Organization,Colour\nx1,Org,red\n", encoding="utf-8")
    code, out, err = cli("directory", "import", str(bad))
    assert code == 2 and "'Colour'" in err


def _export(cli, tmp_path: Path, fmt: str, *extra: str) -> str:
    out = tmp_path / f"export-{fmt}{'-full' if extra else ''}"
    code, _, err = cli("directory", "export", "--format", fmt, "--out", str(out), *extra)
    assert code == 0, err
    if out.is_dir():
        return "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.iterdir()))
    return out.read_text(encoding="utf-8")


def test_confidential_addresses_are_absent_from_public_exports(env, cli, tmp_path: Path):
    assert cli("directory", "import", str(DATA / "sample.csv"))[0] == 0
    for fmt in ("csv", "hsds-csv", "hsds-json"):
        public = _export(cli, tmp_path, fmt)
        assert "Bí Mật" not in public, fmt  # qn-shelter's confidential street address
        assert "0123456789abcdef0123" not in public, fmt  # the webhook secret
        assert "Hùng Vương" in public or "Hung Vuong" in public or "45 Hùng Vương" in public, fmt  # public address kept
        full = _export(cli, tmp_path, fmt, "--include-confidential")
        assert "Bí Mật" in full and "0123456789abcdef0123" in full, fmt


def test_hsds_round_trip_csv_tables_and_json(env, cli, tmp_path: Path):
    assert cli("directory", "import", str(DATA / "sample.csv"))[0] == 0
    folder = tmp_path / "hsds"
    assert cli("directory", "export", "--format", "hsds-csv", "--out", str(folder), "--include-confidential")[0] == 0
    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    assert {r["name"] for r in package["resources"]} >= {"organization", "service", "location", "address", "phone",
                                                        "schedule", "service_at_location", "taxonomy_term",
                                                        "attribute", "language", "service_area"}
    with (folder / "services.csv").open(encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 6
    code, out, err = cli("directory", "import", str(folder))
    assert code == 0, err
    assert "hsds-csv" in out and "6 không đổi" in out
    js = tmp_path / "hsds.json"
    assert cli("directory", "export", "--format", "hsds-json", "--out", str(js), "--include-confidential")[0] == 0
    code, out, err = cli("directory", "import", str(js))
    assert code == 0 and "hsds-json" in out and "6 không đổi" in out


def test_hsds_json_with_a_bad_row_names_it(env, cli, tmp_path: Path):
    pkg = {"resources": [
        {"name": "organization", "data": [{"id": "o1", "name": "Org", "description": "An organisation"}]},
        {"name": "service", "data": [{"id": "s1", "organization_id": "o1", "name": "Fine", "status": "active",
                                      "x_service_type": "police"},
                                     {"id": "s2", "organization_id": "o1", "name": "", "status": "active",
                                      "x_service_type": "police"}]},
        {"name": "location", "data": [{"id": "l1", "location_type": "physical", "organization_id": "o1",
                                       "x_province_code": "51"}]},
        {"name": "service_at_location", "data": [{"id": "a", "service_id": "s1", "location_id": "l1"},
                                                 {"id": "b", "service_id": "s2", "location_id": "l1"}]},
    ]}
    path = tmp_path / "pkg.json"
    path.write_text(json.dumps(pkg), encoding="utf-8")
    code, out, err = cli("directory", "import", str(path))
    assert code == 2 and "service[1] [s2]" in err and "thiếu tên dịch vụ" in err
