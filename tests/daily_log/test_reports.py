"""Periodic reports: reporting periods from settings, sex-disaggregated tables and the two
indicators computed by SQL aggregation (the same on SQLite and PostgreSQL), the page with its
SVG charts, headers and recipients from settings, CSV and CLI output."""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import date, timedelta

import pytest

from daily_log import charts, reports, service
from hotline.centres.models import Centre
from hotline.cli import build_parser, main
from hotline.db import session_scope
from hotline.i18n import error_text
from hotline.settings import reset_settings
from referral.models import Referral
from tests.daily_log.conftest import add_call, add_record, sign_in, utc

build_parser()


def test_reporting_periods_follow_the_plan_and_settings(env, monkeypatch):
    first, second = reports.half_years(2026)
    assert (first.start, first.end, first.due) == (date(2025, 12, 15), date(2026, 6, 14), date(2026, 6, 15))
    assert (second.start, second.end, second.due) == (date(2026, 6, 15), date(2026, 12, 14), date(2026, 12, 15))
    year = reports.annual(2026)
    assert (year.start, year.end, year.due) == (date(2025, 12, 15), date(2026, 12, 14), date(2026, 12, 15))
    assert [p.label for p in reports.upcoming_due(date(2026, 11, 23))] == ["2026", "2027-1"]
    monkeypatch.setenv("HOTLINE_REPORT_YEAR_START", "01-01")
    monkeypatch.setenv("HOTLINE_REPORT_HALF_YEAR_START", "07-01")
    monkeypatch.setenv("HOTLINE_REPORT_DUE_HALF_YEAR", "07-20")
    monkeypatch.setenv("HOTLINE_REPORT_DUE_ANNUAL", "01-20")
    reset_settings()
    first, second = reports.half_years(2026)
    assert (first.start, first.end, second.start, second.end) == (
        date(2026, 1, 1), date(2026, 6, 30), date(2026, 7, 1), date(2026, 12, 31))
    assert first.due == date(2026, 7, 20)
    p = reports.resolve_period(half_year="2026-2")
    assert (p.start, p.end, p.kind) == (date(2026, 7, 1), date(2026, 12, 31), "half_year")
    # The message is in the current language: Vietnamese by default (the CLI), English on request.
    for bad, why, why_en in ((dict(half_year="2026-3"), "NĂM-1", "YEAR-1"),
                             (dict(since="10/11/2026", until="01/11/2026"), "trước ngày bắt đầu", "before"),
                             (dict(since="2026-11-01"), "Chọn khoảng ngày", "date range"),
                             (dict(since="31/02/2026", until="01/03/2026"), "không phải ngày", "not a date")):
        with pytest.raises(reports.ReportError, match=why) as caught:
            reports.resolve_period(**bad)
        assert why_en in error_text(caught.value, "en") and why not in error_text(caught.value, "en")
    monkeypatch.setenv("HOTLINE_REPORT_YEAR_START", "13-45")
    reset_settings()
    with pytest.raises(reports.ReportError, match="MM-DD"):
        reports.annual(2026)


def _seed(staff) -> dict[str, int]:
    cid, tvv = staff.centre_id, staff.ids["tvv1"]
    t = utc(2026, 3, 2, 2)  # 09:00 in Hồ Chí Minh City
    ids = {}
    _, ids["served"] = add_call(cid, t, wait=10, talk=100, counsellor_id=tvv,
                                record={"issues": ("dv.physical", "dv.psychological"), "level": 3, "sex": "female"})
    _, ids["via_referral"] = add_call(cid, t + timedelta(days=1), wait=20, talk=200, counsellor_id=tvv,
                                      record={"issues": ("gbv.rape",), "level": 1, "outcome": "resolved", "sex": "female"})
    _, ids["unserved"] = add_call(cid, t + timedelta(days=1, hours=5), wait=30, talk=300, counsellor_id=tvv,
                                  record={"issues": ("dv.economic",), "level": 1, "outcome": "caller_declined",
                                          "sex": "male", "role": "family_member"})
    _, ids["perp_c"] = add_call(cid, t + timedelta(days=2), wait=40, talk=400, counsellor_id=tvv,
                                record={"issues": ("dv.physical",), "level": 2, "sex": "male", "role": "perpetrator"})
    _, ids["perp_n"] = add_call(cid, t + timedelta(days=2, hours=1), wait=50, talk=60, counsellor_id=tvv,
                                record={"issues": ("dv.psychological",), "level": 1, "outcome": "caller_declined",
                                        "sex": "male", "role": "perpetrator"})
    add_call(cid, t + timedelta(days=3), wait=60, talk=500, counsellor_id=tvv,
             record={"issues": ("dv.sexual",), "level": 3, "sex": "female", "consent_statistics": False})
    add_call(cid, t + timedelta(days=3, hours=1), wait=70, talk=None, status="abandoned")
    add_call(cid, t + timedelta(days=40), wait=10, talk=100, counsellor_id=tvv, record={})  # outside the range
    with session_scope() as db:
        ids["walk_in"] = add_record(db, cid, created=t + timedelta(days=4), channel="walk_in",
                                    issues=("legal_info",), level=1, sex="other", role="survivor")
        db.add(Referral(public_id=secrets.token_hex(8), code="HL-TEST01", record_id=ids["via_referral"], centre_id=cid,
                        service_id="svc-1", service_name="Nhà tạm lánh", organization_id="org-1", method="webhook",
                        state="accepted", urgency="urgent", expires_at=t + timedelta(days=30),
                        created_at=t + timedelta(days=1, minutes=5)))
    return ids


def _report(staff):
    with session_scope() as db:
        c = db.get(Centre, staff.centre_id)
        return reports.build_report(db, centre=c, period=reports.resolve_period(since="01/03/2026",
                                                                                 until="31/03/2026"))


def test_tables_and_indicators(staff):
    _seed(staff)
    r = _report(staff)
    assert r.totals["received"] == 7 and r.totals["answered"] == 6 and r.totals["abandoned"] == 1
    assert r.totals["records_counted"] == 6 and r.totals["other_channels"] == 1
    assert r.tables["sex"]["female"]["total"] == 2 and r.tables["sex"]["male"]["total"] == 3
    assert r.tables["issue_group"]["dv"] == {"female": 1, "male": 3, "other": 0, "unknown": 0, "total": 4}
    assert r.tables["issue"]["dv.physical"]["total"] == 2 and r.tables["issue"]["dv.psychological"]["total"] == 2
    assert r.tables["level"]["1"] == {"female": 1, "male": 2, "other": 1, "unknown": 0, "total": 4}
    assert "dv.sexual" not in r.tables["issue"]  # no consent to statistics
    victims = r.indicators["gbv_victims_served"]
    assert (victims["numerator"], victims["denominator"], victims["share"]) == (2, 3, 66.7)
    assert victims["by_sex"]["female"] == {"numerator": 2, "denominator": 2, "share": 100.0}
    assert victims["by_sex"]["male"] == {"numerator": 0, "denominator": 1, "share": 0.0}
    perps = r.indicators["perpetrators_counselled"]
    assert (perps["numerator"], perps["denominator"], perps["share"]) == (1, 2, 50.0)
    assert r.waiting == {"n": 7, "median": 40.0, "p90": 64.0}
    assert r.talk == {"n": 6, "median": 250.0, "p90": 450.0}
    assert sum(n for _d, n in r.by_day) == 7 and dict(r.by_day)[date(2026, 3, 3)] == 2
    assert (r.by_hour[9], r.by_hour[10], r.by_hour[14], sum(r.by_hour)) == (4, 2, 1, 7)
    assert r.by_issue_group[0] == ("dv", 4)


def test_report_page_csv_and_cli(client, staff, monkeypatch, capsys):
    _seed(staff)
    monkeypatch.setenv("HOTLINE_REPORT_HEADER", "UBND TỈNH QUẢNG NINH;SỞ Y TẾ")
    monkeypatch.setenv("HOTLINE_REPORT_RECIPIENTS", "Bộ Y tế;<UBND tỉnh>")
    reset_settings()
    sign_in(client, "gs1")
    page = client.get("/reports?from=01/03/2026&to=31/03/2026")
    assert page.status_code == 200
    assert "UBND TỈNH QUẢNG NINH" in page.text and "&lt;UBND tỉnh&gt;" in page.text
    assert page.text.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 3 and 'id="ind-gbv_victims_served"' in page.text
    assert page.text.count('class="chart-title"') == 3 and page.text.count('class="chart-axis"') == 6
    assert "2/3 (66.7%)" in page.text and "Nạn nhân bạo lực giới được phát hiện" in page.text
    bad = client.get("/reports?from=31/03/2026&to=01/03/2026")
    assert bad.status_code == 422 and "trước ngày bắt đầu" in bad.text
    plan = client.get("/reports?half_year=2026-1")
    assert plan.status_code == 200 and "15/12/2025" in plan.text and "14/06/2026" in plan.text
    assert "15/06/2026" in plan.text  # due date
    csv_r = client.get("/reports/export.csv?from=2026-03-01&to=2026-03-31")
    rows = list(csv.reader(io.StringIO(csv_r.content.decode("utf-8-sig"))))
    assert rows[0] == ["UBND TỈNH QUẢNG NINH"]
    # words in the reader's language first, the codes in their own column
    assert any(r[1:] == ["2", "3", "66.7", "gbv_victims_served"] and r[0].startswith("Tỷ lệ") for r in rows), rows
    assert not any(r and r[0] in ("received", "gbv_victims_served", "sex", "province", "unknown") for r in rows)
    sign_in(client, "tvv1")
    assert client.get("/reports?from=01/03/2026&to=31/03/2026", headers={"Accept": "application/json"}).status_code == 403
    assert main(["report", "--centre", "default", "--from", "2026-03-01", "--to", "2026-03-31", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["indicators"]["perpetrators_counselled"]["share"] == 50.0 and out["header"][1] == "SỞ Y TẾ"
    assert main(["report", "--centre", "default", "--half-year", "2026-7"]) == 2


def test_referrals_reach_the_daily_summary(staff):
    ids = _seed(staff)
    with session_scope() as db:
        c = db.get(Centre, staff.centre_id)
        c.created_at = utc(2026, 1, 1)
        s = service.build_day(db, centre=c, day=date(2026, 3, 3)).summary
    assert s["referrals"] == {"available": True, "made": 1, "by_state": {"accepted": 1}}
    entry = next(e for e in s["calls"] if e["record_id"] == ids["via_referral"])
    assert entry["referrals"][0]["service_name"] == "Nhà tạm lánh" and entry["referrals"][0]["state"] == "accepted"


def test_svg_charts_escape_their_labels():
    svg = str(charts.bar_chart([("<script>alert(1)</script>", 3), ("b&c", 1)], title='"><img src=x>'))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "b&amp;c" in svg and "<img" not in svg
    svg = str(charts.hbar_chart([("<b>x</b>", 2)], title="t"))
    assert "<b>" not in svg and "&lt;b&gt;" in svg


def test_referrals_by_state_in_the_report_page_csv_and_json(staff, client):
    """Issue #7 item 6: referrals and their states appear in the periodic reports."""
    _seed(staff)
    r = _report(staff)
    assert r.referrals == {"available": True, "made": 1, "by_state": {"accepted": 1}}
    assert reports.to_json(r)["referrals"]["made"] == 1
    rows = reports.to_csv_rows(r, "en")
    at = rows.index(["Referrals made", 1])
    assert rows[at + 1] == ["accepted", "Accepted", 1]
    sign_in(client, "gs1")
    page = client.get("/reports?from=01/03/2026&to=31/03/2026")
    assert page.status_code == 200
    assert '<span id="report-referrals-made">1</span>' in page.text
    assert "Đã tiếp nhận" in page.text.split('id="report-referrals"')[1].split("</table>")[0]
