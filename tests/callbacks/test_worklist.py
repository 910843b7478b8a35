"""The callback worklist: which missed calls become items (and which never do), claiming (one wins),
calling, outcomes, attempts and spacing, callback hours and expiry (freezegun), the CLI, the live
screen's strip, the wallboard's figures and the daily counts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from callbacks import service
from callbacks.models import CallbackAttempt, CallbackItem, DoNotCallBack
from hotline.audit.models import AuditEntry
from hotline.calls.models import Call, CallRecord
from hotline.cli import main
from hotline.db import session_scope
from tests.callbacks.conftest import MORNING, answered, missed
from tests.live.conftest import sign_in

pytestmark = pytest.mark.usefixtures("clock")


def build() -> dict[str, int]:
    with session_scope() as db:
        return service.build(db).as_dict()


def items(status: tuple[str, ...] = ("open", "claimed")) -> list[CallbackItem]:
    with session_scope() as db:
        rows = list(db.scalars(select(CallbackItem).where(CallbackItem.status.in_(status)).order_by(CallbackItem.id)))
        db.expunge_all()
        return rows


def post(client, path: str, token: str, **data: str):
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


# ---------------------------------------------------------------------- building
def test_missed_and_abandoned_calls_become_items_once(staff):
    first = missed("0912345678", MORNING)
    missed("0912345678", MORNING + timedelta(minutes=3))  # the same caller again: one item, two calls
    missed("0987654321", MORNING + timedelta(minutes=1), agent="PJSIP/tvv2")  # offered, not answered
    assert build() == {"made": 2, "merged": 0, "closed": 0, "expired": 0}
    rows = items()
    assert [(r.call_id, r.missed_calls, r.number_masked) for r in rows][0] == (first, 2, "0912 *** 678")
    assert {r.kind for r in rows} <= {"missed", "abandoned"} and all(r.centre_id == staff.centre_id for r in rows)
    assert build() == {"made": 0, "merged": 0, "closed": 0, "expired": 0}  # again: nothing changes
    missed("0912345678", MORNING + timedelta(minutes=6))
    assert build()["merged"] == 1
    assert [r.missed_calls for r in items()][0] == 3 and len(items()) == 2


def test_never_for_withheld_unavailable_answered_since_blocked_or_do_not_call(staff):
    from blocking import service as blocking

    missed("anonymous")
    missed("")
    missed("0911111111", MORNING)
    answered("0911111111", MORNING + timedelta(minutes=2))  # called again and was answered
    missed("0922222222")
    missed("0933333333")
    flagged_call = answered("0933333333", MORNING - timedelta(days=20))
    with session_scope() as db:
        sup = blocking.Actor(id=staff.ids["gs1"], username="gs1", role="supervisor", centre_id=staff.centre_id)
        blocking.add_block(db, actor=sup, number="0922222222", duration="2d", reason="quấy rối")
        db.add(CallRecord(call_id=flagged_call, centre_id=staff.centre_id, flags=["do_not_call_back"], state="completed"))
    result = build()
    assert result["made"] == 0 and result["closed"] == 3
    with session_scope() as db:
        closed = dict(db.execute(select(CallbackItem.number_masked, CallbackItem.close_reason)).all())
    assert closed == {"0911 *** 111": "answered_since", "0922 *** 222": "blocked", "0933 *** 333": "do_not_call"}
    assert items() == []


def test_an_open_item_closes_when_the_caller_gets_through(staff):
    missed("0912345678", MORNING)
    build()
    answered("0912345678", MORNING + timedelta(minutes=5))
    assert build()["closed"] == 1
    assert items() == []


def test_out_of_hours_callback_request_makes_an_item(staff):
    cid = answered("0944444444", MORNING)  # e.g. the out-of-hours message, then the key press
    with session_scope() as db:
        call = db.get(Call, cid)
        call.facts = {**(call.facts or {}), "callback_requested": "out_of_hours"}
        db.execute(update(Call).where(Call.id == cid).values(answered_at=None, status="completed"))
    assert build()["made"] == 1
    assert [r.kind for r in items()] == ["requested"]


def test_items_expire(staff, clock):
    missed("0912345678", MORNING)
    build()
    clock.tick(timedelta(hours=71))
    assert len(items()) == 1
    clock.tick(timedelta(hours=2))
    assert build()["expired"] == 1
    assert items() == [] and [r.close_reason for r in items(("expired",))] == ["expired"]
    assert build() == {"made": 0, "merged": 0, "closed": 0, "expired": 0}


# ---------------------------------------------------------------------- the page, claiming, calling
class Pbx:
    """hotline.pbx as the AMI listener drives it: the commands asked for, and their end (placed or failed)."""

    def requests(self) -> list[dict[str, object]]:
        from hotline.pbx.models import PbxCommand

        with session_scope() as db:
            return [{"user": c.user_id, "device": c.device, "ref": c.ref, "status": c.status}
                    for c in db.scalars(select(PbxCommand).order_by(PbxCommand.id))]

    def finish(self, n: int, status: str, reason: str = "") -> None:
        """End the n-th command asked for (1-based), as the listener does when Asterisk answers."""
        from hotline.pbx import service as pbx
        from hotline.pbx.models import PbxCommand

        with session_scope() as db:
            ids = list(db.scalars(select(PbxCommand.id).order_by(PbxCommand.id)))
            pbx.finish(db, ids[n - 1], status=status, reason=reason, call_uid=f"uid-{n}")


@pytest.fixture
def pbx(staff) -> Pbx:
    """Centre A has a hotline number to call from; tvv1 and tvv2 have their phones (tests/live's staff)."""
    from hotline.centres import service as centres
    from hotline.centres.models import Centre

    with session_scope() as db:
        centres.add_line(db, centre=db.get(Centre, staff.centre_id), provider="asterisk", kind="number",
                         identifier="+842873001111")
    return Pbx()


def test_page_claim_conflict_call_and_outcomes(client, staff, pbx):
    missed("0912345678", MORNING)
    build()
    [item] = items()
    t1 = sign_in(client, "tvv1")
    page = client.get("/callbacks")
    assert page.status_code == 200 and "0912 *** 678" in page.text and "912345678" not in page.text
    assert "Nhận gọi lại" in page.text
    assert post(client, f"/callbacks/{item.id}/claim", t1).status_code == 303
    client.cookies.clear()
    t2 = sign_in(client, "tvv2")
    second = post(client, f"/callbacks/{item.id}/claim", t2)
    assert second.status_code == 409 and "TVV1 đã nhận cuộc gọi lại này" in second.text
    assert post(client, f"/callbacks/{item.id}/call", t2).status_code == 409  # not theirs
    client.cookies.clear()
    t1 = sign_in(client, "tvv1")
    mine = client.get(f"/callbacks/{item.id}")
    assert "Đừng nêu tên đường dây" in mine.text and 'id="call-button"' in mine.text
    assert post(client, f"/callbacks/{item.id}/call", t1).status_code == 303
    assert pbx.requests() == [{"user": staff.ids["tvv1"], "device": "PJSIP/tvv1", "ref": f"cb:{item.id}",
                               "status": "pending"}]
    # the PBX could not reach the counsellor's phone: the attempt ends with the reason, the item is back
    pbx.finish(1, "failed", "busy")  # hotline.pbx.service.BUSY
    [back] = items()
    assert back.status == "open" and back.claimed_by_id is None and back.attempts == 0
    assert "máy bận" in client.get("/callbacks").text
    assert post(client, f"/callbacks/{item.id}/claim", t1).status_code == 303
    assert post(client, f"/callbacks/{item.id}/call", t1).status_code == 303
    pbx.finish(2, "placed")
    assert "Ghi kết quả" in client.get(f"/callbacks/{item.id}").text or "outcome-form" in client.get(f"/callbacks/{item.id}").text
    assert post(client, f"/callbacks/{item.id}/outcome", t1, outcome="reached").status_code == 303
    assert items() == [] and [r.close_reason for r in items(("done",))] == ["reached"]
    assert "0912 *** 678" not in client.get("/callbacks").text
    with session_scope() as db:
        actions = [a for (a,) in db.execute(select(AuditEntry.action).where(AuditEntry.object_type == "callback_item")
                                            .order_by(AuditEntry.id))]
        attempts = [(a.status, a.outcome, a.reason) for a in db.scalars(select(CallbackAttempt).order_by(CallbackAttempt.id))]
    assert actions == ["callback.claim", "callback.call", "callback.claim", "callback.call", "callback.outcome"]
    assert attempts == [("failed", "failed", "busy"), ("done", "reached", None)]


def test_no_answer_is_spaced_and_limited(client, staff, pbx, clock):
    missed("0912345678", MORNING)
    build()
    [item] = items()
    token = sign_in(client, "tvv1")
    for attempt in range(3):
        assert post(client, f"/callbacks/{item.id}/claim", token).status_code == 303
        assert post(client, f"/callbacks/{item.id}/call", token).status_code == 303, attempt
        assert post(client, f"/callbacks/{item.id}/outcome", token, outcome="no_answer").status_code == 303
        if attempt < 2:
            [again] = items()
            assert again.attempts == attempt + 1 and again.status == "open"
            post(client, f"/callbacks/{item.id}/claim", token)
            too_soon = post(client, f"/callbacks/{item.id}/call", token)
            assert too_soon.status_code == 409 and "lần gọi tiếp theo" in too_soon.text.lower()
            clock.tick(timedelta(minutes=31))
    assert items() == [] and [r.close_reason for r in items(("closed",))] == ["attempts"]


def test_unsafe_marks_the_number_and_no_item_is_made_again(client, staff, pbx):
    missed("0912345678", MORNING)
    build()
    [item] = items()
    token = sign_in(client, "tvv1")
    post(client, f"/callbacks/{item.id}/claim", token)
    post(client, f"/callbacks/{item.id}/call", token)
    assert post(client, f"/callbacks/{item.id}/outcome", token, outcome="unsafe").status_code == 303
    with session_scope() as db:
        assert db.scalars(select(DoNotCallBack.number_masked)).all() == ["0912 *** 678"]
    missed("0912345678", MORNING + timedelta(minutes=5))
    assert build() == {"made": 0, "merged": 0, "closed": 1, "expired": 0}
    assert items() == []


def test_wrong_number_closes_and_bad_outcome_is_refused(client, staff, pbx):
    missed("0912345678", MORNING)
    build()
    [item] = items()
    token = sign_in(client, "tvv1")
    post(client, f"/callbacks/{item.id}/claim", token)
    assert post(client, f"/callbacks/{item.id}/outcome", token, outcome="reached").status_code == 409  # no call yet
    post(client, f"/callbacks/{item.id}/call", token)
    assert post(client, f"/callbacks/{item.id}/outcome", token, outcome="maybe").status_code == 422
    assert post(client, f"/callbacks/{item.id}/outcome", token, outcome="wrong_number").status_code == 303
    assert [r.close_reason for r in items(("closed",))] == ["wrong_number"]


def test_outside_callback_hours_the_button_is_disabled_with_the_reason(client, staff, pbx, clock):
    missed("0912345678", MORNING)
    build()
    [item] = items()
    token = sign_in(client, "tvv1")
    post(client, f"/callbacks/{item.id}/claim", token)
    clock.move_to(MORNING.replace(hour=15))  # 22:00 in Hanoi
    token = sign_in(client, "tvv1")  # a fresh session (the morning's has timed out)
    page = client.get(f"/callbacks/{item.id}")
    assert 'id="call-button" class="primary" disabled' in page.text and "07:30–21:00" in page.text
    refused = post(client, f"/callbacks/{item.id}/call", token)
    assert refused.status_code == 422 and "07:30–21:00" in refused.text
    assert pbx.requests() == []


def test_another_centre_sees_nothing(client, staff):
    missed("0912345678", MORNING)
    build()
    [item] = items()
    token = sign_in(client, "tvv_other")
    assert "0912 *** 678" not in client.get("/callbacks").text
    assert client.get(f"/callbacks/{item.id}").status_code == 404
    assert post(client, f"/callbacks/{item.id}/claim", token).status_code == 404


def test_the_placed_calls_record_says_which_missed_call_it_returns(client, staff):
    from hotline.ingest.events import CallEvent, Kind, RawIn
    from hotline.ingest.spool import submit

    missed("0912345678", MORNING)
    build()
    [item] = items()
    t = MORNING + timedelta(minutes=8)
    key = "cb-placed-1"
    submit([RawIn("asterisk", f"{key}-{i}", t, "test", event_type="test", events=[e]) for i, e in enumerate([
        CallEvent(Kind.STARTED, "asterisk", key, t, channel=key, caller="0912345678", dialed="1800",
                  callback=f"cb:{item.id}", creates=True),
        CallEvent(Kind.ANSWERED, "asterisk", key, t + timedelta(seconds=5), agent="PJSIP/tvv1"),
    ])])
    with session_scope() as db:
        call = db.scalar(select(Call).where(Call.provider_key == key))
        assert call is not None and call.facts["callback"] == f"cb:{item.id}"
        record = CallRecord(call_id=call.id, centre_id=staff.centre_id, counsellor_id=staff.ids["tvv1"], state="draft")
        db.add(record)
        db.flush()
        record_id = record.id
    sign_in(client, "tvv1")
    page = client.get(f"/records/{record_id}")
    assert page.status_code == 200 and "Gọi lại cho cuộc gọi nhỡ lúc" in page.text
    # and the calls list says so under the placed call
    assert "Gọi lại cho cuộc gọi nhỡ lúc 09:00 03/12/2026" in client.get("/calls").text
    # a placed call is never itself a missed call to call back, nor "the caller answered since"
    assert build() == {"made": 0, "merged": 0, "closed": 0, "expired": 0}
    assert [i.id for i in items()] == [item.id]


# ---------------------------------------------------------------------- CLI, strip, wallboard, counts
def test_cli_build_and_list(staff, capsys):
    missed("0912345678", MORNING)
    assert main(["callbacks", "build", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["made"] == 1
    assert main(["callbacks", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["number"] == "0912 *** 678" and row["status"] == "open" and "912345678" not in json.dumps(row)
    assert main(["callbacks", "list"]) == 0
    assert "0912 *** 678" in capsys.readouterr().out
    assert main(["callbacks", "build", "--centre", "nope"]) == 2


def test_live_strip_and_wallboard_figures(client, staff):
    missed("0912345678", MORNING)
    build()
    sign_in(client, "tvv1")
    live = client.get("/live")
    assert live.status_code == 200 and 'id="callback-strip"' in live.text and "0912 *** 678" in live.text
    assert 'id="callback-strip-count">1<' in client.get("/callbacks/strip").text
    client.cookies.clear()
    sign_in(client, "gs1")
    data = client.get("/live/wallboard.json").json()
    figures = {f["key"]: f for f in data["figures"]}
    assert figures["callbacks"]["value"] == 1 and figures["oldest_callback"]["text"] == "03/12 09:00"
    assert "Cuộc gọi lại đang chờ" in client.get("/live/wallboard").text


def test_counts_for_the_daily_log(client, staff, pbx, clock):
    missed("0912345678", MORNING)
    missed("0987654321", MORNING + timedelta(minutes=1))
    build()
    first, second = items()
    token = sign_in(client, "tvv1")
    clock.tick(timedelta(minutes=20))
    post(client, f"/callbacks/{first.id}/claim", token)
    post(client, f"/callbacks/{first.id}/call", token)
    pbx.finish(1, "placed")
    post(client, f"/callbacks/{first.id}/outcome", token, outcome="reached")
    with session_scope() as db:
        got = service.counts(db, centre_id=staff.centre_id, since=MORNING - timedelta(hours=2),
                             until=MORNING + timedelta(hours=20))
    assert got == {"called_back": 1, "reached": 1, "median_minutes_to_callback": 30.0, "callback_requests": 0}


def test_retention_removes_ended_items(staff):
    from datetime import datetime, timezone

    missed("0912345678", MORNING)
    build()
    with session_scope() as db:
        db.execute(update(CallbackItem).values(status="done", close_reason="reached"))
    later = datetime(2027, 12, 1, tzinfo=timezone.utc)
    assert service.retain(now=later, notes_cutoff=None, numbers_cutoff=later, dry_run=True) == 1
    assert service.retain(now=later, notes_cutoff=None, numbers_cutoff=later, dry_run=False) == 1
    assert items(("done",)) == []


def test_the_daily_log_and_the_periodic_report_count_callbacks(client, staff, pbx, clock):
    from datetime import date

    from daily_log import reports
    from daily_log import service as daily_log
    from hotline.centres.models import Centre

    missed("0912345678", MORNING)
    build()
    [item] = items()
    token = sign_in(client, "tvv1")
    clock.tick(timedelta(minutes=50))  # an hour after the missed call
    post(client, f"/callbacks/{item.id}/claim", token)
    post(client, f"/callbacks/{item.id}/call", token)
    pbx.finish(1, "placed")
    post(client, f"/callbacks/{item.id}/outcome", token, outcome="reached")
    with session_scope() as db:
        centre = db.get(Centre, staff.centre_id)
        summary = daily_log.summarise(db, centre=centre, day=date(2026, 12, 3))
        report = reports.to_json(reports.build_report(db, centre=centre, period=reports.Period(
            date(2026, 12, 1), date(2026, 12, 3))))
    expected = {"called_back": 1, "reached": 1, "median_minutes_to_callback": 60.0, "callback_requests": 0}
    assert summary["callbacks"] == expected and report["callbacks"] == expected
    client.cookies.clear()
    sign_in(client, "gs1")
    page = client.get(f"/daily-log/{centre.code}/2026-12-03")
    assert page.status_code == 200 and "Cuộc gọi nhỡ đã được gọi lại" in page.text


def test_a_claim_nobody_uses_returns_to_the_list(client, staff, clock):
    missed("0912345678", MORNING)
    build()
    [item] = items()
    post(client, f"/callbacks/{item.id}/claim", sign_in(client, "tvv1"))
    client.cookies.clear()
    token = sign_in(client, "tvv2")
    assert post(client, f"/callbacks/{item.id}/claim", token).status_code == 409
    clock.tick(timedelta(minutes=21))  # HOTLINE_CALLBACK_CLAIM_MINUTES = 20
    token = sign_in(client, "tvv2")
    assert post(client, f"/callbacks/{item.id}/claim", token).status_code == 303
    assert items()[0].claimed_by_id == staff.ids["tvv2"]
