"""'Given to the caller': an article from the legal panel and an address from the directory panel
are added to the record, once each, only by staff who may edit it."""

from __future__ import annotations

import re

from hotline.db import session_scope
from tests.live.conftest import call_id, feed_call, sign_in
from tests.live.test_records import JSON, open_record


def _seed_panels() -> None:
    from directory.seed import seed as seed_directory
    from legal_library.service import seed as seed_legal

    with session_scope() as s:
        seed_directory(s)
    with session_scope() as s:
        seed_legal(s)


def _give(client, token, rid, body):
    return client.post(f"/records/{rid}/references", json=body, headers={**JSON, "X-CSRF-Token": token})


def test_panel_buttons_add_references_to_the_record(client, staff):
    _seed_panels()
    token = sign_in(client, "tvv1")
    rec = open_record(client, token, call_id(feed_call()))
    rid = rec["id"]

    legal = client.get("/legal/panel", params={"issues": "dv.physical", "record_id": rid}).text
    article = re.search(r'data-ref-id="([^"]+)"[^>]*data-label="([^"]+)"', legal) or \
        re.search(r'data-label="([^"]+)"[^>]*data-ref-id="([^"]+)"', legal)
    assert article, "the legal panel offers no 'given to the caller' button for dv.physical"
    directory = client.get("/directory/panel", params={"q": "111", "record_id": rid}).text
    address = re.search(r'data-ref-id="([^"]+)"', directory)
    assert address, "the directory panel offers no 'given to the caller' button for 111"

    r = _give(client, token, rid, {"kind": "legal", "ref_id": "art-1", "label": "Điều 3 Luật PCBLGĐ 2022"})
    assert r.status_code == 200, r.text
    r = _give(client, token, rid, {"kind": "directory", "ref_id": address.group(1), "label": "Tổng đài 111"})
    refs = r.json()["references"]
    assert [(x["kind"], x["label"]) for x in refs] == [("legal", "Điều 3 Luật PCBLGĐ 2022"),
                                                        ("directory", "Tổng đài 111")]
    # Pressing the button twice adds nothing.
    again = _give(client, token, rid, {"kind": "legal", "ref_id": "art-1", "label": "Điều 3 Luật PCBLGĐ 2022"})
    assert len(again.json()["references"]) == 2
    # What was given shows on the record.
    page = client.get(f"/records/{rid}").text
    assert "Danh bạ dịch vụ: Tổng đài 111" in page and "Tra cứu pháp luật: Điều 3 Luật PCBLGĐ 2022" in page


def test_references_are_checked(client, staff):
    token = sign_in(client, "tvv1")
    rid = open_record(client, token, call_id(feed_call()))["id"]
    assert _give(client, token, rid, {"kind": "gossip", "ref_id": "1", "label": "x"}).status_code == 422
    assert _give(client, token, rid, {"kind": "legal", "ref_id": "", "label": "x"}).status_code == 422
    # No CSRF token: refused, nothing added.
    r = client.post(f"/records/{rid}/references", json={"kind": "legal", "ref_id": "1", "label": "x"}, headers=JSON)
    assert r.status_code == 403
    # Another counsellor cannot add to this draft (nor see it: 404 as on /records/{id}); a counsellor of
    # another centre cannot see it.
    client.cookies.clear()
    other = sign_in(client, "tvv2")
    assert _give(client, other, rid, {"kind": "legal", "ref_id": "1", "label": "x"}).status_code == 404
    client.cookies.clear()
    far = sign_in(client, "tvv_other")
    assert _give(client, far, rid, {"kind": "legal", "ref_id": "1", "label": "x"}).status_code == 404
