"""Today's running log over HTTP: listed first, shown and exported (CSV, XLSX, print) marked
provisional at any time of the day, never a "not built yet" link; it cannot be built or signed off
until the centre's midnight, and the built log replaces it after that."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from openpyxl import load_workbook

from daily_log import service
from hotline.centres.models import Centre
from hotline.cli import build_parser
from hotline.db import session_scope
from tests.daily_log.conftest import add_call, sign_in, utc

build_parser()
JSON = {"Accept": "application/json"}
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def today() -> date:
    return datetime.now(HCM).date()


def at_local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=HCM).astimezone(timezone.utc)


@pytest.fixture
def running(staff):
    with session_scope() as db:
        db.get(Centre, staff.centre_id).created_at = utc(2026, 1, 1)
    now = datetime.now(timezone.utc)
    add_call(staff.centre_id, now - timedelta(minutes=1), counsellor_id=staff.ids["tvv1"],
             record={"issues": ("dv.physical",)})
    add_call(staff.centre_id, now - timedelta(minutes=1), status="abandoned", wait=40, talk=None)
    return staff


def test_today_is_listed_shown_and_exported_as_provisional(client, running):
    token = sign_in(client, "gs1")
    url = f"/daily-log/default/{today().isoformat()}"
    days = client.get("/daily-log")
    assert f'data-day="{today().isoformat()}"' in days.text and 'data-state="provisional"' in days.text
    page = client.get(url)
    assert page.status_code == 200
    assert 'id="dl-provisional"' in page.text and 'data-state="provisional"' in page.text
    for link in ("export.csv", "export.xlsx", "print"):  # every link on the page answers
        assert f'href="{url}/{link}"' in page.text
        assert client.get(f"{url}/{link}").status_code == 200, link
    assert 'id="dl-sign-off"' not in page.text and 'id="dl-build"' not in page.text
    assert "Nữ" in page.text and "female" not in page.text and "30_59" not in page.text  # words, not codes

    rows = list(csv.reader(io.StringIO(client.get(url + "/export.csv").content.decode("utf-8-sig"))))
    assert rows[1][0].startswith("TẠM TÍNH"), rows[1]
    received = next(r for r in rows if r and r[0] == "Cuộc gọi đến")
    assert received[-1] == "2", received
    wb = load_workbook(io.BytesIO(client.get(url + "/export.xlsx").content))
    assert str(wb.worksheets[0]["A2"].value).startswith("TẠM TÍNH")
    printed = client.get(url + "/print")
    assert 'id="dl-provisional"' in printed.text

    # it cannot be built nor signed off before the centre's midnight: a clear 422, no 500
    assert client.post(url + "/build", data={"csrf_token": token}).status_code == 422
    assert client.post(url + "/sign-off", data={"csrf_token": token}).status_code == 422


def test_an_unbuilt_past_day_offers_no_export_link(client, running):
    sign_in(client, "gs1")
    url = f"/daily-log/default/{(today() - timedelta(days=3)).isoformat()}"
    page = client.get(url)
    assert page.status_code == 200 and "export.csv" not in page.text and 'id="dl-provisional"' not in page.text
    assert client.get(url + "/export.csv", headers=JSON).status_code == 404


def test_after_the_centres_midnight_the_day_builds_and_is_no_longer_provisional(running):
    day = today()
    with session_scope() as db:
        centre = service.get_centre(db, code="default")
        assert service.is_running(centre, day)
        summary = service.provisional_summary(db, centre=centre, day=day)
        assert summary["state"] == "provisional" and summary["totals"]["received"] == 2
        with pytest.raises(service.DayRefused):
            service.build_day(db, centre=centre, day=day)
    with freeze_time(at_local(day + timedelta(days=1), 0) + timedelta(minutes=5)):
        with session_scope() as db:
            centre = service.get_centre(db, code="default")
            assert not service.is_running(centre, day)
            log = service.build_day(db, centre=centre, day=day, by="gs1")
            assert log.summary["totals"] == summary["totals"]
            assert service.state_of(db, log) == "built"
