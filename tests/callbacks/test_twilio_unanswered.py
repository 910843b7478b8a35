"""#17 "Bad input" on Twilio: the REST API took the call, then it failed before it was answered (the
counsellor's own phone did not answer, was busy, unreachable; or the counsellor answered and the
person called did not).  Twilio says so in a signed status callback (or the ``<Dial>``'s action): the
attempt ends with the reason, in Vietnamese on the page, and the item is back on the list, no attempt
of the caller's used up (as a refused Originate on Asterisk, ``test_ami``)."""

from __future__ import annotations

import pytest

from hotline.i18n import translator
from hotline.pbx import service as pbx
from tests.callbacks.test_twilio import _call, _item_and_attempt, api  # noqa: F401 - the fixture
from tests.helpers import wait_for
from tests.twilio.conftest import ACCOUNT_SID, LINE, post  # noqa: F401 - the fixture
from tests.twilio.test_outbound import CALL_SID

vi = translator("vi")
COMMON = {"AccountSid": ACCOUNT_SID, "CallSid": CALL_SID, "From": LINE, "To": "client:tvv1",
          "Direction": "outbound-api", "ApiVersion": "2010-04-01"}


def _placed(client) -> tuple[int, int]:
    item_id = _call(client)
    _, attempt = wait_for(lambda: (r := _item_and_attempt())[1] and r[1].status == "placed" and r,
                          timeout=40, what="the placed call")
    page = client.get(f"/callbacks/{item_id}")
    assert 'data-status="placed"' in page.text  # "Cuộc gọi đã được nối…", the outcome buttons
    return item_id, attempt.command_id


def _back_on_the_list(client, item_id: int, reason: str) -> None:
    item, attempt = _item_and_attempt()
    assert (attempt.status, attempt.outcome, attempt.reason) == ("failed", "failed", reason)
    assert (item.status, item.claimed_by_id, item.attempts, item.last_reason) == ("open", None, 0, reason)
    listed = client.get("/callbacks")
    assert f'data-item="{item_id}"' in listed.text and vi(reason) in listed.text
    page = client.get(f"/callbacks/{item_id}")
    assert 'id="attempt-state"' not in page.text and 'id="last-failed"' in page.text and vi(reason) in page.text
    assert reason not in page.text  # never the English id on a Vietnamese page


@pytest.mark.parametrize(("status", "reason"), [("no-answer", pbx.NO_ANSWER), ("busy", pbx.BUSY),
                                                ("failed", pbx.UNREACHABLE), ("canceled", pbx.CANCELLED)])
def test_the_counsellors_phone_not_answering_puts_the_item_back_with_the_reason(client, api, post, status, reason):  # noqa: F811
    item_id, command_id = _placed(client)
    path = f"/webhooks/twilio/outbound/{command_id}/status?callback=cb%3A{item_id}"
    assert post(path, {**COMMON, "CallStatus": "ringing"}).status_code == 200
    assert _item_and_attempt()[1].status == "placed"
    assert post(path, {**COMMON, "CallStatus": status}).status_code == 200
    _back_on_the_list(client, item_id, reason)
    # Twilio repeats a callback: nothing changes twice
    assert post(path, {**COMMON, "CallStatus": status}).status_code == 200
    assert _item_and_attempt()[0].attempts == 0
    # and the counsellor may claim it and call again
    _call(client)
    wait_for(lambda: (r := _item_and_attempt())[1] and r[1].status == "placed" and r, timeout=40, what="the second call")


def _person_does_not_answer(post, item_id: int, command_id: int, status: str) -> None:  # noqa: F811
    """The counsellor answers; Twilio's ``<Dial>`` to the person called ends with ``status``."""
    status_path = f"/webhooks/twilio/outbound/{command_id}/status?callback=cb%3A{item_id}"
    assert post(status_path, {**COMMON, "CallStatus": "in-progress"}).status_code == 200
    r = post(f"/webhooks/twilio/outbound/{command_id}", {**COMMON, "CallStatus": "in-progress"})
    assert "<Number>+84912345678</Number>" in r.text
    r = post(f"/webhooks/twilio/outbound/{command_id}/dial?callback=cb%3A{item_id}",
             {**COMMON, "CallStatus": "in-progress", "DialCallStatus": status})
    assert r.status_code == 200
    assert post(status_path, {**COMMON, "CallStatus": "completed", "CallDuration": "31"}).status_code == 200


def test_the_person_called_unreachable_puts_the_item_back_with_the_reason(client, api, post):  # noqa: F811
    item_id, command_id = _placed(client)
    _person_does_not_answer(post, item_id, command_id, "failed")
    _back_on_the_list(client, item_id, pbx.PERSON_UNREACHABLE)


@pytest.mark.parametrize(("status", "reason"), [("no-answer", pbx.PERSON_NO_ANSWER), ("busy", pbx.PERSON_BUSY)])
def test_the_person_called_not_answering_is_a_spaced_and_limited_no_answer_attempt(client, api, post, status,  # noqa: F811
                                                                                   reason, monkeypatch):
    """As the counsellor records "no answer" on Asterisk: one attempt used, the next one spaced, and
    the item closed once the attempts are used up (HOTLINE_CALLBACK_MAX_ATTEMPTS)."""
    from hotline.settings import get_settings

    item_id, command_id = _placed(client)
    _person_does_not_answer(post, item_id, command_id, status)
    item, attempt = _item_and_attempt()
    assert (attempt.status, attempt.outcome, attempt.reason) == ("done", "no_answer", reason)
    assert (item.status, item.claimed_by_id, item.attempts, item.last_outcome, item.last_reason) == (
        "open", None, 1, "no_answer", reason)
    assert item.next_attempt_at is not None  # spaced: not before HOTLINE_CALLBACK_SPACING_MINUTES
    assert vi(reason) in client.get(f"/callbacks/{item_id}").text
    # the same status repeated by Twilio counts nothing more
    assert post(f"/webhooks/twilio/outbound/{command_id}/dial?callback=cb%3A{item_id}",
                {**COMMON, "CallStatus": "completed", "DialCallStatus": status}).status_code == 200
    assert _item_and_attempt()[0].attempts == 1
    assert get_settings().callback_max_attempts > 1


def test_a_call_answered_at_both_ends_waits_for_the_counsellors_outcome(client, api, post):  # noqa: F811
    item_id, command_id = _placed(client)
    status_path = f"/webhooks/twilio/outbound/{command_id}/status?callback=cb%3A{item_id}"
    assert post(status_path, {**COMMON, "CallStatus": "in-progress"}).status_code == 200
    post(f"/webhooks/twilio/outbound/{command_id}", {**COMMON, "CallStatus": "in-progress"})
    post(f"/webhooks/twilio/outbound/{command_id}/dial?callback=cb%3A{item_id}",
         {**COMMON, "CallStatus": "in-progress", "DialCallStatus": "completed", "DialCallDuration": "40"})
    assert post(status_path, {**COMMON, "CallStatus": "completed", "CallDuration": "45"}).status_code == 200
    item, attempt = _item_and_attempt()
    assert (attempt.status, item.status) == ("placed", "claimed")
    assert "Cuộc gọi đã được nối" in client.get(f"/callbacks/{item_id}").text


def test_a_callback_naming_another_ref_changes_nothing(client, api, post):  # noqa: F811
    item_id, command_id = _placed(client)
    path = f"/webhooks/twilio/outbound/{command_id}/status?callback=cb%3A{item_id + 1000}"
    assert post(path, {**COMMON, "CallStatus": "no-answer"}).status_code == 200
    assert _item_and_attempt()[1].status == "placed"


def test_a_follow_up_call_unanswered_on_twilio_ends_with_its_reason(client, staff, api, post):  # noqa: F811
    from sqlalchemy import select

    from callbacks.models import CallbackAttempt, FollowUp
    from hotline.db import session_scope
    from tests.callbacks.test_follow_ups import record
    from tests.callbacks.test_issue17_follow_up_failures import _today
    from tests.live.conftest import sign_in

    rid = record(staff, due=_today())
    token = sign_in(client, "tvv1")
    assert client.post(f"/callbacks/follow-ups/{rid}/call", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303

    def last() -> CallbackAttempt | None:
        with session_scope() as db:
            a = db.scalars(select(CallbackAttempt).where(CallbackAttempt.record_id == rid)
                           .order_by(CallbackAttempt.id.desc())).first()
            db.expunge_all()
            return a

    attempt = wait_for(lambda: (a := last()) is not None and a.status == "placed" and a, timeout=40, what="placed")
    path = f"/webhooks/twilio/outbound/{attempt.command_id}/status?callback=fu%3A{rid}"
    assert post(path, {**COMMON, "CallStatus": "busy"}).status_code == 200
    attempt = last()
    assert (attempt.status, attempt.outcome, attempt.reason) == ("failed", "failed", pbx.BUSY)
    with session_scope() as db:
        fu = db.scalar(select(FollowUp).where(FollowUp.record_id == rid))
        assert (fu.attempts, fu.last_outcome, fu.done_at) == (0, "failed", None)
    page = client.get(f"/callbacks/follow-ups/{rid}")
    assert 'id="last-failed"' in page.text and vi(pbx.BUSY) in page.text and 'id="call-button"' in page.text
