"""The staff calls list over HTTP: 50 calls a page with links to the next and previous pages,
each row linked to its record, the counsellor's name (never the telephony interface), and the
audited reveal of the full number for the roles allowed to see it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from hotline.audit.models import AuditEntry
from hotline.calls.models import Call
from hotline.db import session_scope
from tests.daily_log.conftest import add_call
from tests.live.conftest import sign_in


def test_pages_links_names_and_an_audited_reveal(client, staff):
    now = datetime.now(timezone.utc)
    first_id, rid = add_call(staff.centre_id, now - timedelta(minutes=1), counsellor_id=staff.ids["tvv1"],
                             record={"issues": ("dv.physical",)}, number="+84987654321")
    with session_scope() as db:
        db.execute(update(Call).where(Call.id == first_id).values(answered_by="Local/agent2@agents/n"))
    for i in range(54):
        add_call(staff.centre_id, now - timedelta(minutes=10 + i), status="abandoned", wait=30, talk=None)

    sign_in(client, "gs1")
    page = client.get("/calls")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="status-', page.text)
    assert len(rows) == 50
    assert f'href="/records/{rid}"' in page.text and "TVV1" in page.text
    assert "Local/agent2" not in page.text
    assert 'href="/calls?page=2"' in page.text and 'rel="prev"' not in page.text
    second = client.get("/calls?page=2")
    assert len(re.findall(r'<tr class="status-', second.text)) == 5
    assert 'href="/calls?page=1"' in second.text and 'rel="next"' not in second.text
    assert f'data-reveal-call="{first_id}"' in page.text and "0987654321" not in page.text
    filtered = client.get("/calls?status=abandoned&status=")
    assert filtered.status_code == 200 and 'href="/calls?status=abandoned&amp;page=2"' in filtered.text
    assert client.get("/calls?page=0").status_code == 422

    token = sign_in(client, "gs1")
    shown = client.post(f"/live/calls/{first_id}/reveal", headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert shown.status_code == 200 and shown.json()["number"].replace(" ", "").endswith("987654321")
    with session_scope() as db:
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == "call.reveal",
                                                  AuditEntry.object_id == str(first_id))) is not None

    token = sign_in(client, "tvv1")
    mine = client.get("/calls")
    assert mine.status_code == 200 and "data-reveal-call" not in mine.text
    refused = client.post(f"/live/calls/{first_id}/reveal", headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert refused.status_code == 403
