"""A callback on Twilio: "Gọi lại" → ``hotline.pbx`` → Twilio's REST API (a real local HTTP server standing
in for api.twilio.com); an API error (refused, down) ends the attempt with its reason and the item is
back on the list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from callbacks import service
from callbacks.models import CallbackAttempt, CallbackItem
from hotline.centres import service as centres
from hotline.centres.models import Centre
from hotline.db import session_scope
from hotline.i18n import translator
from hotline.pbx import twilio as pbx_twilio
from hotline.settings import reset_settings
from tests.callbacks.conftest import missed
from tests.helpers import wait_for
from tests.live.conftest import sign_in
from tests.twilio.conftest import LINE
from tests.twilio.test_outbound import CALL_SID, TwilioApi


@pytest.fixture
def api(staff, monkeypatch):
    from tests.twilio.conftest import ACCOUNT_SID

    server = TwilioApi()
    monkeypatch.setenv("HOTLINE_TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("HOTLINE_TWILIO_API_BASE_URL", server.url)
    monkeypatch.setenv("HOTLINE_CALLBACK_HOURS", "00:00-24:00")
    reset_settings()
    with session_scope() as db:
        centre = db.get(Centre, staff.centre_id)
        centres.add_line(db, centre=centre, provider="twilio", kind="number", identifier=LINE)
        centres.map_agent(db, centre=centre, provider="twilio", identity="client:tvv1", user_id=staff.ids["tvv1"])
    missed("0912345678", datetime.now(timezone.utc) - timedelta(minutes=5))
    with session_scope() as db:
        service.build(db)
    yield server
    server.stop()


def _item_and_attempt() -> tuple[CallbackItem, CallbackAttempt | None]:
    with session_scope() as db:
        item = db.scalars(select(CallbackItem)).one()
        attempt = db.scalars(select(CallbackAttempt).order_by(CallbackAttempt.id.desc())).first()
        db.expunge_all()
        return item, attempt


def _call(client) -> int:
    item, _ = _item_and_attempt()
    token = sign_in(client, "tvv1")
    assert client.post(f"/callbacks/{item.id}/claim", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.post(f"/callbacks/{item.id}/call", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    return item.id


def test_a_callback_is_asked_of_twilio_counsellor_first(client, api):
    item_id = _call(client)
    _, attempt = wait_for(lambda: (r := _item_and_attempt())[1] and r[1].status == "placed" and r,
                          timeout=40, what="the placed call")
    assert attempt.call_uid == CALL_SID and attempt.ref == f"cb:{item_id}"
    [req] = api.requests
    assert req["form"]["To"] == ["client:tvv1"] and req["form"]["From"] == [LINE]
    assert req["form"]["StatusCallback"][0].endswith(f"?callback=cb%3A{item_id}")


@pytest.mark.parametrize(("mode", "reason"), [("refused", pbx_twilio.API_REFUSED), ("down", pbx_twilio.API_FAILED)])
def test_a_twilio_api_error_puts_the_item_back_with_the_reason(client, api, mode, reason):
    api.mode = mode
    item_id = _call(client)
    item, attempt = wait_for(lambda: (r := _item_and_attempt())[1] and r[1].status == "failed" and r,
                             timeout=40, what="the failed call")
    assert attempt.reason == reason and (item.status, item.claimed_by_id, item.attempts) == ("open", None, 0)
    page = client.get("/callbacks")
    assert f'data-item="{item_id}"' in page.text and translator("vi")(reason) in page.text
