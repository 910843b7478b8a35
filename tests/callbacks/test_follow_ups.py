"""The follow-up worklist: records with a follow-up date, due/overdue markers, the assignee (the record's
counsellor unless a supervisor reassigns), the discreet call (ref fu:<record id>), outcomes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from callbacks.models import DoNotCallBack, FollowUp
from hotline.calls.models import CallRecord
from hotline.db import session_scope
from tests.callbacks.conftest import MORNING, answered
from tests.callbacks.test_worklist import Pbx, post
from tests.live.conftest import sign_in

pytestmark = pytest.mark.usefixtures("clock")
TODAY = date(2026, 12, 3)  # MORNING's day in Hanoi


def record(staff, *, due: date | None, counsellor: str = "tvv1", consent: bool = True, caller: str = "0912345678") -> int:
    call_id = answered(caller, MORNING - timedelta(days=3))
    with session_scope() as db:
        rec = CallRecord(call_id=call_id, centre_id=staff.centre_id, counsellor_id=staff.ids[counsellor],
                         state="completed", follow_up_needed=due is not None, follow_up_date=due,
                         consent_callback=consent, callback_safe_time="sau 18 giờ", callback_safe_method="phone_call")
        db.add(rec)
        db.flush()
        return rec.id


@pytest.fixture
def pbx(staff) -> Pbx:
    from hotline.centres import service as centres
    from hotline.centres.models import Centre

    with session_scope() as db:
        centres.add_line(db, centre=db.get(Centre, staff.centre_id), provider="asterisk", kind="number",
                         identifier="+842873001111")
    return Pbx()


def test_markers_and_who_sees_what(client, staff):
    overdue = record(staff, due=TODAY - timedelta(days=2))
    due = record(staff, due=TODAY, counsellor="tvv2", caller="0987654321")
    coming = record(staff, due=TODAY + timedelta(days=4), caller="0911222333")
    record(staff, due=None, caller="0944555666")  # no follow-up: never listed
    sign_in(client, "tvv1")
    page = client.get("/callbacks/follow-ups")
    assert page.status_code == 200
    assert f'data-record="{overdue}" class="marker-overdue"' in page.text and "Quá hạn" in page.text
    assert f'data-record="{coming}" class="marker-upcoming"' in page.text
    assert f'data-record="{due}"' not in page.text  # tvv2's
    client.cookies.clear()
    sign_in(client, "gs1")
    page = client.get("/callbacks/follow-ups")
    assert all(f'data-record="{r}"' in page.text for r in (overdue, due, coming)) and "Đến hạn hôm nay" in page.text
    assert "sau 18 giờ" in page.text
    client.cookies.clear()
    sign_in(client, "tvv_other")
    assert f'data-record="{overdue}"' not in client.get("/callbacks/follow-ups").text
    assert client.get(f"/callbacks/follow-ups/{overdue}").status_code == 404


def test_supervisor_reassigns_and_counsellors_may_not(client, staff):
    rid = record(staff, due=TODAY)
    token = sign_in(client, "tvv1")
    assert post(client, f"/callbacks/follow-ups/{rid}/assign", token, user_id=str(staff.ids["tvv2"])).status_code == 403
    client.cookies.clear()
    token = sign_in(client, "gs1")
    assert post(client, f"/callbacks/follow-ups/{rid}/assign", token, user_id=str(staff.ids["tvv_other"])).status_code == 422
    assert post(client, f"/callbacks/follow-ups/{rid}/assign", token, user_id=str(staff.ids["tvv2"])).status_code == 303
    client.cookies.clear()
    sign_in(client, "tvv1")
    assert f'data-record="{rid}"' not in client.get("/callbacks/follow-ups").text
    client.cookies.clear()
    sign_in(client, "tvv2")
    assert f'data-record="{rid}"' in client.get("/callbacks/follow-ups").text


def test_follow_up_call_outcomes(client, staff, pbx, clock):
    rid = record(staff, due=TODAY)
    token = sign_in(client, "tvv1")
    page = client.get(f"/callbacks/follow-ups/{rid}")
    assert "Đừng nêu tên đường dây" in page.text and 'id="call-button" class="primary">' in page.text
    assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 303
    assert [r["ref"] for r in pbx.requests()] == [f"fu:{rid}"]
    assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 409  # one at a time
    pbx.finish(1, "placed")
    assert client.get(f"/callbacks/follow-ups/{rid}/status").json()["status"] == "placed"
    assert post(client, f"/callbacks/follow-ups/{rid}/outcome", token, outcome="no_answer").status_code == 303
    assert f'data-record="{rid}"' in client.get("/callbacks/follow-ups").text  # still to do
    assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 422  # spaced: 30 minutes
    assert "Lần gọi tiếp theo" in client.get(f"/callbacks/follow-ups/{rid}").text
    clock.tick(timedelta(minutes=31))
    token = sign_in(client, "tvv1")
    assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 303
    assert post(client, f"/callbacks/follow-ups/{rid}/outcome", token, outcome="unsafe").status_code == 303
    assert f'data-record="{rid}"' not in client.get("/callbacks/follow-ups").text
    with session_scope() as db:
        fu = db.scalar(select(FollowUp).where(FollowUp.record_id == rid))
        assert (fu.attempts, fu.done_reason) == (2, "unsafe")
        assert db.scalars(select(DoNotCallBack.number_masked)).all() == ["0912 *** 678"]
        # a new follow-up date puts it back on the list
        db.get(CallRecord, rid).follow_up_date = TODAY + timedelta(days=7)
    assert f'data-record="{rid}"' in client.get("/callbacks/follow-ups").text
    refused = post(client, f"/callbacks/follow-ups/{rid}/call", token)  # but never to an unsafe number
    assert refused.status_code == 409 and "Không được gọi lại" in refused.text


def test_no_consent_no_call_and_done_another_way(client, staff, pbx):
    rid = record(staff, due=TODAY, consent=False)
    token = sign_in(client, "tvv1")
    page = client.get(f"/callbacks/follow-ups/{rid}")
    assert "disabled" in page.text and "Người gọi không đồng ý được gọi lại." in page.text
    assert post(client, f"/callbacks/follow-ups/{rid}/call", token).status_code == 422
    assert pbx.requests() == []
    assert post(client, f"/callbacks/follow-ups/{rid}/done", token).status_code == 303
    assert f'data-record="{rid}"' not in client.get("/callbacks/follow-ups").text


def test_reminders_due_to_the_assignee_overdue_to_supervisors_once_a_day(client, staff, clock):
    from callbacks import service
    from hotline.notifications.models import Notification

    due = record(staff, due=TODAY)
    late = record(staff, due=TODAY - timedelta(days=1), caller="0987654321")
    record(staff, due=TODAY + timedelta(days=1), caller="0911222333")
    with session_scope() as db:
        assert service.send_reminders(db) == {"due": 1, "overdue": 1}
        assert service.send_reminders(db) == {"due": 0, "overdue": 0}  # once a day
    with session_scope() as db:
        got = sorted((n.user_id, n.kind, n.link) for n in db.scalars(select(Notification)))
    assert got == sorted([(staff.ids["tvv1"], "follow_up.due", f"/callbacks/follow-ups/{due}"),
                          (staff.ids["gs1"], "follow_up.overdue", f"/callbacks/follow-ups/{late}")])
    sign_in(client, "tvv1")
    inbox = client.get("/notifications")
    assert f"Việc theo dõi hồ sơ #{due} đến hạn hôm nay." in inbox.text
    clock.tick(timedelta(days=1))
    with session_scope() as db:
        assert service.send_reminders(db) == {"due": 1, "overdue": 2}  # tomorrow's, and both overdue now
