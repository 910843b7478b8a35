"""Issue #17 point 7: "the wallboard shows the worklists' sizes and the oldest item", for both worklists
(``test_worklist.py`` checks the callbacks' figures): the follow-ups due or overdue and the oldest due
date, in the JSON the wallboard reads and on its page, each figure labelled in Vietnamese (no raw key)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from callbacks import service
from hotline.db import session_scope
from tests.callbacks.conftest import MORNING, missed
from tests.callbacks.test_follow_ups import TODAY, record
from tests.live.conftest import sign_in

pytestmark = pytest.mark.usefixtures("clock")
LABELS = {"callbacks": "Cuộc gọi lại đang chờ", "oldest_callback": "Cuộc gọi lại chờ lâu nhất từ",
          "follow_ups_due": "Theo dõi đến hạn hoặc quá hạn", "oldest_follow_up": "Việc theo dõi đến hạn sớm nhất"}


def test_the_wallboard_shows_both_worklists_sizes_and_their_oldest_item(client, staff):
    missed("0912345678", MORNING - timedelta(hours=1))
    with session_scope() as db:
        service.build(db)
    record(staff, due=TODAY - timedelta(days=2), caller="0987654321")  # overdue
    record(staff, due=TODAY, counsellor="tvv2", caller="0911222333")  # due today (someone else's: still counted)
    record(staff, due=TODAY + timedelta(days=3), caller="0944555666")  # coming: not yet due
    sign_in(client, "gs1")
    figures = {f["key"]: f for f in client.get("/live/wallboard.json").json()["figures"]}
    assert (figures["callbacks"]["value"], figures["oldest_callback"]["text"]) == (1, "03/12 08:00")
    assert figures["follow_ups_due"]["value"] == 2 and figures["follow_ups_due"]["href"] == "/callbacks/follow-ups"
    assert (figures["oldest_follow_up"]["value"], figures["oldest_follow_up"]["text"]) == ("2026-12-01", "01/12/2026")
    page = client.get("/live/wallboard").text
    shown = re.sub(r"<script\b.*?</script>", "", page, flags=re.S)  # the page's text, not its embedded data
    assert 'data-figure="follow_ups_due">2<' in page and 'data-figure="oldest_follow_up">01/12/2026<' in page
    for key, label in LABELS.items():
        assert label in shown, key
        assert figures[key]["label"] not in shown, f"{key}: the English msgid shown"
