"""Issue #17 point 7 on Asterisk: the real captures of an overflowed call, a blocked caller who pressed the
key for a supervisor and an out-of-hours caller who asked for a callback, replayed over the AMI socket
with the dialplan's lookups (``/api/blocking/check``, ``/api/lines/route``, ``…/callback-request``)
made over HTTP, are counted in the daily logs as on Twilio (``test_counts.py``): the overflow centre's
counsellor records the overflowed call, the record is the line's centre's and both centres' supervisors
(no other) see it; overflow out in the line's centre's log and in in the other centre's, marked as
overflow in both; the blocked call and its
key press; the call out of hours and its callback request."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from blocking.models import BlockedCall
from daily_log import service as daily_log
from hotline.calls.models import Call, CallRecord
from hotline.centres.models import Centre
from hotline.centres.service import create_centre
from hotline.cli import main
from hotline.db import session_scope
from tests.ami.conftest import Rig, rig, wait_for  # noqa: F401  (rig: a fixture)
from tests.ami.test_conformance import FIXTURES, _users, check, expected, replay
from tests.helpers import create_user, login
from tests.routing.conftest import PASSWORD

CONFORMANCE_PASSWORD = "Conformance-Pass-2026!"  # tests.ami.test_conformance._users

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _local_day(centre: Centre, at: datetime):
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(daily_log.zone(centre)).date()


def _summary(code: str, at: datetime) -> dict:
    with session_scope() as db:
        centre = daily_log.get_centre(db, code=code)
        return daily_log.summarise(db, centre=centre, day=_local_day(centre, at))


def _replay(rig: Rig, scenario: str, *, first: bool = False) -> Call:  # noqa: F811
    spec = expected(FIXTURES / scenario)
    users = _users(spec)
    replay(rig, FIXTURES / scenario / "filtered.ami", spec)
    if first:  # the conformance check counts every call in the database: only the first replay's
        check(spec, users)
    [linkedid] = [c["linkedid"] for c in spec["calls"]]
    from hotline.calls.models import CallKey

    with session_scope() as db:
        call = db.scalars(select(Call).join(CallKey, CallKey.call_id == Call.id)
                          .where(CallKey.provider == "asterisk", CallKey.key == linkedid)).one()
        db.expunge(call)
        return call


def test_asterisk_overflow_blocked_and_out_of_hours_calls_are_counted_in_both_logs(env, client, rig: Rig,  # noqa: F811
                                                                                   capsys) -> None:
    # the overflow: the line's centre (default) keeps the call, hcm's counsellor answers it
    overflowed = _replay(rig, "overflow", first=True)
    # tvv4 (hcm) records it; the record is the line's centre's, seen by both centres' supervisors only
    csrf = login(client, "tvv4", CONFORMANCE_PASSWORD)
    opened = client.post(f"/records/for-call/{overflowed.id}", headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert opened.status_code == 200, opened.text
    with session_scope() as db:
        record = db.get(CallRecord, opened.json()["id"])
        codes = dict(db.execute(select(Centre.id, Centre.code)).all())
        assert (codes[record.centre_id], codes[record.overflow_centre_id]) == ("default", "hcm")
        create_centre(db, code="dn", name="Trung tâm Đà Nẵng")
    create_user("gs_home", PASSWORD, "supervisor")
    create_user("gs_hcm", PASSWORD, "supervisor", centre_code="hcm")
    create_user("gs_dn", PASSWORD, "supervisor", centre_code="dn")
    for supervisor, seen in (("gs_home", 200), ("gs_hcm", 200), ("gs_dn", 404)):
        client.cookies.clear()
        login(client, supervisor, PASSWORD)
        assert client.get(f"/live/calls/{overflowed.id}/pop").status_code == seen, supervisor
        assert client.get(f"/records/{record.id}").status_code == seen, supervisor
    home = _summary("default", overflowed.received_at)
    other = _summary("hcm", overflowed.received_at)
    assert (home["totals"]["overflow_out"], home["totals"]["overflow_in"]) == (1, 0)
    assert (other["totals"]["overflow_out"], other["totals"]["overflow_in"]) == (0, 1)
    assert [c["overflow"] for c in home["calls"] if c["call_id"] == overflowed.id] == ["out"]
    assert [(c["call_id"], c["overflow_from"]) for c in other["overflow_in_calls"]] == [(overflowed.id, "default")]

    # the blocked caller (blocked from the command line first): the check says blocked=1, the key is pressed
    assert main(["block", "add", "0907777888", "--for", "1d", "--reason", "Gọi quấy rối"]) == 0
    capsys.readouterr()
    blocked = _replay(rig, "blocked_to_supervisor")

    def pressed() -> datetime | None:
        with session_scope() as db:
            row = db.scalars(select(BlockedCall)).first()
            return row.at if row is not None and row.pressed_for_supervisor else None

    at = wait_for(pressed, timeout=10, what="the blocked call and its key press recorded")
    totals = _summary("default", at)["totals"]
    assert (totals["blocked"], totals["blocked_to_supervisor"]) == (1, 1)
    assert blocked.centre_id == home["centre"]["id"]
    assert _summary("hcm", at)["totals"]["blocked"] == 0

    # out of hours: the line is closed (the capture's line hours), the caller pressed the key
    closed = _replay(rig, "out_of_hours")
    day = _summary("default", closed.received_at)
    assert day["totals"]["out_of_hours"] == 1 and day["callbacks"]["callback_requests"] == 1
    assert _summary("hcm", closed.received_at)["totals"]["out_of_hours"] == 0
