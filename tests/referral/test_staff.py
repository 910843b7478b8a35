"""Staff pages and commands: the centre's referral list, a referral's page, cancelling, the CLI."""

from __future__ import annotations

import json

from hotline.db import session_scope


def _make(world, *services):
    from hotline.auth.deps import Principal
    from referral import service

    p = Principal(id=world.uid("lan"), username="lan", display_name="", role="counsellor", centre_id=1, language="vi")
    with session_scope() as db:
        made = service.create(db, record_id=world.record_id, actor=p,
                              data={"service_ids": list(services), "urgency": "emergency", "ask": "Nhận tạm lánh"})
        return [(r.id, r.delivery.delivery_id, r.code) for r in made]


def test_cancel_stops_the_delivery_and_the_centre_sees_only_its_own(world, app_client):
    from referral import jobs

    [(ref_id, delivery_id, code)] = _make(world, "t-shelter-a")
    token = world.login(app_client, "lan")
    listing = app_client.get("/referrals")
    assert listing.status_code == 200 and code in listing.text
    page = app_client.get(f"/referrals/{ref_id}")
    assert page.status_code == 200 and "Nhận tạm lánh" in page.text and delivery_id in page.text
    r = app_client.post(f"/referrals/{ref_id}/cancel", data={"csrf_token": token, "reason": ""})
    assert r.status_code == 422
    r = app_client.post(f"/referrals/{ref_id}/cancel", data={"csrf_token": token, "reason": "Người gọi đổi ý"},
                        follow_redirects=False)
    assert r.status_code == 303
    assert jobs.deliver(delivery_id) == "skipped" and world.receiver.requests == []
    detail = app_client.get(f"/referrals/{ref_id}", headers={"Accept": "application/json"}).json()
    assert detail["state"] == "cancelled" and detail["decision_note"] == "Người gọi đổi ý"
    r = app_client.post(f"/referrals/{ref_id}/cancel", data={"csrf_token": token, "reason": "again"})
    assert r.status_code == 422  # already closed
    # A supervisor of another centre sees nothing of it.
    app_client.cookies.clear()
    world.login(app_client, "far")
    assert code not in app_client.get("/referrals").text
    assert app_client.get(f"/referrals/{ref_id}").status_code == 404
    # Every view is audited.
    from sqlalchemy import select

    from hotline.audit.models import AuditEntry

    with session_scope() as db:
        actions = [a for (a,) in db.execute(select(AuditEntry.action).where(AuditEntry.object_id == str(ref_id)))]
    assert "referral.view" in actions and "referral.cancel" in actions


def test_new_referral_page_and_record_panel(world, app_client):
    world.login(app_client, "lan")
    page = app_client.get(f"/records/{world.record_id}/referrals/new?q=tạm lánh")
    assert page.status_code == 200
    assert 'value="t-shelter-a"' in page.text and 'value="t-shelter-b"' in page.text
    assert "nhà tạm lánh, trợ giúp pháp lý" in page.text  # the recorded scope of consent is shown
    record = app_client.get(f"/records/{world.record_id}")
    assert f'href="/records/{world.record_id}/referrals/new"' in record.text


def test_cli_list_and_sweep(world, capsys):
    from hotline.cli import main

    [(ref_id, _, code)] = _make(world, "t-shelter-b")
    assert main(["--log-format", "console", "referral", "list", "--json"]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    item = json.loads(line)
    assert item["code"] == code and item["state"] == "queued" and item["delivery"] == "pending"
    assert main(["--log-format", "console", "referral", "sweep"]) == 0
    assert json.loads(capsys.readouterr().out) == {"escalated": 0, "expired": 0, "requeued": 0}


def test_referral_pages_follow_record_visibility_and_never_show_the_partner_link(world, app_client):
    """#14 finding 2: a counsellor who may not see another counsellor's draft record (404) may not
    open its referral either; nobody on staff sees the partner's single-use respond link."""
    from referral import service
    from referral.models import Referral

    [(ref_id, _delivery_id, code)] = _make(world, "t-shelter-a")  # from lan's draft record
    with session_scope() as db:
        link = service.link_url(service.link_for(db, db.get(Referral, ref_id)))
    world.uid("hoa")
    world.login(app_client, "hoa")
    assert app_client.get(f"/records/{world.record_id}").status_code == 404
    assert app_client.get(f"/referrals/{ref_id}").status_code == 404
    assert app_client.get(f"/referrals/{ref_id}", headers={"Accept": "application/json"}).status_code == 404
    assert code not in app_client.get("/referrals").text
    for name in ("lan", "sup", "admin"):  # those who may see the record see the referral, not the link
        world.login(app_client, name)
        page = app_client.get(f"/referrals/{ref_id}")
        assert page.status_code == 200, name
        assert link.split("/r/")[1] not in page.text and "respond_url" not in page.text, name
