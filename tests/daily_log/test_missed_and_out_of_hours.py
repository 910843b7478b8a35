"""Missed means a caller who reached the line while it was open and was not answered (#17): a call
that reached a closed line counts once, on its own line (calls out of hours), never also as missed
or abandoned, in the daily log (CLI, page, CSV), the periodic report (CLI, page, CSV) and the
wallboard.  The callback list still takes an out-of-hours caller only when they pressed the key.

One day, frozen in time: at 10:00 an answered call and a missed one (in hours: the first straight into the
database, the second, a queue timeout, through the ingestor), at 20:00 two callers on the closed Twilio line (signed webhooks): one presses the key."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

from freezegun import freeze_time
from sqlalchemy import select

from callbacks import service as callbacks
from callbacks.models import CallbackItem
from hotline.calls.models import Call
from hotline.centres.models import Centre, Line
from hotline.cli import main
from hotline.db import session_scope
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.service import ingest_and_commit
from tests.callbacks.test_out_of_hours import ASKED, SILENT, _closed_call
from tests.daily_log.conftest import add_call
from tests.helpers import create_user, login
from tests.routing.conftest import DIALLED, PASSWORD, centres  # noqa: F401  (fixture)
from tests.twilio.conftest import post  # noqa: F401  (fixture)

DAY = "2026-12-01"  # a Tuesday
AT_10 = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)  # 10:00 in Ho Chi Minh City: open
AT_20 = datetime(2026, 12, 1, 13, 0, tzinfo=timezone.utc)  # 20:00: closed
AT_21 = AT_20 + timedelta(hours=1)
IN_HOURS_MISSED = "+84933000333"


def _queue_timeout(t: datetime) -> None:
    """A caller the queue let go after 60 s without a free counsellor (QUEUESTATUS=TIMEOUT): missed."""
    key = f"dl-timeout-{t.timestamp()}"
    events = [CallEvent(Kind.STARTED, "asterisk", key, t, channel=key, caller=IN_HOURS_MISSED, dialed=DIALLED),
              CallEvent(Kind.QUEUED, "asterisk", key, t + timedelta(seconds=1), queue="hotline"),
              CallEvent(Kind.QUEUE_RESULT, "asterisk", key, t + timedelta(seconds=61), reason="TIMEOUT"),
              CallEvent(Kind.ABANDONED, "asterisk", key, t + timedelta(seconds=61), wait_seconds=60),
              CallEvent(Kind.ENDED, "asterisk", key, t + timedelta(seconds=62), channel=key)]
    ingest_and_commit([RawIn("asterisk", f"{key}-{i}", t, f"test {key} {i}", event_type="test", events=[e])
                       for i, e in enumerate(events)], publish=False)


def _day(client, post, centres) -> None:  # noqa: F811
    with session_scope() as db:
        for centre in db.scalars(select(Centre)):  # older than the day (a day before a centre is refused)
            centre.created_at = datetime(2026, 11, 1, tzinfo=timezone.utc)
        db.get(Line, centres["twilio_line"]).hours = {d: [["08:00", "17:00"]] for d in ("MO", "TU", "WE", "TH", "FR")}
    create_user("gs1", PASSWORD, "supervisor")
    add_call(centres["home"], AT_10, wait=10, talk=120)  # answered within 20 s
    _queue_timeout(AT_10 + timedelta(minutes=5))
    with freeze_time(AT_20):
        _closed_call(post, "CA" + "d" * 32, ASKED, press=True)
        _closed_call(post, "CA" + "e" * 32, SILENT, press=False)
    with session_scope() as db:  # as the ingestor leaves them: status missed, out of hours
        calls = [(c.caller_masked, c.status, c.end_reason) for c in db.scalars(select(Call).order_by(Call.id))]
    assert calls[1][1:] == ("missed", "queue_left")
    assert calls[2:] == [("0911 *** 111", "missed", "out_of_hours"), ("0922 *** 222", "missed", "out_of_hours")]


def _cli(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_out_of_hours_calls_are_not_missed_in_the_daily_log_report_and_wallboard(client, post, centres, capsys):  # noqa: F811
    _day(client, post, centres)
    want = {"received": 4, "answered": 1, "missed": 1, "abandoned": 0, "out_of_hours": 2}

    # the daily log: CLI (JSON and text), page, CSV
    day = json.loads(_cli(capsys, "daily-log", "build", "--centre", "default", "--date", DAY, "--json"))
    assert {k: day["totals"][k] for k in want} == want
    assert day["callbacks"]["callback_requests"] == 1
    assert [(c["status"], c["out_of_hours"]) for c in day["calls"]] == [
        ("completed", False), ("missed", False), ("missed", True), ("missed", True)]
    text = _cli(capsys, "daily-log", "build", "--centre", "default", "--date", DAY)
    assert "missed 1," in text and "out of hours 2," in text
    login(client, "gs1", PASSWORD)
    page = client.get(f"/daily-log/default/{DAY}")
    assert page.status_code == 200
    for key, n in want.items():
        assert f'id="total-{key}">{n}<' in page.text, key
    assert page.text.count("data-out-of-hours>ngoài giờ làm việc<") == 2
    assert "cuộc gọi ngoài giờ làm việc chỉ tính ở dòng riêng" in page.text
    rows = _csv(client.get(f"/daily-log/default/{DAY}/export.csv"))
    assert ["Nhỡ", "1"] in rows and ["Cuộc gọi ngoài giờ làm việc", "2"] in rows
    head = next(i for i, r in enumerate(rows) if r and r[0] == "Giờ" and "Ngoài giờ làm việc" in r)
    column = rows[head].index("Ngoài giờ làm việc")
    assert [r[column] for r in rows[head + 1:head + 5]] == ["", "", "x", "x"]

    # the periodic report: CLI, page, CSV
    report = json.loads(_cli(capsys, "report", "--centre", "default", "--from", DAY, "--to", DAY, "--json"))
    assert {k: report["totals"][k] for k in want} == want
    page = client.get("/reports?from=01/12/2026&to=01/12/2026")
    assert page.status_code == 200
    assert '<th scope="row">Nhỡ</th><td class="num">1</td>' in page.text
    assert 'id="report-out-of-hours">2<' in page.text
    rows = _csv(client.get(f"/reports/export.csv?from={DAY}&to={DAY}"))
    assert any(r[:2] == ["Nhỡ", "1"] for r in rows) and any(r[:2] == ["Cuộc gọi ngoài giờ làm việc", "2"] for r in rows)

    # the wallboard the same evening: 1 missed; the service level counts the calls made while open (1 of 2)
    with freeze_time(AT_21):
        board = client.get("/live/wallboard.json").json()
    assert {k: board["totals"][k] for k in ("received", "answered", "missed", "abandoned", "out_of_hours")} == want
    assert board["service"]["service_level"] == 50 and board["service"]["abandoned_rate"] == 0


def test_the_callback_list_takes_the_in_hours_missed_caller_and_the_key_press_only(client, post, centres, capsys):  # noqa: F811
    _day(client, post, centres)
    with freeze_time(AT_21):
        assert json.loads(_cli(capsys, "callbacks", "build", "--json"))["made"] == 2
    with session_scope() as db:
        items = [(i.kind, i.number_masked) for i in db.scalars(select(CallbackItem).order_by(CallbackItem.missed_at))]
        assert items == [("missed", "0933 *** 333"), ("requested", "0911 *** 111")]  # not SILENT
        assert callbacks.build(db, now=AT_21 + timedelta(hours=1)).as_dict()["made"] == 0
