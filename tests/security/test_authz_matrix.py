"""#14 "What to build" 3: the authorisation matrix, as a test.

``MATRIX`` below is the one table: every route of the app × every role → what that role gets.
The cases are generated from ``create_app().routes``, so a route added without a row fails with a
message naming it (and a row for a route that no longer exists fails too).

Roles (columns, in this order)::

    anon   nobody signed in
    cA     counsellor of centre A (the counsellor who answered A's call and owns A's record)
    cB     counsellor of centre B
    sA     supervisor of centre A
    admin  administrator (of centre A)
    pX     partner account of organisation X (A's referral goes to X)
    pY     partner account of organisation Y
    tok    the API token (``Authorization: Bearer``), no session

Path parameters are real ids of objects of centre A / organisation X made in the fixture, so
"counsellor of B on A's record" really asks for A's record. Each request is made with a fresh
session (and its CSRF token for writes, with an empty form): the matrix checks the gate, not the
form, so an allowed write may still answer 400/409/422 for the missing fields.

Cells::

    ok    passes the gate: 2xx, 3xx (not to /login), or a 4xx about the request itself (400, 409, 422)
    404   refused as if the object did not exist (what another centre / organisation must get)
    403   refused: the role may not use this route
    in    anonymous: sent to sign in (303 to /login for pages, 401 for JSON)
    no    refused in any way (401, 403, 404 or to /login): used for signature-checked webhooks

Any 5xx fails, whatever the cell says. ``STREAMS`` never end: only their refusals are requested here
(the roles that may read them are covered by tests/live's server-sent events tests). SQLite only (the gate does not depend on the backend).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from hotline.db import session_scope
from tests.live.conftest import call_id, feed_call, sign_in

ROLES = ("anon", "cA", "cB", "sA", "admin", "pX", "pY", "tok")
USERS = {"cA": "tvv1", "cB": "tvv_other", "sA": "gs1", "admin": "admin1", "pX": "partner1", "pY": "partner_y"}

# method path                                         anon cA   cB   sA   admin pX  pY   tok
MATRIX_TEXT = """
GET /openapi.json                                    : ok   ok   ok   ok   ok   ok   ok   ok
GET /api/docs                                        : ok   ok   ok   ok   ok   ok   ok   ok
GET /docs/oauth2-redirect                            : ok   ok   ok   ok   ok   ok   ok   ok
GET /                                                : in   ok   ok   ok   ok   ok   ok   in
GET /healthz                                         : ok   ok   ok   ok   ok   ok   ok   ok
GET /api/calls                                       : in   ok   ok   ok   ok   403  403  ok
GET /calls                                           : in   ok   ok   ok   ok   403  403  in
GET /api/directory/search                            : in   ok   ok   ok   ok   403  403  ok
GET /directory                                       : in   ok   ok   ok   ok   403  403  in
GET /directory/panel                                 : in   ok   ok   ok   ok   403  403  in
GET /directory/admin                                 : in   403  403  403  ok   403  403  in
GET /directory/admin/stale                           : in   403  403  403  ok   403  403  in
GET /directory/admin/history                         : in   403  403  403  ok   403  403  in
GET /directory/admin/new                             : in   403  403  403  ok   403  403  in
GET /directory/admin/{service_id}/edit               : in   403  403  403  ok   403  403  in
GET /api/hsds/services                               : in   ok   ok   ok   ok   403  403  ok
GET /api/hsds/services/{service_id}                  : in   ok   ok   ok   ok   403  403  ok
GET /api/hsds/taxonomy_terms                         : in   ok   ok   ok   ok   403  403  ok
GET /directory/admin/taxonomy                        : in   403  403  403  ok   403  403  in
GET /api/legal/search                                : in   ok   ok   ok   ok   403  403  ok
GET /api/legal/articles/{article_id}/reference       : in   ok   ok   ok   ok   403  403  ok
GET /legal                                           : in   ok   ok   ok   ok   403  403  in
GET /legal/documents/{document_id}                   : in   ok   ok   ok   ok   403  403  in
GET /legal/articles/{article_id}/read                : in   ok   ok   ok   ok   403  403  in
GET /legal/panel                                     : in   ok   ok   ok   ok   403  403  in
GET /legal/admin                                     : in   403  403  403  ok   403  403  in
GET /legal/admin/versions/{version_id}               : in   403  403  403  ok   403  403  in
GET /login                                           : ok   ok   ok   ok   ok   ok   ok   ok
# no sign-in under way: back to /login
GET /login/second-factor                             : in   in   in   in   in   in   in   in
GET /login/password                                  : in   in   in   in   in   in   in   in
GET /login/enrol                                     : in   in   in   in   in   in   in   in
GET /account                                         : in   ok   ok   ok   ok   ok   ok   in
GET /account/second-factor                           : in   ok   ok   ok   ok   ok   ok   in
GET /admin/users                                     : in   403  403  403  ok   403  403  in
GET /admin/agents                                    : in   403  403  403  ok   403  403  in
GET /admin/audit                                     : in   403  403  403  ok   403  403  in
GET /live/events                                     : in   ok   ok   ok   ok   403  403  in
GET /live                                            : in   ok   ok   ok   ok   403  403  in
GET /live/calls.json                                 : in   ok   ok   ok   ok   403  403  in
GET /live/calls/{call_id}/pop                        : in   ok   404  ok   ok   403  403  in
GET /live/wallboard.json                             : in   403  403  ok   ok   403  403  in
GET /live/wallboard                                  : in   403  403  ok   ok   403  403  in
GET /records                                         : in   ok   ok   ok   ok   403  403  in
GET /records/new                                     : in   ok   ok   ok   ok   403  403  in
GET /records/places/provinces                        : in   ok   ok   ok   ok   403  403  in
GET /records/places/communes                         : in   ok   ok   ok   ok   403  403  in
GET /records/{record_id}                             : in   ok   404  ok   ok   403  403  in
GET /records/{record_id}/history                     : in   ok   404  ok   ok   403  403  in
GET /daily-log                                       : in   403  403  ok   ok   403  403  in
GET /daily-log/failures                              : in   403  403  403  ok   403  403  in
GET /daily-log/{code}/{day_text}                     : in   403  403  ok   ok   403  403  in
GET /daily-log/{code}/{day_text}/export.csv          : in   403  403  ok   ok   403  403  in
GET /daily-log/{code}/{day_text}/export.xlsx         : in   403  403  ok   ok   403  403  in
GET /daily-log/{code}/{day_text}/print               : in   403  403  ok   ok   403  403  in
GET /reports                                         : in   403  403  ok   ok   403  403  in
GET /reports/export.csv                              : in   403  403  ok   ok   403  403  in
GET /records/{record_id}/referrals/new               : in   ok   404  ok   ok   403  403  in
GET /referrals                                       : in   ok   ok   ok   ok   403  403  in
GET /referrals/{referral_id}                         : in   ok   404  ok   ok   403  403  in
GET /partner                                         : in   403  403  403  403  ok   ok   in
GET /partner/referrals/{public_id}                   : in   403  403  403  403  ok   404  in
# the single-use link is the gate (tests/referral/test_partner.py)
GET /r/{token}                                       : ok   ok   ok   ok   ok   ok   ok   ok
GET /referrals/admin/partners                        : in   403  403  403  ok   403  403  in
GET /readyz                                          : ok   ok   ok   ok   ok   ok   ok   ok
# only for the configured metrics addresses / token, not sessions
GET /metrics                                         : 403  403  403  403  403  403  403  403
GET /admin/retention                                 : in   403  403  403  ok   403  403  in
# anonymous writes are refused by the CSRF check before the sign-in one
POST /records/{record_id}/references                 : 403  ok   404  ok   ok   403  403  403
# Twilio's signature is the gate: nobody else, signed in or not
POST /webhooks/twilio/voice                          : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/wait                           : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/status                         : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/enqueue-action                 : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/dequeue                        : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/dial-action                    : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/agent                          : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/blocked-key                    : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/closed-key                     : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/outbound/{command_id}          : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/outbound/{command_id}/status   : 403  403  403  403  403  403  403  403
POST /webhooks/twilio/outbound/{command_id}/dial     : 403  403  403  403  403  403  403  403
POST /directory/admin/new                            : 403  403  403  403  ok   403  403  403
POST /directory/admin/{service_id}/edit              : 403  403  403  403  ok   403  403  403
POST /directory/admin/{service_id}/verify            : 403  403  403  403  ok   403  403  403
POST /directory/admin/taxonomy                       : 403  403  403  403  ok   403  403  403
POST /legal/admin/import                             : 403  403  403  403  ok   403  403  403
POST /legal/admin/versions/{version_id}/publish      : 403  403  403  403  ok   403  403  403
POST /login                                          : 403  ok   ok   ok   ok   ok   ok   403
# signed-in: the sign-out's own redirect to /login
POST /logout                                         : 403  in   in   in   in   in   in   403
POST /logout-everywhere                              : 403  in   in   in   in   in   in   403
POST /language                                       : 403  ok   ok   ok   ok   ok   ok   403
POST /login/second-factor                            : 403  in   in   in   in   in   in   403
POST /login/password                                 : 403  in   in   in   in   in   in   403
POST /login/enrol                                    : 403  in   in   in   in   in   in   403
POST /account/password                               : 403  ok   ok   ok   ok   ok   ok   403
POST /account/second-factor                          : 403  ok   ok   ok   ok   ok   ok   403
POST /account/second-factor/off                      : 403  ok   ok   ok   ok   ok   ok   403
POST /admin/users                                    : 403  403  403  403  ok   403  403  403
POST /admin/users/{user_id}/{action}                 : 403  403  403  403  ok   403  403  403
POST /admin/agents                                   : 403  403  403  403  ok   403  403  403
POST /live/presence/wrap-up-over                     : in   ok   ok   ok   ok   403  403  in
POST /live/calls/{call_id}/reveal                    : in   403  403  ok   ok   403  403  in
POST /live/calls/{call_id}/listen                    : in   403  403  ok   ok   403  403  in
POST /live/presence                                  : in   ok   ok   ok   ok   403  403  in
POST /records/new                                    : in   ok   ok   ok   ok   403  403  in
POST /records/for-call/{call_id}                     : in   ok   404  ok   ok   403  403  in
PUT /records/{record_id}                             : in   ok   404  ok   ok   403  403  in
POST /records/{record_id}                            : in   ok   404  ok   ok   403  403  in
POST /records/{record_id}/close-nc                   : in   ok   404  ok   ok   403  403  in
POST /daily-log/{code}/{day_text}/build              : in   403  403  ok   ok   403  403  in
POST /daily-log/{code}/{day_text}/sign-off           : in   403  403  ok   ok   403  403  in
POST /daily-log/{code}/{day_text}/comments           : in   403  403  ok   ok   403  403  in
POST /records/{record_id}/referrals                  : in   ok   404  ok   ok   403  403  in
POST /referrals/{referral_id}/cancel                 : in   ok   404  ok   ok   403  403  in
POST /referrals/{referral_id}/retry                  : in   ok   404  ok   ok   403  403  in
POST /partner/referrals/{public_id}                  : in   403  403  403  403  ok   404  in
POST /r/{token}                                      : 403  ok   ok   ok   ok   ok   ok   403
# the partner's HMAC signature is the gate (refused with 400/403 inside: tests/referral)
POST /api/referrals/ack                              : ok   ok   ok   ok   ok   ok   ok   ok
POST /referrals/admin/partners                       : in   403  403  403  ok   403  403  in
POST /admin/retention/holds                          : 403  403  403  403  ok   403  403  403
POST /admin/retention/holds/{record_id}/release      : 403  403  403  403  ok   403  403  403
# blocking (#17 item 3): supervisors and administrators block; counsellors only propose
GET /blocking                                        : in   403  403  ok   ok   403  403  in
POST /blocking                                       : in   403  403  ok   ok   403  403  in
POST /blocking/{block_id}/lift                       : in   403  403  ok   ok   403  403  in
POST /blocking/proposals/{proposal_id}/accept        : in   403  403  ok   ok   403  403  in
POST /blocking/proposals/{proposal_id}/refuse        : in   403  403  ok   ok   403  403  in
POST /records/{record_id}/block-proposal             : in   ok   404  ok   ok   403  403  in
GET /api/blocking/check                              : in   403  403  ok   ok   403  403  ok
POST /api/blocking/pressed                           : in   403  403  ok   ok   403  403  ok
# the inbox (#13 item 5): every signed-in user, their own notifications only (A's belongs to cA)
GET /notifications                                   : in   ok   ok   ok   ok   ok   ok   in
GET /notifications/count                             : in   ok   ok   ok   ok   ok   ok   in
GET /notifications/{notification_id}/open            : in   ok   404  404  404  404  404  in
POST /notifications/read-all                         : in   ok   ok   ok   ok   ok   ok   in
POST /notifications/{notification_id}/read           : in   ok   404  404  404  404  404  in
# lines' routing (#17 items 4, 5): administrators set them; the dialplan asks with the API token
GET /admin/lines                                     : in   403  403  403  ok   403  403  in
GET /admin/lines/{line_id}                           : in   403  403  403  ok   403  403  in
POST /admin/lines/{line_id}                          : in   403  403  403  ok   403  403  in
GET /api/lines/route                                 : in   403  403  403  ok   403  403  ok
POST /api/lines/callback-request                     : in   403  403  403  ok   403  403  ok
# callback and follow-up worklists (#17 items 1, 2): staff of the centre; another centre's items are 404
GET /callbacks                                       : in   ok   ok   ok   ok   403  403  in
POST /callbacks/build                                : in   403  403  ok   ok   403  403  in
GET /callbacks/strip                                 : in   ok   ok   ok   ok   403  403  in
GET /callbacks/follow-ups                            : in   ok   ok   ok   ok   403  403  in
GET /callbacks/{item_id}                             : in   ok   404  ok   ok   403  403  in
GET /callbacks/{item_id}/status                      : in   ok   404  ok   ok   403  403  in
POST /callbacks/{item_id}/claim                      : in   ok   404  ok   ok   403  403  in
POST /callbacks/{item_id}/release                    : in   ok   404  ok   ok   403  403  in
POST /callbacks/{item_id}/call                       : in   ok   404  ok   ok   403  403  in
POST /callbacks/{item_id}/outcome                    : in   ok   404  ok   ok   403  403  in
GET /callbacks/follow-ups/{record_id}                : in   ok   404  ok   ok   403  403  in
GET /callbacks/follow-ups/{record_id}/status         : in   ok   404  ok   ok   403  403  in
POST /callbacks/follow-ups/{record_id}/call          : in   ok   404  ok   ok   403  403  in
POST /callbacks/follow-ups/{record_id}/outcome       : in   ok   404  ok   ok   403  403  in
POST /callbacks/follow-ups/{record_id}/done          : in   ok   404  ok   ok   403  403  in
POST /callbacks/follow-ups/{record_id}/assign        : in   403  403  ok   ok   403  403  in
POST /callbacks/follow-ups/{record_id}/retry         : in   ok   404  ok   ok   403  403  in
GET /callbacks/settings                              : in   403  403  ok   ok   403  403  in
POST /callbacks/settings                             : in   403  403  ok   ok   403  403  in
POST /callbacks/do-not-call/{mark_id}/lift           : in   403  403  ok   ok   403  403  in
"""


STREAMS = {("GET", "/live/events")}
# Writes whose body is read before the gate: a valid body, so that the cell is the gate's answer.
JSON_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/records/{record_id}/references"): {"kind": "legal", "ref_id": "1", "label": "Điều 3"},
    ("PUT", "/records/{record_id}"): {"version": 1, "fields": {"notes": "x"}},
}


def parse_matrix(text: str) -> dict[tuple[str, str], dict[str, str]]:
    table: dict[tuple[str, str], dict[str, str]] = {}
    for line in text.strip().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        route, cells = line.split(" : ")
        method, path = route.split()
        values = cells.split()
        assert len(values) == len(ROLES), f"row {route!r} has {len(values)} cells, not {len(ROLES)}"
        assert (method, path) not in table, f"two rows for {method} {path}"
        table[(method, path)] = dict(zip(ROLES, values, strict=True))
    return table


MATRIX = parse_matrix(MATRIX_TEXT)


def app_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD and OPTIONS aside), mounts included."""
    found: list[tuple[str, str]] = []

    def walk(routes: Any) -> None:
        for r in routes:
            if hasattr(r, "original_router"):
                walk(r.original_router.routes)
            elif getattr(r, "methods", None):
                for m in sorted(r.methods - {"HEAD", "OPTIONS"}):
                    if (m, r.path) not in found:
                        found.append((m, r.path))
    walk(app.routes)
    return found


# ------------------------------------------------------------------ the world
@pytest.fixture
def staff(sqlite_env, monkeypatch):
    """tests/live's accounts (centre A = the default centre, centre B = "other"), on SQLite only."""
    from hotline.auth import service as auth
    from tests.live import conftest as live

    monkeypatch.setattr(auth, "hash_password", live._cached_hash)
    return live.make_staff(sqlite_env)


@pytest.fixture
def client(sqlite_env):
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def world(client, staff) -> dict[str, str]:
    """A's call, A's record (owned by cA), A's referral to organisation X, legal library, daily log."""
    from hotline.auth import service as auth
    from hotline.auth.deps import Principal
    from hotline.centres.models import Centre
    from hotline.cli import main
    from legal_library.models import LegalArticle, LegalDocument, LegalVersion
    from referral import service as referrals
    from referral.models import Referral
    from tests.live.conftest import PASSWORD
    from tests.referral.conftest import _service

    with session_scope() as db:
        a = db.get(Centre, staff.centre_id)
        auth.create_user(db, username="partner_y", password=PASSWORD, role="partner", centre_id=a.id)
        spare = auth.create_user(db, username="spare", password=PASSWORD, role="counsellor", centre_id=a.id).id
        centre_code = a.code
        _service(db, id="svc-x", organization_id="org-x", organization="Nhà tạm lánh X", name="Nhà tạm lánh X",
                 service_type="shelter", referral_method="email", referral_email="x@x.example")
        _service(db, id="svc-y", organization_id="org-y", organization="Nhà tạm lánh Y", name="Nhà tạm lánh Y",
                 service_type="shelter", referral_method="email", referral_email="y@y.example")
    assert main(["referral", "partner", "link", "partner1", "org-x"]) == 0
    assert main(["referral", "partner", "link", "partner_y", "org-y"]) == 0
    assert main(["legal", "seed"]) == 0

    key = feed_call(agent="PJSIP/tvv1", caller="0912345678", answered=True,
                    at=datetime.now(timezone.utc) - timedelta(minutes=5), ended=True)
    cid = call_id(key)
    token = sign_in(client, "tvv1")
    rec = client.post(f"/records/for-call/{cid}", headers={"Accept": "application/json", "X-CSRF-Token": token})
    assert rec.status_code in (200, 201), rec.text
    record_id = rec.json()["id"]
    r = client.put(f"/records/{record_id}", json={"version": rec.json()["version"], "fields": {
        "consent_referral": True, "notes": "Chồng đánh"}},
        headers={"Accept": "application/json", "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    client.cookies.clear()

    p = Principal(id=staff.ids["tvv1"], username="tvv1", display_name="", role="counsellor",
                  centre_id=staff.centre_id, language="vi")
    with session_scope() as db:
        [ref] = referrals.create(db, record_id=record_id, actor=p,
                                 data={"service_ids": ["svc-x"], "urgency": "urgent", "ask": "Nhận tạm lánh"})
        link = referrals.link_url(referrals.link_for(db, db.get(Referral, ref.id))).rsplit("/r/", 1)[1]
        ids = {"record_id": str(record_id), "call_id": str(cid), "referral_id": str(ref.id),
               "public_id": ref.public_id, "token": link, "service_id": "svc-x",
               "user_id": str(spare), "action": "enable", "code": centre_code, "command_id": "1",
               "day_text": date.today().isoformat(),
               "article_id": str(db.scalar(select(LegalArticle.id).limit(1))),
               "document_id": str(db.scalar(select(LegalDocument.id).limit(1))),
               "version_id": str(db.scalar(select(LegalVersion.id).limit(1)))}
        # lines: a line of centre A
        from hotline.centres.models import Centre
        from hotline.centres.service import add_line
        ids["line_id"] = str(add_line(db, centre=db.get(Centre, staff.centre_id), provider="asterisk", kind="queue",
                                      identifier="matrix-queue").id)
        # blocking: one of A's blocks and one counsellor's proposal from A's record
        from blocking import service as blocking
        from blocking.models import BlockProposal

        supervisor = blocking.Actor(id=staff.ids["gs1"], username="gs1", role="supervisor", centre_id=staff.centre_id)
        ids["block_id"] = str(blocking.add_block(db, actor=supervisor, number="0987654321", duration="1d",
                                                 reason="quấy rối").id)
        proposal = BlockProposal(centre_id=staff.centre_id, record_id=record_id, number_hash="k:x",
                                 number_masked="0912 *** 678", reason="quấy rối", proposed_by="tvv1")
        db.add(proposal)
        db.flush()
        ids["proposal_id"] = str(proposal.id)
        # the inbox: one notification of cA's
        from hotline.i18n import Text
        from hotline.notifications import service as notifications
        from hotline.notifications.models import Notification

        notifications.notify(db, user_ids=[staff.ids["tvv1"]], kind="referral.accepted", title=Text("Referral"),
                             link=f"/referrals/{ref.id}")
        ids["notification_id"] = str(db.scalar(select(Notification.id).where(
            Notification.user_id == staff.ids["tvv1"]).order_by(Notification.id.desc()).limit(1)))
        # the worklists: a callback item of A's (a missed call), and A's record with a follow-up date
        from callbacks.models import CallbackItem
        from hotline.calls.models import CallRecord

        now = datetime.now(timezone.utc)
        item = CallbackItem(centre_id=staff.centre_id, call_id=cid, kind="missed", number_hash="k:x",
                            number_masked="0912 *** 678", missed_at=now, last_missed_at=now, missed_calls=1,
                            created_at=now, expires_at=now + timedelta(days=3), status="open", attempts=0)
        db.add(item)
        db.flush()
        ids["item_id"] = str(item.id)
        rec = db.get(CallRecord, record_id)
        rec.follow_up_needed, rec.follow_up_date = True, date.today()
        # a "do not call back (unsafe)" mark on a number of A's
        from callbacks.models import DoNotCallBack

        mark = DoNotCallBack(centre_id=staff.centre_id, number_hash="k:unsafe", number_masked="0913 *** 111",
                             created_by="tvv1", source="matrix")
        db.add(mark)
        db.flush()
        ids["mark_id"] = str(mark.id)
    return ids


def fill(path: str, ids: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in ids, f"no id for path parameter {{{name}}} in {path}: add one to the fixture"
        return ids[name]
    return re.sub(r"\{([^}:]+)(?::[^}]+)?\}", one, path)


def classify(status: int, location: str) -> str:
    if status >= 500:
        return "5xx"
    if status == 303 and "/login" in location:
        return "in"
    if status == 401:
        return "in"
    if status in (403, 404):
        return str(status)
    return "ok"


def request_as(client: Any, role: str, method: str, path: str, body: dict[str, Any] | None = None
               ) -> tuple[int, str]:
    client.cookies.clear()
    headers: dict[str, str] = {}
    data: dict[str, str] | None = None
    if role == "tok":
        headers["Authorization"] = "Bearer test-api-token"
    elif role != "anon":
        token = sign_in(client, USERS[role])
        headers["X-CSRF-Token"] = token
        if method != "GET":
            data = {"csrf_token": token}
    if path.startswith("/api/"):
        headers["Accept"] = "application/json"
    if body is not None:
        headers["Accept"] = "application/json"
        r = client.request(method, path, headers=headers, json=body, follow_redirects=False)
    else:
        r = client.request(method, path, headers=headers, data=data, follow_redirects=False)
    return r.status_code, r.headers.get("location", "")


def fits(cell: str, got: str) -> bool:
    if got == "5xx":
        return False
    if cell == "no":
        return got in ("in", "403", "404")
    return cell == got


def test_every_route_has_a_row(client):
    served = app_routes(client.app)
    missing = [f"{m} {p}" for m, p in served if (m, p) not in MATRIX]
    gone = [f"{m} {p}" for m, p in MATRIX if (m, p) not in served]
    assert not missing, ("routes without a row in tests/security/test_authz_matrix.py MATRIX "
                         f"(say who may use them): {missing}")
    assert not gone, f"rows for routes the app no longer serves: {gone}"


def test_every_role_gets_what_the_matrix_says(client, world):
    wrong: list[str] = []
    actual: list[str] = []
    # Reads first, then writes (a write that passes may change what a later read sees).
    routes = sorted(app_routes(client.app), key=lambda mp: mp[0] != "GET")
    for method, template in routes:
        path = fill(template, world)
        row = MATRIX.get((method, template))
        got_row = []
        for role in ROLES:
            if (method, template) in STREAMS and (row is None or row[role] == "ok"):
                got_row.append("ok")
                continue
            status, location = request_as(client, role, method, path, JSON_BODIES.get((method, template)))
            got = classify(status, location)
            got_row.append(got)
            if row is not None and not fits(row[role], got):
                wrong.append(f"{method} {template} as {role}: expected {row[role]}, got {status} {location}")
        actual.append(f"{method} {template}".ljust(52) + " : " + "  ".join(g.ljust(3) for g in got_row).rstrip())
    print("\n".join(actual))
    assert not wrong, "\n".join(wrong)
