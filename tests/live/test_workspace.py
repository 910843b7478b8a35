"""The counsellor's workspace over HTTP: the live screen shows the current call with its record,
presence follows calls (busy, wrap-up, available, with QueuePause for Asterisk), place pickers
refuse anything not on the list, completing returns to the live screen, and a stale tab's text is
kept in the history as a revision."""

from __future__ import annotations

import re

from freezegun import freeze_time

from hotline.db import session_scope, utcnow
from tests.live.conftest import call_id, feed_call, sign_in
from tests.live.test_records import JSON, open_record, put


def presence(client) -> str:
    m = re.search(r'id="presence-form"\s+data-state="(\w+)"', client.get("/live").text)
    assert m, "no presence on the live screen"
    return m.group(1)


def test_live_screen_is_the_workspace_of_the_answered_call(client, staff):
    token = sign_in(client, "tvv1")
    page = client.get("/live").text
    assert 'id="no-call"' in page and 'id="record-form"' not in page
    ringing = call_id(feed_call(agent="PJSIP/tvv1", caller="0912345678"))
    assert 'id="call-card"' not in client.get("/live").text  # offered, not answered: a pop only
    cid = call_id(feed_call(agent="PJSIP/tvv1", caller="0987654321", answered=True))
    page = client.get("/live").text
    assert f'id="call-card" aria-labelledby="call-card-title"\n         data-call-id="{cid}"' in page
    assert "0987 *** 321" in page and "0987654321" not in page
    assert 'id="record-form"' in page and 'id="directory-panel"' in page and 'id="legal-panel"' in page
    rid = int(re.search(r'data-record-id="(\d+)"', page).group(1))
    # the record page shows the same call card (number masked, status, timers)
    rec_page = client.get(f"/records/{rid}").text
    assert f'data-call-id="{cid}"' in rec_page and "0987 *** 321" in rec_page and 'id="cc-talk"' in rec_page
    # completing sends the counsellor back to the live screen, which waits for the next call
    rec = client.get(f"/records/{rid}", headers=JSON)
    assert rec.status_code == 200
    version = int(re.search(r'data-version="(\d+)"', rec_page).group(1))
    r = client.put(f"/records/{rid}", json={"version": version, "complete": True, "fields": {
        "caller_role": "survivor", "caller_sex": "female", "caller_age_group": "30_59", "issues": ["dv.physical"],
        "primary_issue": "dv.physical", "service_level": "2", "outcome": "resolved"}},
        headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "completed" and r.json()["next"] == f"/live?completed={rid}"
    page = client.get(f"/live?completed={rid}").text
    assert 'id="no-call"' in page and f"#{rid}" in page
    assert ringing  # the unanswered pop never became the workspace


def test_presence_follows_the_call_busy_then_wrap_up_then_available(client, staff, monkeypatch):
    from hotline import bus
    from hotline.settings import reset_settings

    monkeypatch.setenv("HOTLINE_WRAP_UP_SECONDS", "45")
    reset_settings()
    ami = bus.Subscription(["ami-commands"])
    try:
        sign_in(client, "tvv1")
        key = feed_call(agent="PJSIP/tvv1", answered=True)
        assert presence(client) == "busy"
        assert ami.get(timeout=0.3) is None  # busy: Asterisk already knows the member is in use
        with session_scope() as db:
            from sqlalchemy import select

            from hotline.calls.models import Call

            call = db.scalar(select(Call).where(Call.provider_key == key))
            assert call.counsellor_id == staff.ids["tvv1"]
        # the call ends: wrap-up, paused on the queue until the wrap-up is over
        from datetime import datetime, timezone

        from hotline.ingest.events import CallEvent, Kind, RawIn
        from hotline.ingest.spool import submit

        now = datetime.now(timezone.utc)
        submit([RawIn("asterisk", f"{key}-end", now, "end", event_type="test", events=[
            CallEvent(Kind.COMPLETED, "asterisk", key, now, agent="PJSIP/tvv1", talk_seconds=30, reason="agent")])])
        assert presence(client) == "wrap_up"
        command = ami.get(timeout=3)
        assert command["action"] == "QueuePause" and command["interface"] == "PJSIP/tvv1"
        assert command["paused"] is True and command["reason"] == "wrap_up" and command["until"]
        page = client.get("/live").text
        assert 'data-until="' in page and "Hoàn tất sau cuộc gọi" in page
        # 46 s later it reads as available; the screen's countdown makes it so (and unpauses)
        with freeze_time(utcnow().replace(tzinfo=None) + __import__("datetime").timedelta(seconds=46)):
            assert presence(client) == "available"
            token = sign_in(client, "tvv1")
            r = client.post("/live/presence/wrap-up-over", headers={**JSON, "X-CSRF-Token": token})
        assert r.status_code == 200 and r.json()["state"] == "available"
        assert ami.get(timeout=3)["paused"] is False
        # wrap-up cannot be chosen by hand
        bad = client.post("/live/presence", json={"state": "wrap_up"}, headers={**JSON, "X-CSRF-Token": token})
        assert bad.status_code == 422
    finally:
        ami.close()
        reset_settings()


def test_province_and_commune_come_from_the_list_never_free_text(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    # type-ahead: diacritics ignored (đ too), old names lead to the new province
    items = client.get("/records/places/provinces", params={"q": "dak"}).json()["items"]
    assert {"code": "66", "name": "Đắk Lắk", "note": ""} in items
    assert any(i["note"] == "Đắk Nông → Lâm Đồng" for i in items)
    old = client.get("/records/places/provinces", params={"q": "kon tum"}).json()["items"]
    assert old[0]["code"] == "51" and old[0]["note"] == "Kon Tum → Quảng Ngãi"
    communes = client.get("/records/places/communes", params={"province": "48", "q": "hai chau"}).json()["items"]
    assert communes[0]["name"] == "Phường Hải Châu"
    assert client.get("/records/places/communes", params={"province": "99"}).status_code == 422
    # a code gives its name (the form shows names for codes put back from the browser's copy)
    assert client.get("/records/places/provinces", params={"q": "48"}).json()["items"][0]["name"] == "Thành phố Đà Nẵng"
    assert client.get("/records/places/communes", params={"province": "51", "q": communes[0]["code"]}).json()["items"] == []
    # an unknown province is refused with a clear message, never cut and saved
    r = put(client, token, rec["id"], rec["version"], province_code="Tỉnh Hoàng Sa Mới")
    assert r.status_code == 422
    message = r.json()["errors"]["province_code"]
    assert "Tỉnh Hoàng Sa Mới" in message and "34" in message
    page = client.get(f"/records/{rec['id']}").text
    assert "Hoàng Sa M" not in page
    # an old name is mapped to the new province; a commune must belong to it
    r = put(client, token, rec["id"], rec["version"], province_code="Kon Tum", commune_code=communes[0]["code"])
    assert r.status_code == 422 and "Phường Hải Châu" in r.json()["errors"]["commune_code"]
    r = put(client, token, rec["id"], rec["version"], province_code="48", commune_code=communes[0]["code"])
    assert r.status_code == 200, r.text
    page = client.get(f"/records/{rec['id']}").text
    assert 'value="Thành phố Đà Nẵng"' in page and 'value="Phường Hải Châu"' in page
    r = put(client, token, rec["id"], r.json()["version"], commune_code="free text")
    assert r.status_code == 422 and "free text" in r.json()["errors"]["commune_code"]


def test_a_stale_tab_loses_no_text_both_versions_are_revisions(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    one = put(client, token, rec["id"], rec["version"], notes="Ghi chú của tab một.")
    assert one.status_code == 200
    stale = put(client, token, rec["id"], rec["version"], notes="Ghi chú của tab hai.")
    assert stale.status_code == 409
    # the same stale save again (a retry) is not kept twice
    assert put(client, token, rec["id"], rec["version"], notes="Ghi chú của tab hai.").status_code == 409
    # tab two merges: both notes kept, saved as a revision "merged"
    merged = "Ghi chú của tab một.\n---\nGhi chú của tab hai."
    r = client.put(f"/records/{rec['id']}", json={"version": stale.json()["current_version"], "merge": True,
                                                  "fields": {"notes": merged}},
                   headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    history = client.get(f"/records/{rec['id']}/history").text
    assert history.count('data-action="conflict_kept"') == 1 and history.count('data-action="merged"') == 1
    assert "Ghi chú của tab hai." in history and "Ghi chú của tab một." in history
    assert "Kept from another tab" not in history  # Vietnamese, not the msgid
    assert ">conflict_kept<" not in history and ">merged<" not in history  # never a raw code


def test_refused_completion_redirects_so_back_never_resends(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    r = client.post(f"/records/{rec['id']}", data={"csrf_token": token, "version": rec["version"],
                                                   "action": "complete", "notes": "chưa đủ"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/records/{rec['id']}?check=complete")
    page = client.get(r.headers["location"]).text
    assert 'id="form-errors"' in page and 'id="err-caller_role"' in page and "chưa đủ" in page


def test_one_meaning_per_shortcut(client, staff):
    sign_in(client, "tvv1")
    rec_page = None
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    for path in ("/live", f"/records/{rec['id']}", "/records"):
        page = client.get(path).text
        rec_page = page if path.startswith("/records/") else rec_page
        # Alt+N is "new record" everywhere; the notes are Alt+G
        assert page.count('data-shortcut="Alt+N"') == 1, path
        assert "<kbd>Alt+N</kbd></td><td>Hồ sơ mới (không qua tổng đài)" in page.replace("\n", "") or \
            "<kbd>Alt+N</kbd>" in page, path
    assert 'aria-keyshortcuts="Alt+G"' in rec_page and 'aria-keyshortcuts="Alt+N"' not in rec_page.split("<main")[1]


def test_record_page_reveal_of_the_number_is_for_supervisors_and_audited(client, staff):
    from sqlalchemy import select

    from hotline.audit.models import AuditEntry

    token = sign_in(client, "tvv1")
    cid = call_id(feed_call(agent="PJSIP/tvv1", caller="0987654321", answered=True))
    rec = open_record(client, token, cid)
    page = client.get(f"/records/{rec['id']}").text
    assert "0987 *** 321" in page and 'id="cc-reveal"' not in page  # a counsellor sees it masked only
    token = sign_in(client, "gs1")
    page = client.get(f"/records/{rec['id']}").text
    assert 'id="cc-reveal"' in page and "0987654321" not in page
    r = client.post(f"/live/calls/{cid}/reveal", headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200 and r.json()["number"].replace(" ", "").endswith("987654321")
    with session_scope() as db:
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == "call.reveal",
                                                  AuditEntry.object_id == str(cid)).limit(1)) is not None \
            or db.scalar(select(AuditEntry).where(AuditEntry.action == "call.reveal").limit(1)) is not None


def test_wrap_up_ends_without_a_screen_open(client, staff, monkeypatch):
    """The periodic job ends wrap-ups past their time: available, and unpaused on the queue."""
    from datetime import timedelta

    from hotline import bus
    from hotline.live import jobs
    from hotline.live import service as live
    from hotline.live.models import CounsellorPresence
    from hotline.settings import reset_settings

    monkeypatch.setenv("HOTLINE_WRAP_UP_SECONDS", "30")
    reset_settings()
    with session_scope() as db:
        db.add(CounsellorPresence(user_id=staff.ids["tvv1"], centre_id=staff.centre_id, state="wrap_up",
                                  changed_at=utcnow() - timedelta(seconds=10)))
    ami = bus.Subscription(["ami-commands"])
    try:
        assert jobs.end_wrap_ups() == 0  # 20 s still to go
        with session_scope() as db:
            db.get(CounsellorPresence, staff.ids["tvv1"]).changed_at = utcnow() - timedelta(seconds=31)
        assert jobs.end_wrap_ups() == 1
        command = ami.get(timeout=3)
        assert command["interface"] == "PJSIP/tvv1" and command["paused"] is False
        with session_scope() as db:
            assert live.get_presence(db, user_id=staff.ids["tvv1"]) == "available"
            assert db.get(CounsellorPresence, staff.ids["tvv1"]).state == "available"
        assert any(p.name == "live.wrap_up" for p in __import__("hotline.queue", fromlist=["x"]).periodic_tasks())
    finally:
        ami.close()
        reset_settings()


def test_two_saves_racing_cannot_both_win(client, staff):
    """Both read version n; the first writes n+1; the second's write is refused by the database
    (not only by the version check in Python) and nothing it held is lost."""
    import pytest
    from sqlalchemy.orm.exc import StaleDataError

    from hotline.calls.models import CallRecord
    from hotline.db import new_session

    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    a, b = new_session(), new_session()
    try:
        ra, rb = a.get(CallRecord, rec["id"]), b.get(CallRecord, rec["id"])
        ra.notes, ra.version = "tab một", ra.version + 1
        a.commit()
        rb.notes, rb.version = "tab hai", rb.version + 1
        with pytest.raises(StaleDataError):
            b.commit()
    finally:
        a.close()
        b.close()
    page = client.get(f"/records/{rec['id']}").text
    assert "tab một" in page
