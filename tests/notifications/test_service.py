"""The stored inbox through its service API: who gets what, read state, titles in each reader's
language, the live-screen hint after the commit only, retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hotline import bus
from hotline.db import session_scope, utcnow
from hotline.errors import Invalid
from hotline.i18n import Text
from hotline.notifications import service
from hotline.notifications.models import Notification


def _notify(**kw):
    with session_scope() as db:
        return service.notify(db, **kw)


def test_recipients_are_the_users_given_and_the_centres_roles(staff):
    ids = staff.ids
    n = _notify(user_ids=[ids["tvv1"]], centre_id=staff.centre_id, roles=("supervisor",), kind="referral.accepted",
                title=Text("%(service)s accepted referral %(code)s.", service="Nhà tạm lánh X", code="HL-1"),
                link="/referrals/1")
    assert n == 2  # the counsellor and the centre's one supervisor; not the other centre's supervisor
    with session_scope() as db:
        got = {uid for uid in db.scalars(select(Notification.user_id))}
        assert got == {ids["tvv1"], ids["gs1"]}
        assert service.unread_count(db, user_id=ids["tvv1"]) == 1
        assert service.unread_count(db, user_id=ids["gs_other"]) == 0
    # the same user given twice and by role is told once
    assert _notify(user_ids=[ids["gs1"], ids["gs1"]], centre_id=staff.centre_id, roles=("supervisor",),
                   kind="x", title=Text("Hello")) == 1
    # nobody to tell is not an error
    assert _notify(centre_id=staff.other_centre_id, roles=("administrator",), kind="x", title=Text("Hello")) == 0


def test_disabled_accounts_are_not_told(staff):
    from hotline.auth.models import User

    with session_scope() as db:
        db.get(User, staff.ids["tvv2"]).active = False
    assert _notify(user_ids=[staff.ids["tvv2"]], kind="x", title=Text("Hello")) == 0


def test_the_title_is_shown_in_each_readers_language(staff):
    _notify(user_ids=[staff.ids["tvv1"]], kind="referral.escalation",
            title=Text("Emergency referral %(code)s to %(service)s: no answer for %(minutes)s minutes.",
                       code="HL-7K3P9Q", service={"vi": "Nhà tạm lánh", "en": "The shelter"}, minutes=15))
    with session_scope() as db:
        [row] = service.list_for(db, user_id=staff.ids["tvv1"]).items
        title = service.title_of(row)
    assert title.translate("vi") == "Chuyển gửi khẩn cấp HL-7K3P9Q tới Nhà tạm lánh: chưa có trả lời sau 15 phút."
    assert title.translate("en") == "Emergency referral HL-7K3P9Q to The shelter: no answer for 15 minutes."


def test_nested_texts_survive_storage(staff):
    _notify(user_ids=[staff.ids["tvv1"]], kind="x",
            title=Text("Unknown presence '%(state)s'; choose one of: %(choices)s.", state=Text("Notifications"),
                       choices=[Text("Referral"), "b"]))
    with session_scope() as db:
        [row] = service.list_for(db, user_id=staff.ids["tvv1"]).items
        assert "Thông báo" in service.title_of(row).translate("vi")
        assert "Chuyển gửi; b" in service.title_of(row).translate("vi")


@pytest.mark.parametrize("link", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "/a\\b"])
def test_a_link_leads_inside_the_application_only(staff, link):
    with pytest.raises(Invalid):
        _notify(user_ids=[staff.ids["tvv1"]], kind="x", title=Text("Hello"), link=link)


def test_a_title_must_be_a_text(staff):
    with pytest.raises(Invalid):
        _notify(user_ids=[staff.ids["tvv1"]], kind="x", title="Hello")  # a plain string: refused


def test_mark_read_one_and_all_only_for_the_owner(staff):
    me, other = staff.ids["tvv1"], staff.ids["tvv2"]
    for i in range(3):
        _notify(user_ids=[me, other], kind="x", title=Text("Hello"), link=f"/records/{i}")
    with session_scope() as db:
        first = service.list_for(db, user_id=me).items[0].id
        theirs = service.list_for(db, user_id=other).items[0].id
        with pytest.raises(service.NotificationNotFound):
            service.mark_read(db, user_id=me, notification_id=theirs)
        with pytest.raises(service.NotificationNotFound):
            service.open_link(db, user_id=me, notification_id=theirs)
        assert service.mark_read(db, user_id=me, notification_id=first) == 1
        assert service.mark_read(db, user_id=me, notification_id=first) == 0  # already read
        assert service.unread_count(db, user_id=me) == 2
        assert service.open_link(db, user_id=me, notification_id=first) == "/records/2"
        assert service.mark_read(db, user_id=me) == 2
        assert service.unread_count(db, user_id=me) == 0
        assert service.unread_count(db, user_id=other) == 3


def test_a_settled_matter_is_read_for_everyone_told_of_it(staff):
    ids = staff.ids
    for centre in (staff.centre_id, staff.other_centre_id):
        _notify(centre_id=centre, roles=("supervisor",), kind="blocking.proposal", title=Text("Hello"), link="/blocking")
    _notify(user_ids=[ids["gs1"]], kind="blocking.proposal", title=Text("Hello"), link="/records/1")
    _notify(user_ids=[ids["gs1"]], kind="other", title=Text("Hello"), link="/blocking")
    with session_scope() as db:
        assert service.settle(db, link="/blocking", kinds=("blocking.proposal",), centre_id=staff.centre_id) == 1
        assert service.unread_count(db, user_id=ids["gs1"]) == 2  # another link, another kind
        assert service.unread_count(db, user_id=ids["gs_other"]) == 1  # another centre's matter
        assert service.settle(db, link="/blocking", kinds=("blocking.proposal",)) == 1
        assert service.unread_count(db, user_id=ids["gs_other"]) == 0
        assert service.settle(db, link="/blocking", kinds=()) == 0


def test_the_list_is_paginated_newest_first(staff):
    me = staff.ids["tvv1"]
    with session_scope() as db:
        for i in range(45):
            service.notify(db, user_ids=[me], kind="x", title=Text("Hello"), link=f"/records/{i}")
    with session_scope() as db:
        p1 = service.list_for(db, user_id=me, page=1)
        p2 = service.list_for(db, user_id=me, page=2)
        p9 = service.list_for(db, user_id=me, page=9)
    assert (p1.total, p1.pages, len(p1.items), len(p2.items)) == (45, 2, 30, 15)
    assert p1.items[0].link == "/records/44" and p2.items[-1].link == "/records/0"
    assert p9.page == 2  # past the end: the last page
    with session_scope() as db:
        service.mark_read(db, user_id=me, notification_id=p1.items[0].id)
        assert service.list_for(db, user_id=me, unread_only=True).total == 44


def test_open_screens_hear_of_it_after_the_commit_only(staff):
    sub = bus.Subscription([f"centre:{staff.centre_id}"])
    try:
        with pytest.raises(RuntimeError), session_scope() as db:
            service.notify(db, user_ids=[staff.ids["tvv1"]], kind="x", title=Text("Hello"))
            raise RuntimeError("the producer's transaction fails")
        assert sub.get(timeout=0.2) is None  # rolled back: nothing stored, nothing said
        with session_scope() as db:
            service.notify(db, user_ids=[staff.ids["tvv1"]], kind="x", title=Text("Hello"))
            assert sub.get(timeout=0.2) is None  # not yet committed
        msg = sub.get(timeout=2)
        assert msg is not None and msg["type"] == "notification"
        assert msg["notification"]["user_id"] == staff.ids["tvv1"] and msg["notification"]["unread"] == 1
        with session_scope() as db:
            service.mark_read(db, user_id=staff.ids["tvv1"])
        msg = sub.get(timeout=2)
        assert msg is not None and msg["notification"]["unread"] == 0
    finally:
        sub.close()


def test_live_screens_show_a_notification_to_its_recipient_only(staff):
    from hotline.live import service as live

    msg = {"type": "notification", "notification": {"user_id": staff.ids["tvv1"], "unread": 1}}
    mine = live.Viewer(staff.ids["tvv1"], "counsellor", staff.centre_id, frozenset())
    boss = live.Viewer(staff.ids["gs1"], "supervisor", staff.centre_id, frozenset())
    assert live.visible(mine, msg) and not live.visible(boss, msg)


def test_retention_removes_old_read_and_expired_notifications(staff):
    me = staff.ids["tvv1"]
    now = utcnow()
    with session_scope() as db:
        for created, read in [(now - timedelta(days=200), now - timedelta(days=100)),  # read long ago: goes
                              (now - timedelta(days=200), None),  # unread, older than the notes' cutoff: goes
                              (now - timedelta(days=20), now - timedelta(days=10)),  # read lately: stays
                              (now - timedelta(days=20), None)]:  # unread: stays
            db.add(Notification(user_id=me, kind="x", title_msgid="Hello", title_values={}, created_at=created,
                                read_at=read))
    cutoff = now - timedelta(days=180)
    assert service.retain(now=now, notes_cutoff=cutoff, numbers_cutoff=None, dry_run=True) == 2
    assert service.retain(now=now, notes_cutoff=cutoff, numbers_cutoff=None, dry_run=False) == 2
    with session_scope() as db:
        assert len(list(db.scalars(select(Notification)))) == 2
    # no notes' cutoff (kept forever): only the read ones past KEEP_READ_DAYS would go
    assert service.retain(now=now + timedelta(days=100), notes_cutoff=None, numbers_cutoff=None, dry_run=True) == 1


def test_retention_step_is_declared():
    from hotline import domains

    assert "notifications" in [s.name for s in domains.retention_steps()]
