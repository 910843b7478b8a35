"""A counsellor's block proposal waits in the supervisors' inbox; the decision reaches the proposer's (#13 item 5)."""

from __future__ import annotations

from sqlalchemy import select

from blocking.models import BlockProposal
from hotline.db import session_scope
from tests.blocking.test_blocking import PASSWORD, _prank_record
from tests.helpers import create_user, login


def _inbox(username: str) -> list[tuple[str, str, str | None]]:
    from hotline.auth.models import User
    from hotline.notifications import service
    from hotline.notifications.models import Notification

    with session_scope() as db:
        uid = db.scalar(select(User.id).where(User.username == username))
        rows = db.scalars(select(Notification).where(Notification.user_id == uid).order_by(Notification.id))
        return [(n.kind, service.title_of(n).translate("vi"), n.link) for n in rows]


def test_a_proposal_and_its_decision_are_kept(client, post):
    create_user("tvv1", PASSWORD, "counsellor")
    create_user("gs1", PASSWORD, "supervisor")
    record_id = _prank_record(client, post)
    csrf = login(client, "tvv1", PASSWORD)
    client.post(f"/records/{record_id}/block-proposal", data={"reason": "Quấy rối nhiều lần", "csrf_token": csrf})
    assert _inbox("gs1") == [("blocking.proposal", f"tvv1 đề xuất chặn người gọi của hồ sơ #{record_id}: "
                                                   "hãy chấp nhận hoặc từ chối.", "/blocking")]
    assert _inbox("tvv1") == []
    with session_scope() as db:
        proposal = db.scalars(select(BlockProposal)).one()
    client.cookies.clear()
    csrf = login(client, "gs1", PASSWORD)
    page = client.get("/notifications")
    assert f"hồ sơ #{record_id}" in page.text
    assert client.post(f"/blocking/proposals/{proposal.id}/refuse", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    from hotline.notifications import service

    with session_scope() as db:
        from hotline.auth.models import User

        assert service.unread_count(db, user_id=db.scalar(select(User.id).where(User.username == "gs1"))) == 0
    assert _inbox("tvv1") == [("blocking.refused", f"Đề xuất chặn người gọi của hồ sơ #{record_id} đã bị từ chối.",
                               f"/records/{record_id}")]
