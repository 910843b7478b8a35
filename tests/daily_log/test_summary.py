"""Building a day's summary: the local day boundary, calls spanning midnight, what is counted,
idempotent rebuilds, and the CLI (build, show --json, refusals)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from daily_log import service
from daily_log.models import DailyLog
from hotline.centres.models import Centre
from hotline.cli import build_parser, main
from hotline.db import session_scope
from tests.daily_log.conftest import add_call, utc

build_parser()  # import every command module now: pydantic models cannot be defined under freezegun
DAY = date(2026, 11, 20)  # in Asia/Ho_Chi_Minh: 2026-11-19 17:00 UTC to 2026-11-20 17:00 UTC


@pytest.fixture
def centre(staff):
    with session_scope() as db:
        c = db.get(Centre, staff.centre_id)
        c.created_at = utc(2026, 1, 1)
    return staff


def build(day: date = DAY) -> dict:
    with session_scope() as db:
        c = db.scalar(select(Centre).where(Centre.is_default.is_(True)))
        return service.build_day(db, centre=c, day=day).summary


@freeze_time("2026-11-21 03:00:00")
def test_day_boundary_in_ho_chi_minh(centre):
    tvv1 = centre.ids["tvv1"]
    add_call(centre.centre_id, utc(2026, 11, 19, 16, 59, 59), counsellor_id=tvv1, record={})  # 23:59:59 on the 19th
    inside = [add_call(centre.centre_id, utc(2026, 11, 19, 17, 0, 0), counsellor_id=tvv1, record={})[0],  # 00:00
              add_call(centre.centre_id, utc(2026, 11, 20, 16, 59, 59), counsellor_id=tvv1, record={})[0]]  # 23:59:59
    add_call(centre.centre_id, utc(2026, 11, 20, 17, 0, 0), counsellor_id=tvv1, record={})  # 00:00 on the 21st
    s = build()
    assert [c["call_id"] for c in s["calls"]] == inside
    assert [c["time"] for c in s["calls"]] == ["00:00", "23:59"]
    assert s["window"] == {"start": "2026-11-19T17:00:00+00:00", "end": "2026-11-20T17:00:00+00:00", "hours": 24.0}
    assert s["totals"]["received"] == 2


@freeze_time("2026-11-22 03:00:00")
def test_a_call_spanning_midnight_counts_on_the_day_it_started_and_is_flagged(centre):
    tvv1 = centre.ids["tvv1"]
    # 23:50 local, answered after 60 s, talks 40 minutes: ends 00:31 on the 21st
    spanning, _ = add_call(centre.centre_id, utc(2026, 11, 20, 16, 50), wait=60, talk=2400, counsellor_id=tvv1,
                           record={})
    still_open, _ = add_call(centre.centre_id, utc(2026, 11, 20, 16, 55), status="in_progress", wait=5, talk=None,
                             counsellor_id=tvv1)
    normal, _ = add_call(centre.centre_id, utc(2026, 11, 20, 3, 0), counsellor_id=tvv1, record={})
    s = build()
    flags = {c["call_id"]: c["open_at_midnight"] for c in s["calls"]}
    assert flags == {spanning: True, still_open: True, normal: False}
    assert s["totals"]["open_at_midnight"] == 2
    assert build(DAY + timedelta(days=1))["totals"]["received"] == 0  # not counted again the next day


@freeze_time("2026-11-21 03:00:00")
def test_what_is_counted(centre):
    cid, tvv1, tvv2 = centre.centre_id, centre.ids["tvv1"], centre.ids["tvv2"]
    t = utc(2026, 11, 20, 2)
    add_call(cid, t, wait=10, talk=100, counsellor_id=tvv1,
             record={"issues": ("dv.physical", "dv.psychological"), "level": 3, "sex": "female", "province": "22"})
    add_call(cid, t + timedelta(hours=1), wait=20, talk=300, counsellor_id=tvv2,
             record={"issues": ("gbv.rape",), "level": 5, "sex": "female", "age": "18_29", "province": "01",
                     "follow_up": DAY})
    add_call(cid, t + timedelta(hours=2), wait=30, talk=200, counsellor_id=tvv1,
             record={"issues": ("dv.physical",), "sex": "male", "consent_statistics": False})
    add_call(cid, t + timedelta(hours=3), wait=40, talk=20, counsellor_id=tvv2,
             record={"issues": ("nc.prank",), "level": 0, "outcome": "non_counselling", "sex": "unknown",
                     "role": None, "age": "unknown", "province": None})
    add_call(cid, t + timedelta(hours=4), wait=50, talk=None, counsellor_id=tvv1,
             record={"issues": ("dv.economic",), "state": "draft"})
    add_call(cid, t + timedelta(hours=5), status="missed", wait=None, talk=None, number="+84987654321")
    add_call(cid, t + timedelta(hours=6), status="abandoned", wait=90, talk=None)
    s = build()
    tot = s["totals"]
    assert (tot["received"], tot["answered"], tot["missed"], tot["abandoned"]) == (7, 5, 1, 1)
    assert (tot["records"], tot["records_counted"], tot["excluded_no_consent"], tot["records_draft"]) == (5, 3, 1, 1)
    assert tot["non_counselling"] == 1
    assert s["by_issue"] == {"dv.physical": 1, "dv.psychological": 1, "gbv.rape": 1, "nc.prank": 1}
    assert s["by_level"] == {"0": 1, "3": 1, "5": 1}
    assert s["by_sex"] == {"female": 2, "unknown": 1}
    assert s["by_province"] == {"01": 1, "22": 1, "unknown": 1}
    assert s["waiting_seconds"] == {"n": 6, "median": 35.0, "p90": 70.0}
    assert s["talk_seconds"]["n"] == 4 and s["talk_seconds"]["median"] == 150.0
    assert [f["record_id"] for f in s["follow_ups_due"]] == [s["calls"][1]["record_id"]]
    per = {p["name"]: p for p in s["per_counsellor"]}
    assert per["TVV1"]["calls_answered"] == 2 and per["TVV1"]["records_counted"] == 1
    assert per["TVV2"]["records_counted"] == 2 and per["TVV2"]["by_level"] == {"0": 1, "5": 1}
    callers = {c["caller"] for c in s["calls"]}
    assert "+84987654321" not in json.dumps(s) and "+849****321" in callers
    assert "ghi chú riêng tư" not in json.dumps(s, ensure_ascii=False)


@freeze_time("2026-11-21 03:00:00")
def test_rebuilding_replaces_the_summary(centre):
    add_call(centre.centre_id, utc(2026, 11, 20, 2), counsellor_id=centre.ids["tvv1"], record={})
    first = build()
    again = build()
    assert again == first
    add_call(centre.centre_id, utc(2026, 11, 20, 5), counsellor_id=centre.ids["tvv1"], record={})
    third = build()
    assert third["totals"]["received"] == 2
    with session_scope() as db:
        assert db.scalar(select(func.count()).select_from(DailyLog)) == 1
        assert db.scalar(select(DailyLog.build_count)) == 3


@freeze_time("2026-11-21 03:00:00")
def test_cli_build_show_and_refusals(centre, capsys):
    add_call(centre.centre_id, utc(2026, 11, 20, 2), counsellor_id=centre.ids["tvv1"], record={})
    assert main(["daily-log", "build", "--centre", "default", "--date", "20/11/2026"]) == 0
    assert "received 1" in capsys.readouterr().out
    assert main(["daily-log", "show", "--centre", "default", "--date", "2026-11-20", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "built" and shown["totals"]["received"] == 1 and shown["date"] == "2026-11-20"
    assert main(["daily-log", "build", "--centre", "default", "--date", "2026-11-22"]) == 2
    assert "còn ở tương lai" in capsys.readouterr().err
    assert main(["daily-log", "build", "--centre", "default", "--date", "2026-11-21"]) == 2
    assert "chưa kết thúc" in capsys.readouterr().err
    assert main(["daily-log", "build", "--centre", "default", "--date", "2025-12-31"]) == 2
    assert "bắt đầu từ 01/01/2026" in capsys.readouterr().err
    assert main(["daily-log", "show", "--centre", "default", "--date", "2026-11-19", "--json"]) == 2
    assert "chưa được lập" in capsys.readouterr().err
    assert main(["daily-log", "build", "--centre", "nowhere", "--date", "2026-11-19"]) == 2
    assert "Không có trung tâm mã 'nowhere'" in capsys.readouterr().err
    assert main(["daily-log", "export", "--centre", "default", "--date", "2026-11-20", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Daily call log,") and "NOT SIGNED OFF" in out and "ghi chú" not in out
    assert main(["daily-log", "export", "--centre", "default", "--date", "2026-11-20", "--format", "xlsx"]) == 2
    assert "--out" in capsys.readouterr().err
