"""Pop details, caller history, number reveal and the wallboard, over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from freezegun import freeze_time
from sqlalchemy import select

from hotline.audit.models import AuditEntry
from hotline.db import session_scope
from tests.live.conftest import call_id, feed_call, sign_in

JSON = {"Accept": "application/json"}


def test_caller_history_lists_earlier_calls_of_the_same_number_with_what_was_recorded(client, staff):
    token = sign_in(client, "tvv1")
    earlier = call_id(feed_call(caller="0912 345 678", at=datetime.now(timezone.utc) - timedelta(days=3), ended=True))
    rid = client.post(f"/records/for-call/{earlier}", headers={**JSON, "X-CSRF-Token": token}).json()
    fields = {"caller_role": "survivor", "issues": ["dv.physical"], "primary_issue": "dv.physical",
              "service_level": "3", "outcome": "follow_up", "follow_up_needed": True,
              "follow_up_date": (datetime.now(timezone.utc) + timedelta(days=2)).date().isoformat()}
    r = client.put(f"/records/{rid['id']}", json={"version": rid["version"], "fields": fields, "complete": True},
                   headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    feed_call(caller="0987654321", at=datetime.now(timezone.utc) - timedelta(days=1))  # someone else
    withheld = call_id(feed_call(caller="anonymous"))
    now = call_id(feed_call(caller="+84912345678"))
    page = client.get(f"/live/calls/{now}/pop").text
    assert "Bạo lực thể chất" in page or "dv.physical" not in page  # labelled, not coded
    assert page.count("<tr data-flags=") == 1  # the one earlier call of this number
    assert "Còn theo dõi" in page
    assert "Tham vấn tâm lý" in page
    assert "Chưa gọi trước đây" in client.get(f"/live/calls/{withheld}/pop").text
    with session_scope() as db:
        rows = list(db.scalars(select(AuditEntry).where(AuditEntry.action == "caller_history.view")))
        assert [r.object_id for r in rows] == [str(now), str(withheld)]


def test_counsellor_cannot_see_pops_of_calls_not_offered_to_them(client, staff):
    sign_in(client, "tvv2")
    cid = call_id(feed_call(agent="PJSIP/tvv1"))
    assert client.get(f"/live/calls/{cid}/pop").status_code == 404
    sign_in(client, "gs_other")
    assert client.get(f"/live/calls/{cid}/pop").status_code == 404
    sign_in(client, "gs1")
    assert client.get(f"/live/calls/{cid}/pop").status_code == 200


def test_reveal_is_for_supervisors_and_is_audited(client, staff):
    cid = call_id(feed_call(agent="PJSIP/tvv1", caller="0912345678"))
    token = sign_in(client, "tvv1")
    r = client.post(f"/live/calls/{cid}/reveal", headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 403 and "0912" not in r.text
    token = sign_in(client, "gs1")
    assert client.post(f"/live/calls/{cid}/reveal", headers=JSON).status_code == 403  # no CSRF token
    r = client.post(f"/live/calls/{cid}/reveal", headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200 and r.json()["number"] == "0912 345 678"
    with session_scope() as db:
        rows = {(a.actor_username, a.action) for a in db.scalars(select(AuditEntry))}
    assert ("gs1", "call.reveal") in rows and ("tvv1", "call.reveal_refused") in rows
    assert not any("345" in str(a) for a in rows)


def test_refusals_come_in_the_users_language(client, staff):
    """Vietnamese by default; English once the counsellor chose English."""
    from hotline.auth.models import User

    cid = call_id(feed_call(agent="PJSIP/tvv1", caller="0912345678"))
    token = sign_in(client, "tvv1")
    headers = {**JSON, "X-CSRF-Token": token}
    r = client.post(f"/live/calls/{cid}/reveal", headers=headers)
    assert r.status_code == 403 and r.json()["detail"] == "Vai trò của bạn không được xem số đầy đủ."
    r = client.post("/live/presence", json={"state": "asleep"}, headers=headers)
    assert r.status_code == 422 and r.json()["detail"].startswith("Trạng thái không hợp lệ 'asleep'; chọn: ")
    with session_scope() as db:
        db.get(User, staff.ids["tvv1"]).language = "en"
    r = client.post(f"/live/calls/{cid}/reveal", headers=headers)
    assert r.status_code == 403 and r.json()["detail"] == "Your role may not see full numbers."
    r = client.post("/live/presence", json={"state": "asleep"}, headers=headers)
    assert r.status_code == 422 and r.json()["detail"].startswith("Unknown presence 'asleep'; choose one of: ")


def test_wallboard_waiting_in_progress_presence_and_totals(client, staff):
    client.get("/no-such-page")  # every router is built on first use: build them before dates are frozen
    with freeze_time("2026-11-23 03:00:00"):
        base = datetime(2026, 11, 23, 2, 59, 0, tzinfo=timezone.utc)
        waiting = call_id(feed_call(agent=None, at=base))
        talking = call_id(feed_call(agent="PJSIP/tvv2", answered=True, at=base - timedelta(minutes=5)))
        call_id(feed_call(agent="PJSIP/tvv1", answered=True, ended=True, at=base - timedelta(hours=1)))
        call_id(feed_call(agent="PJSIP/tvv1", at=base - timedelta(days=2), ended=True))  # not today
        token = sign_in(client, "tvv1")
        client.post("/live/presence", json={"state": "available"}, headers={**JSON, "X-CSRF-Token": token})
        sign_in(client, "gs1")
        data = client.get("/live/wallboard.json").json()
        page = client.get("/live/wallboard")
    assert [w["id"] for w in data["waiting"]] == [waiting]
    assert data["waiting"][0]["waited"] == 59 and data["waiting"][0]["caller"] == "0912 *** 678"
    assert [(p["id"], p["counsellor"]) for p in data["in_progress"]] == [(talking, "TVV2")]
    assert data["totals"]["received"] == 3 and data["totals"]["answered"] == 2
    # TVV2 is on a call: busy (presence follows calls), not the "away" it never changed
    assert {p["name"]: p["state"] for p in data["presence"]} == {"TVV1": "available", "TVV2": "busy"}
    assert page.status_code == 200 and 'id="wb-waiting"' in page.text
    sign_in(client, "tvv1")
    assert client.get("/live/wallboard.json", headers=JSON).status_code == 403


def test_live_screen_and_form_pages_use_local_assets_only(client, staff):
    token = sign_in(client, "tvv1")
    rec = client.post(f"/records/for-call/{call_id(feed_call())}", headers={**JSON, "X-CSRF-Token": token}).json()
    for path in ("/live", f"/records/{rec['id']}"):
        page = client.get(path).text
        assert "http://" not in page.replace("http://testserver", "") and "https://" not in page
        assert len(page.encode()) < 120_000
    for asset in ("/live-static/live.js", "/live-static/record.js", "/live-static/wallboard.js",
                  "/live-static/live.css"):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) < 20_000 and b"http" not in r.content



def test_calls_in_progress_are_listed_for_a_screen_as_it_may_see_them(client, staff):
    waiting = call_id(feed_call(agent=None, caller="0912000111"))
    feed_call(agent=None, caller="0912000222", ended=True)
    offered = call_id(feed_call(agent="PJSIP/tvv1", caller="0912000333"))
    sign_in(client, "gs1")
    r = client.get("/live/calls.json", headers=JSON)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    calls = r.json()["calls"]
    assert sorted(c["id"] for c in calls) == sorted([waiting, offered])
    assert {c["caller_masked"] for c in calls} == {"0912 *** 111", "0912 *** 333"}
    assert "0912000111" not in r.text and "+84912000111" not in r.text  # masked only
    client.cookies.clear()
    sign_in(client, "tvv1")
    assert [c["id"] for c in client.get("/live/calls.json", headers=JSON).json()["calls"]] == [offered]
    client.cookies.clear()
    sign_in(client, "tvv_other")  # another centre's counsellor sees none of them
    assert client.get("/live/calls.json", headers=JSON).json()["calls"] == []
