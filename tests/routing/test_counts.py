"""The daily log and the periodic report count blocked calls, overflow out and in, out-of-hours
calls and their callback requests (#17 point 7): one day of signed Twilio webhooks (frozen in
time), then the CLI builds each centre's day and report, and the supervisor reads the day's page."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import urlsplit
from xml.etree import ElementTree

from freezegun import freeze_time
from sqlalchemy import select

from blocking.models import BlockedCall
from hotline.centres.models import Centre, Line
from hotline.cli import main
from hotline.db import session_scope
from tests.helpers import create_user, login, wait_for
from tests.routing.conftest import PASSWORD
from tests.twilio.conftest import base_params

DAY = "2026-12-01"  # a Tuesday, in the past
AT_10 = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)  # 10:00 in Ho Chi Minh City
AT_20 = datetime(2026, 12, 1, 13, 0, tzinfo=timezone.utc)  # 20:00: closed
BLOCKED_CALLER = "+84987654321"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _cli_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_the_day_and_the_report_count_blocked_overflow_and_out_of_hours(client, post, centres, capsys):
    with session_scope() as db:
        for centre in db.scalars(select(Centre)):  # centres older than the day (a day before a centre is refused)
            centre.created_at = datetime(2026, 11, 1, tzinfo=timezone.utc)
        line = db.get(Line, centres["twilio_line"])
        line.hours = {d: [["08:00", "17:00"]] for d in ("MO", "TU", "WE", "TH", "FR")}
        line.overflow_centre_id = centres["other"]
    create_user("gs1", PASSWORD, "supervisor")
    with freeze_time(AT_10, tick=True):
        csrf = login(client, "gs1", PASSWORD)
        assert client.post("/blocking", data={"number": BLOCKED_CALLER, "amount": "2", "unit": "d",
                                              "reason": "Gọi quấy rối", "csrf_token": csrf},
                           follow_redirects=False).status_code == 303
        # a blocked caller presses the key for a supervisor
        blocked = {"CallSid": "CA" + "b" * 32, "From": BLOCKED_CALLER, "Caller": BLOCKED_CALLER}
        root = ElementTree.fromstring(post("/webhooks/twilio/voice", base_params(**blocked)).text)
        post(_path(root.find("Gather").get("action")), base_params(**blocked, Digits="3"))
        # nobody available here: a caller overflows to hcm at once
        voice = ElementTree.fromstring(post("/webhooks/twilio/voice", base_params(CallSid="CA" + "c" * 32)).text)
        action = _path(voice.find("Enqueue").get("action"))
        post(action, base_params(CallSid="CA" + "c" * 32, QueueResult="leave", QueueTime="1", QueueSid="QU" + "9" * 32))
    with freeze_time(AT_20):  # closed: the message, and the key for a callback
        closed = ElementTree.fromstring(post("/webhooks/twilio/voice", base_params(CallSid="CA" + "d" * 32)).text)
        post(_path(closed.find("Gather").get("action")), base_params(CallSid="CA" + "d" * 32, Digits="1"))
        ElementTree.fromstring(post("/webhooks/twilio/voice", base_params(CallSid="CA" + "e" * 32)).text)

    def pressed() -> bool:  # the voice path records the blocked call, then the key press, after its answers
        with session_scope() as db:
            return db.scalar(select(BlockedCall.pressed_for_supervisor)) is True

    wait_for(pressed, timeout=10, what="the blocked call and its key press recorded")
    home = _cli_json(capsys, "daily-log", "build", "--centre", "default", "--date", DAY, "--json")
    totals = home["totals"]
    assert (totals["blocked"], totals["blocked_to_supervisor"]) == (1, 1)
    assert (totals["overflow_out"], totals["overflow_in"]) == (1, 0)
    assert totals["out_of_hours"] == 2 and home["callbacks"]["callback_requests"] == 1  # the latter: callbacks
    assert [c["overflow"] for c in home["calls"]].count("out") == 1
    other = _cli_json(capsys, "daily-log", "build", "--centre", "hcm", "--date", DAY, "--json")
    assert other["totals"]["overflow_in"] == 1 and other["totals"]["overflow_out"] == 0
    assert [c["overflow_from"] for c in other["overflow_in_calls"]] == ["default"]
    report = _cli_json(capsys, "report", "--centre", "default", "--from", DAY, "--to", DAY, "--json")
    assert {k: report["totals"][k] for k in ("blocked", "blocked_to_supervisor", "overflow_out", "overflow_in",
                                             "out_of_hours")} == \
        {"blocked": 1, "blocked_to_supervisor": 1, "overflow_out": 1, "overflow_in": 0, "out_of_hours": 2}
    assert report["callbacks"]["callback_requests"] == 1
    hcm_report = _cli_json(capsys, "report", "--centre", "hcm", "--from", DAY, "--to", DAY, "--json")
    assert hcm_report["totals"]["overflow_in"] == 1
    # the supervisor's page shows them, in Vietnamese
    client.cookies.clear()
    login(client, "gs1", PASSWORD)
    page = client.get(f"/daily-log/default/{DAY}")
    assert page.status_code == 200
    for label, key in (("Cuộc gọi bị chặn", "blocked"), ("Cuộc gọi chuyển tiếp sang trung tâm khác", "overflow_out"),
                       ("Cuộc gọi ngoài giờ làm việc", "out_of_hours")):
        assert label in page.text and f'id="total-{key}">{totals[key]}<' in page.text
