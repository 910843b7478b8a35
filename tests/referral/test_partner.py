"""The partner's side: accounts see only their organisation, single-use expiring links, signed
acknowledgements (forged and replayed ones refused)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import select

from hotline.db import session_scope
from referral import signing
from tests.helpers import csrf_from
from tests.referral.conftest import SECRET


def _make(world, *services, urgency="urgent"):
    """Create referrals through the service as counsellor lan (delivery is not queued here)."""
    from hotline.auth.deps import Principal
    from referral import service

    p = Principal(id=world.uid("lan"), username="lan", display_name="", role="counsellor", centre_id=1, language="vi")
    with session_scope() as db:
        made = service.create(db, record_id=world.record_id, actor=p,
                              data={"service_ids": list(services), "urgency": urgency, "ask": "Nhận tạm lánh"})
        return [(r.id, r.public_id) for r in made]


def _state(ref_id: int) -> str:
    from referral.models import Referral

    with session_scope() as db:
        return db.get(Referral, ref_id).state


def _link_token(ref_id: int) -> str:
    from referral import service
    from referral.models import Referral

    with session_scope() as db:
        ref = db.get(Referral, ref_id)
        return service.link_url(service.link_for(db, ref)).rsplit("/r/", 1)[1]


def test_partner_sees_only_their_organisation(world, app_client):
    [(a_id, a_pub)] = _make(world, "t-shelter-a")
    [(b_id, b_pub)] = _make(world, "t-shelter-b")
    from hotline.cli import main

    world.uid("pa"), world.uid("pb")
    assert main(["referral", "partner", "link", "pa", "org-a"]) == 0
    assert main(["referral", "partner", "link", "pb", "org-b"]) == 0
    assert main(["referral", "partner", "link", "lan", "org-b"]) != 0  # not a partner account
    token = world.login(app_client, "pa")
    home = app_client.get("/partner")
    assert home.status_code == 200 and a_pub in home.text and b_pub not in home.text
    assert app_client.get(f"/partner/referrals/{b_pub}").status_code == 404
    r = app_client.post(f"/partner/referrals/{b_pub}", data={"csrf_token": token, "decision": "accepted"})
    assert r.status_code == 404 and _state(b_id) == "queued"
    page = app_client.get(f"/partner/referrals/{a_pub}")
    assert page.status_code == 200 and "Nhận tạm lánh" in page.text
    assert _state(a_id) == "delivered"  # the partner opened it
    # Staff pages are closed to partners.
    assert app_client.get("/referrals").status_code == 403
    assert app_client.get(f"/referrals/{a_id}").status_code == 403
    # Declining needs a reason; accepting takes a note.
    r = app_client.post(f"/partner/referrals/{a_pub}", data={"csrf_token": token, "decision": "declined", "note": ""})
    assert r.status_code == 422 and "Hãy ghi lý do từ chối để trung tâm tìm nơi khác" in r.text
    r = app_client.post(f"/partner/referrals/{a_pub}", data={"csrf_token": token, "decision": "declined",
                                                              "note": "Hết giường tối nay"}, follow_redirects=False)
    assert r.status_code == 303 and _state(a_id) == "declined"
    r = app_client.post(f"/partner/referrals/{a_pub}", data={"csrf_token": token, "decision": "accepted"})
    assert r.status_code == 422 and _state(a_id) == "declined"
    # The other partner sees its own only.
    app_client.cookies.clear()
    world.login(app_client, "pb")
    home = app_client.get("/partner")
    assert b_pub in home.text and a_pub not in home.text
    assert app_client.get(f"/partner/referrals/{a_pub}").status_code == 404


def test_unlinked_partner_sees_nothing(world, app_client):
    _make(world, "t-shelter-a")
    world.login(app_client, "pa")
    home = app_client.get("/partner")
    assert home.status_code == 200 and 'id="not-linked"' in home.text and "HL-" not in home.text


def test_single_use_link(world, app_client):
    [(ref_id, _)] = _make(world, "t-shelter-b")
    token = _link_token(ref_id)
    app_client.base_url = app_client.base_url.copy_with(scheme="https")  # the public URL is https
    page = app_client.get(f"/r/{token}")
    assert page.status_code == 200 and "Nhận tạm lánh" in page.text
    csrf = csrf_from(page.text)
    r = app_client.post(f"/r/{token}", data={"csrf_token": csrf, "decision": "accepted", "note": "Đón lúc 21h"})
    assert r.status_code == 200 and 'id="answered"' in r.text
    assert _state(ref_id) == "accepted"
    again = app_client.get(f"/r/{token}")
    assert again.status_code == 409 and 'data-kind="used"' in again.text
    r = app_client.post(f"/r/{token}", data={"csrf_token": csrf, "decision": "declined", "note": "x"})
    assert r.status_code == 409 and _state(ref_id) == "accepted"
    # A forged or altered token is not a link.
    assert app_client.get(f"/r/{token[:-2]}xx").status_code == 404
    assert app_client.get("/r/not-a-token").status_code == 404
    # No CSRF token, no answer.
    [(ref2, _)] = _make(world, "t-shelter-b")
    r = app_client.post(f"/r/{_link_token(ref2)}", data={"decision": "accepted"})
    assert r.status_code == 403 and _state(ref2) == "queued"


def test_expired_link_says_so_and_offers_the_centre(world, app_client):
    from referral import jobs, service

    [(ref_id, _)] = _make(world, "t-shelter-b")
    token = _link_token(ref_id)
    # The link lives HOTLINE_REFERRAL_LINK_HOURS (72 h): valid just before, expired after.
    with freeze_time(timedelta(hours=71)):
        with session_scope() as db:
            service.open_link(db, token=token)
    with freeze_time(timedelta(hours=73)):
        with session_scope() as db:
            try:
                service.open_link(db, token=token)
                raise AssertionError("an expired link opened")
            except service.LinkProblem as exc:
                assert exc.kind == "expired"
        assert jobs.sweep()["expired"] == 1  # the referral itself expires with its link
    assert _state(ref_id) == "expired"
    app_client.base_url = app_client.base_url.copy_with(scheme="https")
    page = app_client.get(f"/r/{token}")
    assert page.status_code == 410
    assert 'data-kind="expired"' in page.text and "Trung tâm Công tác xã hội" in page.text
    r = app_client.post(f"/r/{token}", data={"csrf_token": csrf_from(page.text), "decision": "accepted"})
    assert r.status_code == 410 and _state(ref_id) == "expired"


def _ack(client, body: dict, *, secret: str = SECRET, ts: int | None = None):
    raw = json.dumps(body).encode()
    ts = int(time.time()) if ts is None else ts
    headers = {"Content-Type": "application/json", "X-Hotline-Timestamp": str(ts),
               "X-Hotline-Signature": signing.sign(secret, ts, raw)}
    return client.post("/api/referrals/ack", content=raw, headers=headers), raw, headers


def test_webhook_acknowledgement_signed_forged_replayed(world, app_client):
    [(ref_id, pub)] = _make(world, "t-shelter-a")
    # Forged: wrong secret.
    r, _, _ = _ack(app_client, {"referral_id": pub, "status": "accepted"}, secret="not-the-secret-at-all")
    assert r.status_code == 401 and "does not match" in r.json()["reason"] and _state(ref_id) == "queued"
    # Stale timestamp.
    r, _, _ = _ack(app_client, {"referral_id": pub, "status": "accepted"}, ts=int(time.time()) - 3600)
    assert r.status_code == 401 and _state(ref_id) == "queued"
    # Body altered after signing.
    r, raw, headers = _ack(app_client, {"referral_id": pub, "status": "received"})
    assert r.status_code == 200 and r.json()["state"] == "delivered"
    # Replayed exactly: refused.
    again = app_client.post("/api/referrals/ack", content=raw, headers=headers)
    assert again.status_code == 401 and "replay" in again.json()["reason"]
    tampered = app_client.post("/api/referrals/ack", content=raw.replace(b"received", b"accepted"), headers=headers)
    assert tampered.status_code == 401 and _state(ref_id) == "delivered"
    r, _, _ = _ack(app_client, {"referral_id": pub, "status": "accepted", "note": "Đã có giường"})
    assert r.status_code == 200 and _state(ref_id) == "accepted"
    # Another service's secret cannot acknowledge this referral; unknown ids are refused alike.
    r, _, _ = _ack(app_client, {"referral_id": "0" * 32, "status": "accepted"})
    assert r.status_code == 401
    r = app_client.post("/api/referrals/ack", content=b"not json", headers={"X-Hotline-Timestamp": "1"})
    assert r.status_code == 422


def test_admin_links_partner_accounts_in_the_page(world, app_client):
    world.uid("pa")
    token = world.login(app_client, "admin")
    page = app_client.get("/referrals/admin/partners")
    assert page.status_code == 200
    # a picker of the directory's organisations: no code to dig out of another form
    assert 'list="organisation-options"' in page.text and '<option value="org-a">' in page.text
    r = app_client.post("/referrals/admin/partners", data={"csrf_token": token, "username": "pa",
                                                           "organization_id": "no-such-org"})
    assert r.status_code == 422 and "Không có tổ chức" in r.text
    r = app_client.post("/referrals/admin/partners", data={"csrf_token": token, "username": "pa",
                                                           "organization_id": "org-a"}, follow_redirects=False)
    assert r.status_code == 303
    assert "org-a" in app_client.get("/referrals/admin/partners").text
    app_client.post("/referrals/admin/partners", data={"csrf_token": token, "username": "pa", "action": "unlink"})
    r = app_client.post("/referrals/admin/partners", data={"csrf_token": token, "username": "pa",
                                                           "organization_id": "Nhà tạm lánh Bình An"},
                        follow_redirects=False)
    assert r.status_code == 303  # the name typed in full is taken too
    app_client.cookies.clear()
    token = world.login(app_client, "sup")
    assert app_client.get("/referrals/admin/partners").status_code == 403


def test_refused_acknowledgements_are_logged_and_audited_and_unknown_ids_look_like_bad_signatures(
        world, app_client, caplog):
    """#14 finding 8: a refused acknowledgement leaves a log line and an audit entry, and an unknown
    referral_id gets the same answer as a wrong signature (no oracle for referral ids)."""
    import logging

    from hotline.audit.models import AuditEntry

    [(ref_id, pub)] = _make(world, "t-shelter-a")
    caplog.set_level(logging.INFO)
    forged, _, _ = _ack(app_client, {"referral_id": pub, "status": "accepted"}, secret="not-the-secret-at-all")
    unknown, _, _ = _ack(app_client, {"referral_id": "0" * 32, "status": "accepted"}, secret="not-the-secret-at-all")
    assert forged.status_code == unknown.status_code == 401
    assert forged.json() == unknown.json()
    with session_scope() as db:
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == "referral.acknowledge_refused")).all()
    assert len(refused) == 2
    assert sum("acknowledgement refused" in rec.getMessage() for rec in caplog.records) == 2
    assert _state(ref_id) == "queued"


def test_webhook_urls_must_be_https_unless_development_allows_http(world, monkeypatch):
    """#14 finding 10: names and notes never travel in clear text to a partner."""
    from directory import service as directory
    from hotline.settings import reset_settings
    from referral import jobs

    base = {"id": "t-plain", "organization_id": "org-p", "organization": "P", "name": "P", "service_type": "shelter",
            "province": "toàn quốc", "languages": "vi", "accessible": "no", "verified": "yes",
            "last_verified_at": "2026-11-01", "last_verified_by": "test", "referral_method": "webhook",
            "referral_webhook_secret": SECRET}
    monkeypatch.setenv("HOTLINE_REFERRAL_ALLOW_HTTP_WEBHOOKS", "false")
    reset_settings()
    try:
        directory.validate({**base, "referral_webhook_url": "http://partner.example/hook"})
    except directory.RecordError as exc:
        assert "https://" in str(exc)
    else:
        raise AssertionError("an http:// webhook was accepted in the directory")
    directory.validate({**base, "referral_webhook_url": "https://partner.example/hook"})
    for url in ("http://partner.example/hook", "http://127.0.0.1:9/hook"):
        try:
            jobs.send_webhook(target=url, payload={}, delivery_id="x", secret=SECRET)
        except ValueError as exc:
            assert "https://" in str(exc)
        else:
            raise AssertionError(f"{url} was accepted")


def test_the_partner_reads_place_names_never_codes(world, app_client):
    """#13: the caller's province and commune reach the partner (page, e-mail) as names in Vietnamese."""
    from hotline.records import places
    from referral import jobs, service
    from referral.delivery import payload_for
    from referral.models import Referral

    commune = places.resolve_commune("Nghĩa Hành", "51")
    world.record(commune_code=commune, consent_referral_scope={"to": "nhà tạm lánh", "data": "tỉnh, xã"})
    from hotline.auth.deps import Principal

    p = Principal(id=world.uid("lan"), username="lan", display_name="", role="counsellor", centre_id=1, language="vi")
    with session_scope() as db:
        [ref] = service.create(db, record_id=world.record_id, actor=p,
                               data={"service_ids": ["t-shelter-b"], "urgency": "urgent", "ask": "Nhận tạm lánh",
                                     "extras": ["province"]})
        ref_id = ref.id
    page = app_client.get(f"/r/{_link_token(ref_id)}")
    assert page.status_code == 200
    assert "Xã Nghĩa Hành, Quảng Ngãi" in page.text
    assert f">{commune}<" not in page.text and f" {commune}" not in page.text and ": 51 " not in page.text
    with session_scope() as db:
        payload = payload_for(db, db.get(Referral, ref_id))
    assert payload["referral"]["extra"]["province_name"] == "Quảng Ngãi"
    _, text, html = jobs.render_email(payload)
    for body in (text, html):
        assert "Xã Nghĩa Hành, Quảng Ngãi" in body and commune not in body
    # A referral made before the names were kept: the page still shows names.
    with session_scope() as db:
        ref = db.get(Referral, ref_id)
        extra = {k: v for k, v in ref.content["extra"].items() if not k.endswith("_name")}
        ref.content = {**ref.content, "extra": extra}
    page = app_client.get(f"/r/{_link_token(ref_id)}")
    assert "Xã Nghĩa Hành, Quảng Ngãi" in page.text
