"""The call record form over HTTP: access rules, CSRF, autosave and version conflicts,
validation messages, one-action close, completion and the history of later edits."""

from __future__ import annotations

from sqlalchemy import select

from hotline.audit.models import AuditEntry
from hotline.db import session_scope
from tests.live.conftest import call_id, feed_call, sign_in

JSON = {"Accept": "application/json"}


def open_record(client, token: str, cid: int) -> dict:
    r = client.post(f"/records/for-call/{cid}", headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    return r.json()


def put(client, token: str, rid: int, version: int, **fields):
    return client.put(f"/records/{rid}", json={"version": version, "fields": fields},
                      headers={**JSON, "X-CSRF-Token": token})


def audits(action: str) -> list[AuditEntry]:
    with session_scope() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_autosave_then_stale_tab_gets_409_with_the_difference(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    r = put(client, token, rec["id"], rec["version"], notes="Chị gọi từ nhà mẹ đẻ", caller_sex="female")
    assert r.status_code == 200, r.text
    v2 = r.json()["version"]
    assert v2 == rec["version"] + 1
    # a second tab still holds the first version
    stale = put(client, token, rec["id"], rec["version"], notes="bản cũ")
    assert stale.status_code == 409
    body = stale.json()
    assert body["current_version"] == v2
    assert body["differences"]["notes"] == {"yours": "bản cũ", "theirs": "Chị gọi từ nhà mẹ đẻ",
                                            "label": "Ghi chú"}
    page = client.get(f"/records/{rec['id']}")
    assert "Chị gọi từ nhà mẹ đẻ" in page.text and "bản cũ" not in page.text


def test_no_csrf_token_is_refused_and_changes_nothing(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    r = client.put(f"/records/{rec['id']}", json={"version": rec["version"], "fields": {"notes": "x"}}, headers=JSON)
    assert r.status_code == 403
    r = client.post(f"/records/{rec['id']}", data={"version": rec["version"], "notes": "x", "action": "save"})
    assert r.status_code == 403
    assert client.post("/records/new", data={"channel": "walk_in"}).status_code == 403
    ok = put(client, token, rec["id"], rec["version"], notes="y")
    assert ok.json()["version"] == rec["version"] + 1  # nothing was saved in between


def test_markup_in_notes_is_shown_as_text(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    put(client, token, rec["id"], rec["version"], notes='<script>alert("x")</script><b>đậm</b>')
    page = client.get(f"/records/{rec['id']}")
    assert '<script>alert("x")</script>' not in page.text
    assert "&lt;script&gt;alert(" in page.text and "&lt;b&gt;đậm&lt;/b&gt;" in page.text


def test_counsellor_cannot_open_another_counsellors_draft_but_sees_completed_ones(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    token2 = sign_in(client, "tvv2")
    assert client.get(f"/records/{rec['id']}").status_code == 404
    assert put(client, token2, rec["id"], rec["version"], notes="x").status_code == 404
    assert f'data-record-id="{rec["id"]}"' not in client.get("/records").text
    # tvv1 completes it; now the whole centre may read it but only its author and supervisors edit it
    token = sign_in(client, "tvv1")
    r = client.post(f"/records/{rec['id']}/close-nc", json={"code": "nc.silent", "version": rec["version"]},
                    headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    token2 = sign_in(client, "tvv2")
    assert client.get(f"/records/{rec['id']}").status_code == 200
    assert put(client, token2, rec["id"], r.json()["version"], notes="x").status_code == 403
    sign_in(client, "tvv_other")
    assert client.get(f"/records/{rec['id']}").status_code == 404
    sign_in(client, "gs_other")
    assert client.get(f"/records/{rec['id']}").status_code == 404
    sign_in(client, "gs1")
    assert client.get(f"/records/{rec['id']}").status_code == 200
    sign_in(client, "admin1")
    assert client.get(f"/records/{rec['id']}").status_code == 200
    views = audits("record.view")
    assert {a.actor_username for a in views} >= {"tvv2", "gs1", "admin1"}
    assert all(a.object_id == str(rec["id"]) for a in views)


def test_partner_reaches_none_of_the_counsellor_pages(client, staff):
    sign_in(client, "partner1")
    for path in ("/records", "/records/new", "/records/1", "/live", "/live/wallboard", "/live/events",
                 "/live/wallboard.json", "/live/calls/1/pop"):
        assert client.get(path, headers=JSON).status_code == 403, path


def test_signed_out_autosave_gets_401_and_page_asks_to_sign_in(client, staff):
    r = client.put("/records/1", json={"version": 1, "fields": {}}, headers=JSON)
    assert r.status_code == 401
    r = client.get("/records/1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_one_action_close_of_a_silent_call(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call(answered=True)))
    r = client.post(f"/records/{rec['id']}/close-nc", data={"code": "nc.prank", "version": rec["version"],
                                                             "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    data = client.get(f"/records/{rec['id']}").text
    assert 'data-state="completed"' in data
    sign_in(client, "gs1")
    board = client.get("/live/wallboard.json").json()
    assert board["totals"]["records_completed"] == 1 and board["totals"]["non_counselling"] == 1
    with session_scope() as db:
        from hotline.calls.models import CallRecord

        row = db.get(CallRecord, rec["id"])
        assert (row.primary_issue, row.service_level, row.state, row.outcome) == ("nc.prank", 0, "completed",
                                                                                  "non_counselling")
        assert [i.code for i in row.issues if i.is_primary] == ["nc.prank"]


def test_close_with_a_counselling_code_is_refused_with_a_reason(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    r = client.post(f"/records/{rec['id']}/close-nc", json={"code": "dv.physical", "version": rec["version"]},
                    headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 422
    assert "nc.silent" in r.json()["detail"] and "dv.physical" in r.json()["detail"]


def test_completion_says_which_field_and_why_and_keeps_the_draft(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    r = client.post(f"/records/{rec['id']}", data={
        "csrf_token": token, "version": rec["version"], "action": "complete", "caller_age_group": "under_16",
        "issues": "child_abuse", "primary_issue": "child_abuse", "notes": "em bé 12 tuổi", "consent_referral": "1",
        "caller_sex": "female", "service_level": "2"})
    # POST/redirect/GET: the draft is kept and the page (a GET) lists what is missing, so going
    # back never asks the browser to resend the form
    assert r.history and r.history[0].status_code == 303 and "check=complete" in str(r.url)
    assert r.status_code == 200
    for name, words in [("caller_role", "Người gọi là"), ("outcome", "Kết quả"),
                        ("child_consent", "dưới 16 tuổi"), ("representative_consent", "người đại diện hợp pháp"),
                        ("referral_to", "chuyển tới đâu")]:
        assert f'id="err-{name}"' in r.text, name
        assert words in r.text, words
    assert "em bé 12 tuổi" in r.text
    # the typed values were kept in the draft
    page = client.get(f"/records/{rec['id']}")
    assert "em bé 12 tuổi" in page.text and 'data-state="draft"' in page.text


def test_a_bad_code_is_named(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    r = put(client, token, rec["id"], rec["version"], caller_sex="martian", notes="x" * 20001)
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert "martian" in errors["caller_sex"] and "female" in errors["caller_sex"]
    assert "20001" in errors["notes"] and "20000" in errors["notes"]


def test_complete_then_edit_is_kept_in_history(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call(answered=True)))
    fields = {"caller_role": "survivor", "caller_sex": "female", "caller_age_group": "30_59",
              "issues": ["dv.physical", "dv.psychological"], "primary_issue": "dv.physical",
              "service_level": "3", "outcome": "resolved", "notes": "lần đầu"}
    r = client.put(f"/records/{rec['id']}", json={"version": rec["version"], "fields": fields, "complete": True},
                   headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "completed"
    sign_in(client, "gs1")
    gs_token = sign_in(client, "gs1")
    r2 = put(client, gs_token, rec["id"], r.json()["version"], risk="high", notes="bổ sung")
    assert r2.status_code == 200, r2.text
    hist = client.get(f"/records/{rec['id']}/history")
    assert hist.status_code == 200
    assert "completed" in hist.text and "edited" in hist.text
    assert "bổ sung" in hist.text and "lần đầu" in hist.text and "GS1" in hist.text
    # an edit that would make a completed record incomplete is refused and changes nothing
    r3 = put(client, gs_token, rec["id"], r2.json()["version"], outcome="")
    assert r3.status_code == 422 and "outcome" in r3.json()["errors"]
    assert put(client, gs_token, rec["id"], r2.json()["version"], risk="low").status_code == 200


def test_walk_in_record_without_a_call(client, staff):
    token = sign_in(client, "tvv1")
    r = client.post("/records/new", data={"channel": "walk_in", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and 'value="walk_in" selected' in page.text
    bad = client.post("/records/new", data={"channel": "telepathy", "csrf_token": token}, headers=JSON)
    assert bad.status_code == 422 and "walk_in" in bad.json()["detail"]
    assert audits("record.create")[0].detail == {"channel": "walk_in"}


def test_form_shows_bilingual_taxonomies(client, staff):
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    page = client.get(f"/records/{rec['id']}").text
    assert "Bạo lực gia đình" in page or "bạo lực gia đình" in page.lower()
    for scheme_value in ('value="under_16"', 'value="survivor"', 'value="nc.silent"', 'value="prevention"'):
        assert scheme_value in page
