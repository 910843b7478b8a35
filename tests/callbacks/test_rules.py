"""The callback rules of #17 through HTTP: each centre's own callback hours (a supervisor sets them; calls
outside them are refused with the time they may be placed, the lists say "not before"), follow-up attempts
limited and spaced like callbacks (after the last one the follow-up stays for its assignee to decide), and
the "do not call back (unsafe)" mark shown with the caller history of a pop and on the record page, lifted
by a supervisor (audited)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from callbacks import service
from callbacks.models import CallbackItem, CentreCallbackHours, DoNotCallBack, FollowUp
from hotline.audit.models import AuditEntry
from hotline.calls.models import CallRecord
from hotline.db import session_scope
from tests.callbacks.conftest import MORNING, answered, missed
from tests.callbacks.test_follow_ups import record
from tests.callbacks.test_worklist import Pbx, build, items, post
from tests.live.conftest import call_id, feed_call, sign_in

pytestmark = pytest.mark.usefixtures("clock")
TODAY = date(2026, 12, 3)  # MORNING's day in Hanoi (the clock: 09:10 there)


@pytest.fixture
def pbx(staff) -> Pbx:
    from hotline.centres import service as centres
    from hotline.centres.models import Centre

    with session_scope() as db:
        centres.add_line(db, centre=db.get(Centre, staff.centre_id), provider="asterisk", kind="number",
                         identifier="+842873001111")
    return Pbx()


def audit_actions(prefix: str) -> list[tuple[str, dict]]:
    with session_scope() as db:
        return [(a.action, a.detail or {}) for a in db.scalars(select(AuditEntry).where(AuditEntry.action.like(f"{prefix}%"))
                                                               .order_by(AuditEntry.id))]


def set_hours(client, who: str, hours: str, **extra: str):
    token = sign_in(client, who)
    return post(client, "/callbacks/settings", token, hours=hours, **extra)


# ---------------------------------------------------------------------- 1. each centre's callback hours
def test_a_supervisor_sets_the_centres_hours_and_bad_input_is_refused(client, staff):
    sign_in(client, "gs1")
    page = client.get("/callbacks/settings")
    assert page.status_code == 200 and "Trung tâm này dùng khung giờ mặc định: 07:30-21:00." in page.text
    for bad in ("13:00", "25:00-26:00", "13:00-13:00", "9h-17h", "13:60-17:00"):
        refused = set_hours(client, "gs1", bad)
        assert refused.status_code == 422 and "GG:PP-GG:PP" in refused.text, bad
    assert set_hours(client, "gs1", " 13:00 - 17:00 ").status_code == 303
    assert "Khung giờ của trung tâm này: 13:00-17:00." in client.get("/callbacks/settings").text
    with session_scope() as db:
        assert {(r.centre_id, r.hours, r.updated_by) for r in db.scalars(select(CentreCallbackHours))} == \
            {(staff.centre_id, "13:00-17:00", "gs1")}
    # another centre's supervisor sets their own centre's, never this one's (the centre field is ignored)
    client.cookies.clear()
    assert set_hours(client, "gs_other", "08:00-12:00", centre_id=str(staff.centre_id)).status_code == 303
    with session_scope() as db:
        assert service.hours_text(db, staff.centre_id) == "13:00–17:00"
        assert service.hours_text(db, staff.other_centre_id) == "08:00–12:00"
    # counsellors may neither see nor change them
    client.cookies.clear()
    token = sign_in(client, "tvv1")
    assert client.get("/callbacks/settings").status_code == 403
    assert post(client, "/callbacks/settings", token, hours="00:00-24:00").status_code == 403
    # an administrator picks the centre; empty hours: back to the default
    client.cookies.clear()
    assert set_hours(client, "admin1", "", centre_id=str(staff.other_centre_id)).status_code == 303
    with session_scope() as db:
        assert service.own_hours(db, staff.other_centre_id) is None
        assert service.hours_text(db, staff.other_centre_id) == "07:30–21:00"
    assert [(a, d["after"]) for a, d in audit_actions("callback.hours")] == \
        [("callback.hours", "13:00-17:00"), ("callback.hours", "08:00-12:00"), ("callback.hours", "")]


def test_a_callback_outside_the_centres_hours_is_refused_with_when_it_may_be_placed(client, staff, pbx, clock):
    missed("0912345678", MORNING)
    build()
    [item] = items()
    set_hours(client, "gs1", "13:00-17:00")
    client.cookies.clear()
    token = sign_in(client, "tvv1")
    listed = client.get("/callbacks")
    assert "Không trước 13:00" in listed.text and 'id="outside-hours"' in listed.text
    assert "Chỉ gọi lại trong khung giờ 13:00–17:00; có thể gọi tiếp từ 13:00." in listed.text
    assert "Không trước 13:00" in client.get("/callbacks/strip").text
    assert post(client, f"/callbacks/{item.id}/claim", token).status_code == 303
    page = client.get(f"/callbacks/{item.id}")
    assert 'id="call-button" class="primary" disabled' in page.text
    refused = post(client, f"/callbacks/{item.id}/call", token)
    assert refused.status_code == 422
    assert "Chỉ gọi lại trong khung giờ 13:00–17:00; cuộc gọi này có thể thực hiện từ 13:00." in refused.text
    assert pbx.requests() == []
    # the other centre keeps the default hours: 09:10 is inside them
    with session_scope() as db:
        assert service.within_hours(db, staff.other_centre_id, MORNING + timedelta(minutes=10))
    clock.move_to(MORNING.replace(hour=6, minute=5))  # 13:05 in Hanoi
    token = sign_in(client, "tvv1")
    assert "Không trước" not in client.get("/callbacks").text
    post(client, f"/callbacks/{item.id}/claim", token)
    assert post(client, f"/callbacks/{item.id}/call", token).status_code == 303
    assert [r["ref"] for r in pbx.requests()] == [f"cb:{item.id}"]
    # no answer at 16:50: the spacing (30 minutes) runs past 17:00, so the next attempt is tomorrow at 13:00
    clock.move_to(MORNING.replace(hour=9, minute=50))
    token = sign_in(client, "tvv1")
    assert post(client, f"/callbacks/{item.id}/outcome", token, outcome="no_answer").status_code == 303
    assert "Không trước 13:00 04/12" in client.get("/callbacks").text
    post(client, f"/callbacks/{item.id}/claim", token)
    refused = post(client, f"/callbacks/{item.id}/call", token)
    assert refused.status_code == 409 and "từ 13:00 04/12" in refused.text


def test_hours_running_past_midnight(client, staff, pbx, clock):
    missed("0912345678", MORNING)
    build()
    [item] = items()
    set_hours(client, "gs1", "20:00-02:00")
    client.cookies.clear()
    token = sign_in(client, "tvv1")
    assert "Không trước 20:00" in client.get("/callbacks").text
    clock.move_to(MORNING.replace(hour=18, minute=30))  # 01:30 the next day in Hanoi
    token = sign_in(client, "tvv1")
    post(client, f"/callbacks/{item.id}/claim", token)
    assert post(client, f"/callbacks/{item.id}/call", token).status_code == 303


def test_a_follow_up_call_outside_the_centres_hours_is_refused(client, staff, pbx):
    rid = record(staff, due=TODAY)
    set_hours(client, "gs1", "18:00-21:00")
    client.cookies.clear()
    token = sign_in(client, "tvv1")
    page = client.get(f"/callbacks/follow-ups/{rid}")
    assert "disabled" in page.text and "cuộc gọi này có thể thực hiện từ 18:00" in page.text
    refused = post(client, f"/callbacks/follow-ups/{rid}/call", token)
    assert refused.status_code == 422 and "18:00–21:00" in refused.text
    assert pbx.requests() == []


# ---------------------------------------------------------------------- 2. follow-up attempts limited and spaced
def test_follow_up_attempts_are_limited_and_the_assignee_decides(client, staff, pbx, clock):
    rid = record(staff, due=TODAY)
    token = sign_in(client, "tvv1")
    # a call the PBX could not place is not an attempt
    assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 303
    pbx.finish(1, "failed", "busy")
    placed = 1
    for attempt in range(3):  # HOTLINE_CALLBACK_MAX_ATTEMPTS
        assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 303, attempt
        placed += 1
        pbx.finish(placed, "placed")
        assert post(client, f"/callbacks/follow-ups/{rid}/outcome", token, outcome="no_answer").status_code == 303
        if attempt < 2:
            too_soon = post(client, f"/callbacks/follow-ups/{rid}/call", token)
            assert too_soon.status_code == 422 and "Lần gọi tiếp theo" in too_soon.text
            clock.tick(timedelta(minutes=31))
            token = sign_in(client, "tvv1")
    clock.tick(timedelta(minutes=31))
    token = sign_in(client, "tvv1")
    # the limit: refused, yet the follow-up stays on the list, marked for the assignee to decide
    refused = post(client, f"/callbacks/follow-ups/{rid}/call", token)
    assert refused.status_code == 409 and "Đã gọi 3 lần mà chưa liên lạc được" in refused.text
    listed = client.get("/callbacks/follow-ups")
    assert f'data-record="{rid}"' in listed.text and 'data-used-up="1"' in listed.text
    page = client.get(f"/callbacks/follow-ups/{rid}")
    assert 'id="retry-form"' in page.text and "Gọi thêm (3 lần nữa)" in page.text
    with session_scope() as db:
        fu = db.scalar(select(FollowUp).where(FollowUp.record_id == rid))
        assert (fu.attempts, fu.last_outcome, fu.done_at) == (3, "no_answer", None)
    # someone else's follow-up: not theirs to decide
    client.cookies.clear()
    other = sign_in(client, "tvv2")
    assert post(client, f"/callbacks/follow-ups/{rid}/retry", other).status_code == 403
    client.cookies.clear()
    token = sign_in(client, "tvv1")
    assert post(client, f"/callbacks/follow-ups/{rid}/retry", token).status_code == 303
    assert post(client, f"/callbacks/follow-ups/{rid}/retry", token).status_code == 409  # attempts left now
    assert 'data-used-up="1"' not in client.get("/callbacks/follow-ups").text
    assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 303
    pbx.finish(placed + 1, "placed")
    assert post(client, f"/callbacks/follow-ups/{rid}/outcome", token, outcome="reached").status_code == 303
    assert f'data-record="{rid}"' not in client.get("/callbacks/follow-ups").text
    with session_scope() as db:
        fu = db.scalar(select(FollowUp).where(FollowUp.record_id == rid))
        assert (fu.attempts, fu.attempts_base, fu.done_reason) == (4, 3, "reached")
    assert [a for a, _ in audit_actions("follow_up.")] == (
        ["follow_up.call"] + ["follow_up.call", "follow_up.outcome"] * 3 + ["follow_up.retry", "follow_up.call",
                                                                             "follow_up.outcome"])


def test_a_new_follow_up_date_starts_the_attempts_again(client, staff, pbx, clock):
    rid = record(staff, due=TODAY)
    token = sign_in(client, "tvv1")
    for _ in range(3):
        post(client, f"/callbacks/follow-ups/{rid}/call", token)
        post(client, f"/callbacks/follow-ups/{rid}/outcome", token, outcome="no_answer")
        clock.tick(timedelta(minutes=31))
        token = sign_in(client, "tvv1")
    assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 409
    with session_scope() as db:
        db.get(CallRecord, rid).follow_up_date = TODAY + timedelta(days=2)
    assert 'data-used-up="1"' not in client.get("/callbacks/follow-ups").text
    assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 303


# ---------------------------------------------------------------------- 3. "do not call back (unsafe)"
def _unsafe_callback(client, caller: str = "0912345678") -> None:
    missed(caller, MORNING)
    build()
    [item] = [i for i in items() if i.number_masked == f"{caller[:4]} *** {caller[-3:]}"]
    token = sign_in(client, "tvv1")
    post(client, f"/callbacks/{item.id}/claim", token)
    post(client, f"/callbacks/{item.id}/call", token)
    assert post(client, f"/callbacks/{item.id}/outcome", token, outcome="unsafe").status_code == 303
    client.cookies.clear()


def test_the_mark_shows_in_the_pop_and_on_the_record_and_a_supervisor_lifts_it(client, staff, pbx):
    _unsafe_callback(client)
    # the caller rings again and tvv1 answers: the pop's caller history says not to call back
    again = call_id(feed_call(agent="PJSIP/tvv1", caller="0912345678", answered=True,
                              at=MORNING + timedelta(minutes=5), ended=True))
    other_caller = call_id(feed_call(agent="PJSIP/tvv1", caller="0987654321", answered=True,
                                     at=MORNING + timedelta(minutes=6), ended=True))
    token = sign_in(client, "tvv1")
    pop = client.get(f"/live/calls/{again}/pop")
    assert pop.status_code == 200 and 'data-mark="do_not_call_back"' in pop.text
    assert "Không gọi lại (không an toàn): người khác đã nghe máy khi gọi lại số này ngày 03/12/2026." in pop.text
    assert 'data-mark="do_not_call_back"' not in client.get(f"/live/calls/{other_caller}/pop").text
    with session_scope() as db:
        rec = CallRecord(call_id=again, centre_id=staff.centre_id, counsellor_id=staff.ids["tvv1"], state="draft")
        db.add(rec)
        db.flush()
        record_id = rec.id
    page = client.get(f"/records/{record_id}")
    assert 'id="do-not-call-panel"' in page.text and "Không gọi lại (không an toàn)" in page.text
    assert 'data-flag="do_not_call_back"' in page.text  # on the call card at the top of the record
    assert "lift-form" not in page.text  # a counsellor sees the mark, may not lift it
    [mark_id] = [m for (m,) in _marks()]
    assert post(client, f"/callbacks/do-not-call/{mark_id}/lift", token, reason="x").status_code == 403
    # a supervisor of another centre: no such mark
    client.cookies.clear()
    assert post(client, f"/callbacks/do-not-call/{mark_id}/lift", sign_in(client, "gs_other"),
                reason="x").status_code == 404
    client.cookies.clear()
    token = sign_in(client, "gs1")
    assert "lift-form" in client.get(f"/records/{record_id}").text
    assert "0912 *** 678" in client.get("/callbacks/settings").text
    refused = post(client, f"/callbacks/do-not-call/{mark_id}/lift", token, reason="  ")
    assert refused.status_code == 422 and "Hãy ghi lý do gỡ đánh dấu" in refused.text
    lifted = post(client, f"/callbacks/do-not-call/{mark_id}/lift", token, reason="Người gọi xin được gọi lại",
                  record_id=str(record_id))
    assert lifted.status_code == 303 and lifted.headers["location"] == f"/records/{record_id}"
    assert post(client, f"/callbacks/do-not-call/{mark_id}/lift", token, reason="again").status_code == 409
    assert 'data-mark="do_not_call_back"' not in client.get(f"/live/calls/{again}/pop").text
    page = client.get(f"/records/{record_id}")
    assert 'id="do-not-call-panel"' not in page.text and 'data-flag="do_not_call_back"' not in page.text
    assert audit_actions("callback.do_not_call_lift") == [
        ("callback.do_not_call_lift", {"number": "0912 *** 678", "reason": "Người gọi xin được gọi lại"})]
    with session_scope() as db:
        mark = db.get(DoNotCallBack, mark_id)
        assert (mark.lifted_by, mark.lift_reason) == ("gs1", "Người gọi xin được gọi lại")
    # lifted: the number's next missed call is an item again
    missed("0912345678", MORNING + timedelta(minutes=8))
    assert build()["made"] == 1


def _marks() -> list[tuple[int]]:
    with session_scope() as db:
        return [tuple(r) for r in db.execute(select(DoNotCallBack.id).where(DoNotCallBack.lifted_at.is_(None)))]


def test_a_marked_number_never_gets_a_new_item_while_marked(client, staff, pbx, clock):
    _unsafe_callback(client)
    for minutes in (5, 60, 600):
        missed("0912345678", MORNING + timedelta(minutes=minutes))
    clock.tick(timedelta(hours=11))
    got = build()
    assert got["made"] == 0 and items() == []
    with session_scope() as db:
        closed = [r.close_reason for r in db.scalars(select(CallbackItem).where(CallbackItem.status == "closed"))]
    assert closed == ["unsafe", "do_not_call"]


def test_an_unsafe_follow_up_marks_the_number_for_the_pop(client, staff, pbx):
    rid = record(staff, due=TODAY)
    token = sign_in(client, "tvv1")
    post(client, f"/callbacks/follow-ups/{rid}/call", token)
    assert post(client, f"/callbacks/follow-ups/{rid}/outcome", token, outcome="unsafe").status_code == 303
    again = answered("0912345678", MORNING + timedelta(minutes=5))
    pop = client.get(f"/live/calls/{again}/pop")
    assert 'data-mark="do_not_call_back"' in pop.text
    # a new follow-up date on the record: listed, but the button is disabled with the reason and a call refused
    with session_scope() as db:
        db.get(CallRecord, rid).follow_up_date = TODAY + timedelta(days=7)
    page = client.get(f"/callbacks/follow-ups/{rid}")
    assert 'id="call-button" class="primary" disabled' in page.text
    assert "Không được gọi lại cho người này: Đã đánh dấu không gọi lại." in page.text
    refused = post(client, f"/callbacks/follow-ups/{rid}/call", token)
    assert refused.status_code == 409 and "Không được gọi lại cho người này" in refused.text


def test_the_cli_shows_sets_and_clears_a_centres_hours_and_lists_not_before(staff, capsys):
    import json

    from hotline.cli import main

    missed("0912345678", MORNING)
    build()
    assert main(["callbacks", "hours", "--centre", "default", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"centre": "default", "hours": "07:30-21:00", "own": False}
    assert main(["callbacks", "hours", "--centre", "default", "--set", "7h-9h"]) == 2
    assert "GG:PP-GG:PP" in capsys.readouterr().err
    assert main(["callbacks", "hours", "--centre", "default", "--set", "13:00-17:00"]) == 0
    assert "13:00-17:00" in capsys.readouterr().out
    assert main(["callbacks", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["not_before"] == "2026-12-03T06:00:00+00:00"  # 13:00 in Hanoi
    assert main(["callbacks", "hours", "--centre", "default", "--clear", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["own"] is False
    assert main(["callbacks", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["not_before"] is None
    assert [d["after"] for _, d in audit_actions("callback.hours")] == ["13:00-17:00", ""]
