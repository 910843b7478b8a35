"""Lines' routing settings through the administrators' page, and the Asterisk dialplan's lookups
(``/api/lines/route``, ``/api/lines/callback-request``) over HTTP, with freezegun for hours and holidays."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from hotline.audit.models import AuditEntry
from hotline.calls.models import Call
from hotline.centres.models import Line
from hotline.db import session_scope
from tests.helpers import create_user, login
from tests.routing.conftest import API, DIALLED, PASSWORD

# Local times in Asia/Ho_Chi_Minh (UTC+7): 2026-12-07 is a Monday.
MONDAY_10 = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)
MONDAY_20 = datetime(2026, 12, 7, 13, 0, tzinfo=timezone.utc)
SATURDAY_23 = datetime(2026, 12, 12, 16, 0, tzinfo=timezone.utc)
SUNDAY_01 = datetime(2026, 12, 12, 18, 0, tzinfo=timezone.utc)  # 01:00 Sunday: Saturday's night slot
NATIONAL_DAY_10 = datetime(2026, 9, 2, 3, 0, tzinfo=timezone.utc)  # 2 September 2026, a Wednesday
NEW_YEAR_EVE_10 = datetime(2026, 12, 31, 3, 0, tzinfo=timezone.utc)  # a Thursday, no public holiday


@pytest.fixture
def admin(client, centres):
    create_user("admin", PASSWORD, "administrator")
    return login(client, "admin", PASSWORD)


def _settings(**extra: str) -> dict[str, str]:
    form = {"overflow_centre": "hcm", "overflow_wait": "60", "hours_MO": "07:30-11:30, 13:30-17:00",
            "hours_TU": "07:30-17:00", "hours_WE": "07:30-17:00", "hours_TH": "07:30-17:00", "hours_FR": "07:30-17:00",
            "hours_SA": "20:00-02:00", "hours_SU": "", "closed_on_holidays": "1", "closed_dates": "31/12/2026",
            "closed_message": "callback"}
    form.update(extra)
    return {k: v for k, v in form.items() if v is not None}


def _save(client, csrf, line_id, **extra):
    return client.post(f"/admin/lines/{line_id}", data={"csrf_token": csrf, **_settings(**extra)},
                       follow_redirects=False)


def _route(client, **params):
    answer = client.get("/api/lines/route", params=params, headers=API)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_administrator_sets_hours_overflow_and_message(client, admin, centres):
    page = client.get("/admin/lines")
    assert page.status_code == 200 and "Đường dây 1800" in page.text and "Luôn mở cửa" in page.text
    assert _save(client, admin, centres["number_line"]).status_code == 303
    shown = client.get(f"/admin/lines/{centres['number_line']}?saved=1")
    assert "Đã lưu cài đặt." in shown.text and 'value="07:30-11:30, 13:30-17:00"' in shown.text
    assert "31/12/2026" in shown.text and "113" in shown.text
    with session_scope() as db:
        line = db.get(Line, centres["number_line"])
        assert line.overflow_centre_id == centres["other"] and line.overflow_wait_seconds == 60
        assert line.hours["MO"] == [["07:30", "11:30"], ["13:30", "17:00"]] and "SU" not in line.hours
        assert line.closed_dates == ["2026-12-31"] and line.closed_message == "callback"
        assert db.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "line")).all() == ["line.settings"]
    listing = client.get("/admin/lines").text
    assert "Trung tâm TP. Hồ Chí Minh" in listing and "07:30-11:30, 13:30-17:00" in listing


@pytest.mark.parametrize(("field", "value", "message"), [
    ("hours_MO", "7h30 đến 11h", "07:30-11:30"),
    ("hours_TU", "08:00-08:00", "cùng một giờ"),
    ("overflow_wait", "5", "từ 10 đến 3600"),
    ("overflow_centre", "khong-co", "khong-co"),
    ("overflow_centre", "default", "trung tâm khác"),
    ("closed_dates", "32/13/2026", "dd/mm/yyyy"),
    ("closed_message", "hat-nhac", "Chọn một"),
])
def test_bad_settings_are_refused_with_the_reason(client, admin, centres, field, value, message):
    answer = _save(client, admin, centres["number_line"], **{field: value})
    assert answer.status_code == 422 and message in answer.text
    with session_scope() as db:
        assert db.get(Line, centres["number_line"]).hours is None  # nothing saved


def test_only_administrators_change_lines(client, centres):
    create_user("gs1", PASSWORD, "supervisor")
    csrf = login(client, "gs1", PASSWORD)
    assert client.get("/admin/lines").status_code == 403
    assert _save(client, csrf, centres["number_line"]).status_code == 403
    assert client.get("/admin/lines/999999").status_code == 403


def test_route_open_with_overflow_then_closed_by_hours_holidays_and_dates(client, admin, centres):
    assert _route(client, line=DIALLED, queue="hotline", call="1.1") == "route=open&queue=hotline&wait=&overflow="
    _save(client, admin, centres["number_line"])
    with freeze_time(MONDAY_10):
        assert _route(client, line=DIALLED, queue="hotline", call="1.2") == \
            "route=open&queue=hotline&wait=60&overflow=hotline-hcm"
    for moment in (MONDAY_20, NATIONAL_DAY_10, NEW_YEAR_EVE_10):
        with freeze_time(moment):
            assert _route(client, line=DIALLED, call=f"2.{moment.day}") == \
                "route=closed&message=hotline/closed&callback=1", moment
    with freeze_time(SATURDAY_23):
        assert _route(client, line=DIALLED, call="3.1").startswith("route=open")
    with freeze_time(SUNDAY_01):  # Saturday's 20:00-02:00 slot runs past midnight
        assert _route(client, line=DIALLED, call="3.2").startswith("route=open")
    # open on holidays, and the other message
    _save(client, admin, centres["number_line"], closed_on_holidays=None, closed_message="no_callback")
    with freeze_time(NATIONAL_DAY_10):
        assert _route(client, line=DIALLED, call="4.1").startswith("route=open")
    with freeze_time(MONDAY_20):
        assert _route(client, line=DIALLED, call="4.2") == "route=closed&message=hotline/closed-no-callback&callback=0"
    # always open again: the hours are kept but not used
    _save(client, admin, centres["number_line"], always_open="1")
    with freeze_time(MONDAY_20):
        assert _route(client, line=DIALLED, call="4.3").startswith("route=open")


def test_unknown_line_and_queue_line_settings(client, admin, centres):
    assert _route(client, line="19009999", queue="other", call="5.1") == "route=open&queue=other&wait=&overflow="
    _save(client, admin, centres["queue_line"], overflow_wait="45")
    with freeze_time(MONDAY_10):  # no number line for this one: the queue's settings apply
        assert _route(client, line="19009999", queue="hotline", call="5.2") == \
            "route=open&queue=hotline&wait=45&overflow=hotline-hcm"


def test_closed_call_and_its_callback_request_are_recorded(client, admin, centres):
    _save(client, admin, centres["number_line"])
    with freeze_time(MONDAY_20):
        assert _route(client, line=DIALLED, call="1765112400.7").startswith("route=closed")
        answer = client.post("/api/lines/callback-request", params={"call": "1765112400.7", "line": DIALLED},
                             headers=API)
        assert answer.status_code == 200 and answer.text == "ok"
        # the same request again (a retry) changes nothing
        client.post("/api/lines/callback-request", params={"call": "1765112400.7", "line": DIALLED}, headers=API)
    with session_scope() as db:
        call = db.scalars(select(Call)).one()
        assert call.centre_id == centres["home"] and call.line_id == centres["number_line"]
        assert call.facts["callback_requested"] == "out_of_hours" and call.facts["out_of_hours"] is True
        assert call.end_reason == "out_of_hours" and call.answered_at is None


def test_lookups_need_the_api_token(client, centres):
    assert client.get("/api/lines/route", params={"line": DIALLED}).status_code == 401
    assert client.get("/api/lines/route", params={"line": DIALLED},
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/lines/callback-request", params={"call": "1.1"}).status_code in (401, 403)
    assert client.post("/api/lines/callback-request", headers=API).status_code == 422
