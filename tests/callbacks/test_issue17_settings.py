"""Issue #17's callback hours setting: a ``HOTLINE_CALLBACK_HOURS`` the callbacks cannot read is refused
when hotline starts, with the reason, instead of failing later on every page that shows the callback
strip (the counsellor's live screen answered 500).  The check agrees with the callbacks' own reading
(``callbacks.service.parse_hours``) on every form below."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callbacks.service import parse_hours
from hotline.cli import main
from hotline.settings import Settings, reset_settings
from tests.live.conftest import sign_in

GOOD = ["07:30-21:00", "20:00-02:00", "00:00-24:00", " 8:00 - 17:30 ", "23:59-00:00", "00:00-23:59"]
BAD = ["7h-21h", "", "07:30", "07:30-07:30", "00:00-00:00", "24:00-06:00", "07:60-21:00", "07:30-24:30",
       "25:00-26:00", "07:30–21:00", "7:30-21:00-22:00", "-07:30-21:00"]


@pytest.mark.parametrize("hours", GOOD + BAD)
def test_the_setting_agrees_with_the_callbacks_reading(monkeypatch, hours):
    monkeypatch.setenv("HOTLINE_CALLBACK_HOURS", hours)
    if parse_hours(hours) is None:
        with pytest.raises(ValidationError, match="HOTLINE_CALLBACK_HOURS must look like 07:30-21:00"):
            Settings()
    else:
        assert Settings().callback_hours == hours
    assert (parse_hours(hours) is not None) == (hours in GOOD)


def test_a_bad_setting_stops_hotline_with_the_reason_not_the_live_screen(client, staff, monkeypatch):
    sign_in(client, "tvv1")
    monkeypatch.setenv("HOTLINE_CALLBACK_HOURS", "7h-21h")
    reset_settings()
    with pytest.raises(ValidationError, match=r"HOTLINE_CALLBACK_HOURS must look like 07:30-21:00.*'7h-21h'"):
        main(["callbacks", "hours", "--centre", "default"])
    monkeypatch.setenv("HOTLINE_CALLBACK_HOURS", "13:00-17:00")
    reset_settings()
    live = client.get("/live")
    assert live.status_code == 200 and 'id="callback-strip"' in live.text
