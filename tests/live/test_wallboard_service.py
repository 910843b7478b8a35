"""The wallboard's service figures over HTTP: service level (share of today's calls answered within
the centre's seconds), abandonment rate, longest wait now and today, with a warning past each
threshold the centre sets (settings), and a link to today's provisional daily log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from freezegun import freeze_time

from hotline.settings import reset_settings
from tests.daily_log.conftest import add_call
from tests.live.conftest import sign_in

NOW = datetime(2026, 11, 23, 3, 0, 0, tzinfo=timezone.utc)  # 10:00 in Hồ Chí Minh City


def _calls(staff) -> None:
    add_call(staff.centre_id, NOW - timedelta(hours=2), wait=10, counsellor_id=staff.ids["tvv1"])
    add_call(staff.centre_id, NOW - timedelta(hours=1), wait=40, counsellor_id=staff.ids["tvv1"])
    add_call(staff.centre_id, NOW - timedelta(minutes=30), status="abandoned", wait=75, talk=None)
    add_call(staff.centre_id, NOW - timedelta(minutes=20), status="abandoned", wait=5, talk=None)
    add_call(staff.centre_id, NOW - timedelta(seconds=90), status="queued", wait=None, talk=None)


def test_service_level_abandonment_and_longest_wait_warn_past_the_centres_thresholds(client, staff, monkeypatch):
    client.get("/no-such-page")  # build the routers before the clock is frozen
    with freeze_time(NOW):
        _calls(staff)
        sign_in(client, "gs1")
        data = client.get("/live/wallboard.json").json()
        page = client.get("/live/wallboard")
        sv = data["service"]
        assert sv["service_level"] == 20 and sv["abandoned_rate"] == 40  # 1 of 5 within 20 s; 2 of 5 abandoned
        assert sv["longest_wait_now"] == 90 and sv["longest_wait_today"] == 75
        assert sv["warnings"] == ["service_level", "abandoned", "longest_wait"]
        assert page.status_code == 200
        for key in ("service_level", "abandoned", "longest_wait"):
            assert f'data-warning="{key}">' in page.text, key  # shown (not hidden)
        assert 'href="/daily-log/default/2026-11-23"' in page.text
        assert "40 %" in page.text and "Tỉ lệ bỏ dở" in page.text

        monkeypatch.setenv("HOTLINE_WALLBOARD_ABANDONED_MAX", "50")
        monkeypatch.setenv("HOTLINE_WALLBOARD_SERVICE_LEVEL_MIN", "10")
        monkeypatch.setenv("HOTLINE_WALLBOARD_WAIT_MAX_SECONDS", "120")
        monkeypatch.setenv("HOTLINE_WALLBOARD_ANSWER_SECONDS", "45")
        reset_settings()
        sv = client.get("/live/wallboard.json").json()["service"]
        page = client.get("/live/wallboard")
    assert sv["service_level"] == 40 and sv["warnings"] == []
    assert 'data-warning="abandoned" hidden' in page.text


def test_one_english_word_two_meanings_get_their_own_vietnamese(client, staff):
    sign_in(client, "gs1")
    board = client.get("/live/wallboard").text
    assert "Cuộc gọi đến" in board and "Nhận lúc" not in board  # a count of calls, not a time
    sign_in(client, "admin1")
    audit = client.get("/admin/audit").text
    assert "<th>Địa chỉ IP</th>" in audit and "<th>Từ ngày</th>" not in audit  # the IP column
