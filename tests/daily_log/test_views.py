"""Supervisor pages over HTTP: who may see what, build, comment, sign off (which locks the
records), the flag after a later edit, CSV/XLSX/print exports and their audit."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from hotline.audit.models import AuditEntry
from hotline.calls.models import CallRecord
from hotline.centres.models import Centre
from hotline.cli import build_parser
from hotline.db import session_scope
from tests.daily_log.conftest import add_call, add_record, sign_in, utc

build_parser()
JSON = {"Accept": "application/json"}
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
TODAY = datetime.now(HCM).date()
DAY = TODAY - timedelta(days=1)  # real time: the app's routes cannot be built under freezegun
URL = f"/daily-log/default/{DAY.isoformat()}"


def at(hour: int, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=HCM).astimezone(ZoneInfo("UTC"))


@pytest.fixture
def day(staff):
    with session_scope() as db:
        db.get(Centre, staff.centre_id).created_at = utc(2026, 1, 1)
        db.get(Centre, staff.other_centre_id).created_at = utc(2026, 1, 1)
    tvv1 = staff.ids["tvv1"]
    _, rid = add_call(staff.centre_id, at(9), counsellor_id=tvv1,
                      record={"issues": ("dv.physical",), "notes": "BÍ MẬT: địa chỉ nhà chị ấy"})
    add_call(staff.centre_id, at(10), status="missed", wait=None, talk=None)
    with session_scope() as db:
        add_record(db, staff.centre_id, created=at(11), channel="walk_in", notes="=HYPERLINK(x)",
                   counsellor_id=tvv1)
    staff.record_id = rid
    return staff


def audits(action: str) -> list[AuditEntry]:
    with session_scope() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_counsellors_partners_and_other_centres_are_kept_out(client, day):
    for user in ("tvv1", "partner1"):
        sign_in(client, user)
        for url in ("/daily-log", URL, URL + "/export.csv", "/reports"):
            assert client.get(url, headers=JSON).status_code == 403, (user, url)
    sign_in(client, "gs_other")
    assert client.get(URL, headers=JSON).status_code == 404
    assert client.get(URL + "/export.csv", headers=JSON).status_code == 404
    assert client.get("/daily-log?centre=default", headers=JSON).status_code == 404
    assert client.get("/daily-log").status_code == 200  # their own centre
    sign_in(client, "admin1")
    page = client.get("/daily-log?centre=other")
    assert page.status_code == 200 and "Other centre" in page.text


def test_build_review_comment_sign_off_then_a_locked_edit_flags_the_day(client, day):
    token = sign_in(client, "gs1")
    days = client.get("/daily-log")
    assert f'data-day="{DAY.isoformat()}"' in days.text and 'data-state="not_built"' in days.text
    r = client.post(URL + "/build", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(URL)
    assert 'data-state="built"' in page.text and f'href="/records/{day.record_id}"' in page.text
    assert "BÍ MẬT" not in page.text
    assert client.post(URL + "/comments", data={"csrf_token": token, "text": "  "}).status_code == 422
    client.post(URL + "/comments", data={"csrf_token": token, "text": "<b>Đã xem</b>"})
    page = client.get(URL)
    assert "&lt;b&gt;Đã xem&lt;/b&gt;" in page.text
    assert client.post(URL + "/sign-off", data={}).status_code == 403  # no CSRF token
    r = client.post(URL + "/sign-off", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert 'data-state="signed_off"' in client.get(URL).text
    with session_scope() as db:
        assert all(rec.locked_at is not None for rec in db.scalars(select(CallRecord)))
    # a counsellor's edit without a reason is refused; with one it lands and flags the day
    t1 = sign_in(client, "tvv1")
    body = {"version": 1, "fields": {"risk": "high"}}
    assert client.put(f"/records/{day.record_id}", json=body, headers={**JSON, "X-CSRF-Token": t1}).status_code == 422
    body["fields"]["lock_reason"] = "người gọi gọi lại, bổ sung nguy cơ"
    assert client.put(f"/records/{day.record_id}", json=body, headers={**JSON, "X-CSRF-Token": t1}).status_code == 200
    token = sign_in(client, "gs1")
    page = client.get(URL)
    assert 'data-state="changed_after_sign_off"' in page.text
    assert "người gọi gọi lại, bổ sung nguy cơ" in page.text and 'id="dl-stale"' in page.text
    assert 'data-state="changed_after_sign_off"' in client.get("/daily-log").text
    # signing off again needs a rebuild first
    assert client.post(URL + "/sign-off", data={"csrf_token": token}).status_code == 422
    client.post(URL + "/build", data={"csrf_token": token})
    client.post(URL + "/sign-off", data={"csrf_token": token})
    assert 'data-state="signed_off"' in client.get(URL).text
    assert [a.actor_username for a in audits("daily_log.sign_off")] == ["gs1", "gs1"]


def test_future_and_unended_days_are_refused_with_the_reason(client, day):
    token = sign_in(client, "gs1")
    r = client.post(f"/daily-log/default/{(TODAY + timedelta(days=3)).isoformat()}/build", data={"csrf_token": token})
    assert r.status_code == 422 and "còn ở tương lai" in r.text and 'id="dl-build"' not in r.text
    r = client.post(f"/daily-log/default/{TODAY.isoformat()}/build", data={"csrf_token": token})
    assert r.status_code == 422 and "chưa kết thúc" in r.text
    r = client.post("/daily-log/default/2025-12-31/build", data={"csrf_token": token})
    assert r.status_code == 422 and "bắt đầu từ 01/01/2026" in r.text
    assert client.get("/daily-log/default/not-a-date").status_code == 422


def test_refusals_come_in_english_for_an_english_user(client, day, staff):
    from hotline.auth.models import User

    with session_scope() as db:
        db.get(User, staff.ids["gs1"]).language = "en"
    token = sign_in(client, "gs1")
    r = client.post(f"/daily-log/default/{(TODAY + timedelta(days=3)).isoformat()}/build", data={"csrf_token": token})
    assert r.status_code == 422 and "is in the future (today at default is" in r.text and "tương lai" not in r.text
    r = client.post("/daily-log/default/2025-12-31/build", data={"csrf_token": token})
    assert r.status_code == 422 and "Centre default exists since 01/01/2026" in r.text
    r = client.get("/daily-log/default/not-a-date")
    assert r.status_code == 422 and "is not a date (dd/mm/yyyy or yyyy-mm-dd)" in r.text


def test_exports_carry_no_notes_say_unsigned_and_are_audited(client, day):
    token = sign_in(client, "gs1")
    client.post(URL + "/build", data={"csrf_token": token})
    r = client.get(URL + "/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f"daily-log-default-{DAY.isoformat()}.csv" in r.headers["content-disposition"]
    text = r.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert "CHƯA KÝ DUYỆT" in rows[1][0]
    assert "BÍ MẬT" not in text and "HYPERLINK" not in text
    calls = rows[[i for i, row in enumerate(rows) if row and row[0] == "Cuộc gọi trong ngày"][0] + 2:]
    assert len(calls) == 3 and any(row[4] == "'+849****678" for row in calls)
    x = client.get(URL + "/export.xlsx")
    assert x.status_code == 200
    wb = load_workbook(io.BytesIO(x.content))
    cells = [str(c.value) for ws in wb for row in ws.iter_rows() for c in row if c.value is not None]
    assert "CHƯA KÝ DUYỆT" in wb.worksheets[0]["A2"].value and "CHƯA KÝ DUYỆT" in wb.worksheets[1]["A2"].value
    assert not any("BÍ MẬT" in c or "HYPERLINK" in c for c in cells)
    assert wb.worksheets[0]["A1"].value == "Sổ cuộc gọi hằng ngày"
    p = client.get(URL + "/print")
    assert p.status_code == 200 and 'id="dl-unsigned"' in p.text and "BÍ MẬT" not in p.text
    client.post(URL + "/sign-off", data={"csrf_token": token})
    signed = client.get(URL + "/export.csv").content.decode("utf-8-sig")
    assert "CHƯA KÝ DUYỆT" not in signed and "Đã ký duyệt" in signed
    assert [a.detail["state"] for a in audits("daily_log.export_csv")] == ["built", "signed_off"]
    assert len(audits("daily_log.export_xlsx")) == 1 and len(audits("daily_log.print")) == 1
    # an unbuilt day has nothing to export
    assert client.get(f"/daily-log/default/{(DAY - timedelta(days=1)).isoformat()}/export.csv",
                      headers=JSON).status_code == 404


def test_administrators_see_failed_builds_with_the_reason(client, day):
    from daily_log import service

    with session_scope() as db:
        for _ in range(2):
            service.record_failure(db, centre_id=day.centre_id, day=DAY - timedelta(days=2),
                                   reason="OperationalError: disk full")
    sign_in(client, "admin1")
    page = client.get("/daily-log/failures")
    assert "disk full" in page.text and (DAY - timedelta(days=2)).strftime("%d/%m/%Y") in page.text
    assert "disk full" in client.get("/daily-log").text
    sign_in(client, "gs1")
    assert client.get("/daily-log/failures", headers=JSON).status_code == 403
    token = sign_in(client, "admin1")
    client.post(f"/daily-log/default/{(DAY - timedelta(days=2)).isoformat()}/build", data={"csrf_token": token})
    assert "disk full" not in client.get("/daily-log/failures").text
