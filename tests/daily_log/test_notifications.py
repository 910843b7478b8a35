"""Sign-off requests in the supervisors' inbox (#13 item 5): a day's log built, a signed-off day
rebuilt into something else, a record of a signed-off day changed (told once until read)."""

from __future__ import annotations

from datetime import date

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from hotline.centres.models import Centre
from hotline.cli import build_parser
from hotline.db import session_scope
from tests.daily_log.conftest import add_call, sign_in, utc

build_parser()  # import every command module now: pydantic models cannot be defined under freezegun
DAY = date(2026, 11, 20)
JSON = {"Accept": "application/json"}


@pytest.fixture
def centre(staff):
    with session_scope() as db:
        db.get(Centre, staff.centre_id).created_at = utc(2026, 1, 1)
    return staff


def _inbox(user_id: int) -> list[tuple[str, str, str | None]]:
    from hotline.notifications import service
    from hotline.notifications.models import Notification

    with session_scope() as db:
        rows = db.scalars(select(Notification).where(Notification.user_id == user_id).order_by(Notification.id))
        return [(n.kind, service.title_of(n).translate("vi"), n.link) for n in rows]


def _build():
    from daily_log import service

    with session_scope() as db:
        c = db.get(Centre, db.scalar(select(Centre.id).where(Centre.is_default.is_(True))))
        return service.build_day(db, centre=c, day=DAY).id, c.code


@freeze_time("2026-11-21 03:00:00")
def test_a_built_day_asks_the_supervisors_to_sign_it_off(centre):
    from daily_log import service

    gs1, tvv1, gs_other = centre.ids["gs1"], centre.ids["tvv1"], centre.ids["gs_other"]
    add_call(centre.centre_id, utc(2026, 11, 20, 3), counsellor_id=tvv1, record={"issues": ("dv.physical",)})
    _log, code = _build()
    link = f"/daily-log/{code}/2026-11-20"
    assert _inbox(gs1) == [("daily_log.ready", "Sổ cuộc gọi ngày 20/11/2026 đã được lập: hãy xem lại và ký duyệt.", link)]
    assert _inbox(tvv1) == [] and _inbox(gs_other) == []  # counsellors and other centres are not asked
    _build()  # rebuilt before the sign-off: asked once only
    assert len(_inbox(gs1)) == 1
    with session_scope() as db:
        c = db.get(Centre, centre.centre_id)
        from hotline.auth.deps import Principal

        boss = Principal(id=gs1, username="gs1", display_name="", role="supervisor", centre_id=c.id, language="vi")
        service.sign_off(db, centre=c, day=DAY, actor=boss)
    _build()  # the same summary: nothing to sign again
    assert len(_inbox(gs1)) == 1
    from hotline.notifications import service as notifications

    with session_scope() as db:
        assert notifications.unread_count(db, user_id=gs1) == 0  # signed off: the request is settled
    add_call(centre.centre_id, utc(2026, 11, 20, 5), counsellor_id=tvv1, record={"issues": ("dv.physical",)})
    _build()  # a call of that day arrived late: the signed day changed
    assert _inbox(gs1)[-1] == ("daily_log.changed", "Sổ cuộc gọi ngày 20/11/2026 đã thay đổi sau khi ký duyệt: "
                               "hãy xem lại và ký duyệt lại.", link)


def test_a_signed_off_records_change_is_told_once_until_read(client, centre):
    from hotline.calls.models import CallRecord
    from hotline.db import utcnow
    from hotline.notifications import service as notifications

    gs1 = centre.ids["gs1"]
    _, rid = add_call(centre.centre_id, utc(2026, 11, 20, 3), counsellor_id=centre.ids["tvv1"],
                      record={"issues": ("dv.physical",)})
    with session_scope() as db:
        db.get(CallRecord, rid).locked_at = utcnow()
    token = sign_in(client, "tvv1")
    for version, risk in ((1, "high"), (2, "low")):  # two saves of one edit
        r = client.put(f"/records/{rid}", json={"version": version, "fields": {"risk": risk,
                                                                               "lock_reason": "gọi lại bổ sung"}},
                       headers={**JSON, "X-CSRF-Token": token})
        assert r.status_code == 200, r.text
    inbox = _inbox(gs1)
    assert [(k, link) for k, _t, link in inbox] == [("daily_log.record_changed", f"/records/{rid}/history")]
    assert inbox[0][1].startswith(f"Hồ sơ #{rid} đã bị sửa sau khi ngày của nó được ký duyệt")
    assert "gọi lại bổ sung" not in inbox[0][1]  # the reason is free text: it stays on the record
    with session_scope() as db:
        notifications.mark_read(db, user_id=gs1)
    r = client.put(f"/records/{rid}", json={"version": 3, "fields": {"risk": "high", "lock_reason": "sửa lại"}},
                   headers={**JSON, "X-CSRF-Token": token})
    assert r.status_code == 200
    assert len(_inbox(gs1)) == 2  # read, then changed again: told again
