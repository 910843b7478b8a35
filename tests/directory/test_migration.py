"""directory_0003 through ``hotline db``: shelters that call themselves "địa chỉ tin cậy" become
trusted addresses, the others stay shelters; and the branch goes down and up again."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.directory.conftest import search_json


def _exec(url: str, *sql: str) -> list[tuple]:
    engine = create_engine(url)
    out: list[tuple] = []
    with engine.begin() as conn:
        for s in sql:
            res = conn.execute(text(s))
            if s.lstrip().startswith("SELECT"):
                out = [tuple(r) for r in res]
    engine.dispose()
    return out


def test_trusted_addresses_leave_the_shelters_with_the_migration(env, cli):
    code, out, err = cli("db", "downgrade", "directory_0002")
    assert code == 0, err
    url = env.database_url
    _exec(url, "INSERT INTO dir_taxonomy_terms (id, taxonomy, code, name_vi, name_en) VALUES "
               "('hotline-service-type:shelter', 'hotline-service-type', 'shelter', 'Nhà tạm lánh', 'Shelter')",
          "INSERT INTO dir_organizations (id, name, description, email, website, created_at, updated_at) VALUES "
          "('o1', 'Hội Phụ nữ', '', '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
    for pk, sid, name, doc in ((1, "tc-1", "Địa chỉ tin cậy thôn 3", " dia chi tin cay thon 3 quang ngai "),
                               (2, "sh-1", "Nhà tạm lánh Quảng Ngãi", " nha tam lanh quang ngai ")):
        _exec(url, "INSERT INTO dir_services (pk, id, organization_id, name, alternate_name, description, service_type, "
                   "status, email, url, hours_text, open_24_7, open_on_holidays, timezone, languages, accessible, "
                   "referral_accepts, referral_method, referral_webhook_url, referral_webhook_secret, referral_email, "
                   "referral_sms, province_code, verified, last_verified_by, source_note, search_doc, phone_digits, "
                   "content_hash, created_at, updated_at) VALUES "
                   f"({pk}, '{sid}', 'o1', '{name}', '', '', 'shelter', 'active', '', '', '24/7', true, true, '', ',vi,', "
                   f"false, false, '', '', '', '', '', '51', false, '', '', '{doc}', '', 'x', CURRENT_TIMESTAMP, "
                   "CURRENT_TIMESTAMP)",
              f"INSERT INTO dir_attributes (service_pk, taxonomy_term_id) VALUES ({pk}, 'hotline-service-type:shelter')")
    code, out, err = cli("db", "upgrade")
    assert code == 0, err
    rows = _exec(url, "SELECT id, service_type FROM dir_services ORDER BY id")
    assert rows == [("sh-1", "shelter"), ("tc-1", "trusted_address")]
    assert _exec(url, "SELECT a.taxonomy_term_id FROM dir_attributes a WHERE a.service_pk = 1") == [
        ("hotline-service-type:trusted_address",)]
    assert _exec(url, "SELECT action FROM dir_changes WHERE service_id = 'tc-1'") == [("update",)]
    # Searched as its own type, and told apart from the shelter.
    hits = search_json(cli, "địa chỉ tin cậy quảng ngãi")["results"]
    assert [h["id"] for h in hits if not h["fallback"]] == ["tc-1"]
    assert hits[0]["service_type_vi"] == "Địa chỉ tin cậy"
