"""Caller-history flags (safety risk, perpetrator known to call, child at risk, …) over HTTP:
validated against the caller_flag taxonomy, saved with the record, cleared by the HTML form,
shown on the record page, in the records list and in the caller history of the next call."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hotline.calls.models import CallRecord
from hotline.db import session_scope
from hotline.taxonomy import get_taxonomies
from tests.live.conftest import call_id, feed_call, sign_in

JSON = {"Accept": "application/json"}


def _open(client, token: str, cid: int) -> dict:
    r = client.post(f"/records/for-call/{cid}", headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    return r.json()


def _put(client, token: str, rid: int, version: int, **fields):
    return client.put(f"/records/{rid}", json={"version": version, "fields": fields},
                      headers={**JSON, "X-CSRF-Token": token})


def test_the_flag_scheme_is_bilingual_with_stable_codes():
    terms = {t.code: t for t in get_taxonomies().terms("caller_flag")}
    assert {"safety_risk", "perpetrator_known_to_call", "child_at_risk", "repeat_prank", "needs_interpreter",
            "disability_access"} <= set(terms)
    assert all(t.vi and t.en and t.vi != t.en for t in terms.values())


def test_flags_are_validated_saved_shown_and_cleared(client, staff):
    token = sign_in(client, "tvv1")
    rec = _open(client, token, call_id(feed_call()))
    bad = _put(client, token, rec["id"], rec["version"], flags=["safety_risk", "martian"])
    assert bad.status_code == 422
    problem = bad.json()["errors"]["flags"]
    assert problem.startswith("Lưu ý về người gọi:") and "martian" in problem and "child_at_risk" in problem
    with session_scope() as db:
        assert db.get(CallRecord, rec["id"]).flags == []  # nothing half-saved

    ok = _put(client, token, rec["id"], rec["version"], flags=["safety_risk", "child_at_risk", "safety_risk"])
    assert ok.status_code == 200, ok.text
    with session_scope() as db:
        assert db.get(CallRecord, rec["id"]).flags == ["safety_risk", "child_at_risk"]
    page = client.get(f"/records/{rec['id']}").text
    assert 'id="record-flags"' in page and 'data-flag="safety_risk"' in page
    assert "Nguy cơ mất an toàn / nguy hiểm tại nhà" in page and "Trẻ em có nguy cơ" in page
    assert 'name="flags" value="child_at_risk" checked' in page and 'name="flags" value="repeat_prank" checked' not in page
    listing = client.get("/records").text
    assert 'data-flag="child_at_risk"' in listing

    # the HTML form omits unticked boxes: submitting with none ticked clears them
    version = ok.json()["version"]
    r = client.post(f"/records/{rec['id']}", data={"csrf_token": token, "version": str(version), "action": "save",
                                                  "notes": "không còn nguy cơ"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    with session_scope() as db:
        assert db.get(CallRecord, rec["id"]).flags == []


def test_the_next_call_from_the_number_shows_the_flags_in_the_caller_history(client, staff):
    token = sign_in(client, "tvv1")
    earlier = call_id(feed_call(caller="0912 345 678", at=datetime.now(timezone.utc) - timedelta(days=2), ended=True))
    rec = _open(client, token, earlier)
    r = _put(client, token, rec["id"], rec["version"], flags=["perpetrator_known_to_call"], caller_role="perpetrator")
    assert r.status_code == 200, r.text
    now = call_id(feed_call(caller="+84912345678"))
    pop = client.get(f"/live/calls/{now}/pop").text
    assert 'data-flag="perpetrator_known_to_call"' in pop
    assert "Người gây bạo lực từng gọi vào đường dây" in pop
    # another number: no flags of this caller leak into its history
    other = call_id(feed_call(caller="0987 654 321"))
    assert "perpetrator_known_to_call" not in client.get(f"/live/calls/{other}/pop").text

    # an English-speaking counsellor reads the English label
    client.post("/language", data={"lang": "en", "next": "/live", "csrf_token": token})
    pop = client.get(f"/live/calls/{now}/pop").text
    assert "Perpetrator known to call" in pop and "Caller history" in pop
