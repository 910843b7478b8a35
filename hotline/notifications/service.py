"""The per-user inbox: what the domains' flows tell people, kept until they read it.

Producers call ``notify`` from their own service code (never from views), in the transaction that
makes the news (a partner's answer, an escalation, a built day, a proposal)::

    from hotline.i18n import Text
    from hotline.notifications import service as notifications

    notifications.notify(session, centre_id=ref.centre_id, roles=("supervisor",), user_ids=[ref.created_by],
                         kind="referral.accepted", link=f"/referrals/{ref.id}",
                         title=Text("%(service)s accepted referral %(code)s.", service=name, code=code))

Recipients are the given users plus every active user of ``centre_id`` with one of ``roles``
(each once).  The title is stored as its msgid and values and translated for each reader; it
must not carry a caller's words (codes, service names, dates only).  After the transaction
commits, each recipient's open live screen gets ``{"type": "notification", …}`` with the new
unread count (the bus message is a hint: the table is the truth, and every page load reads it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session

from hotline import bus
from hotline.auth.models import User
from hotline.db import rowcount, session_scope, utcnow
from hotline.errors import Invalid, NotFound
from hotline.i18n import N_, Text
from hotline.notifications.models import Notification

__all__ = ["Page", "list_for", "mark_read", "notify", "open_link", "retain", "settle", "title_of", "unread_count"]

PER_PAGE = 30
KIND_MAX = 48
LINK_MAX = 500
#: read notifications go after this many days; unread ones stay until read or the notes' retention cutoff
KEEP_READ_DAYS = 90
_PENDING = "hotline.notifications.pending"
_HOOKED = "hotline.notifications.hooked"

KIND_LABELS = {
    "referral": N_("Referral"),
    "escalation": N_("Escalation"),
    "daily_log": N_("Daily call log"),
    "blocking": N_("Blocked numbers"),
    "follow_up": N_("Follow-up"),
    "callback": N_("Callback"),
}


class NotificationNotFound(NotFound):
    default = N_("No such notification, or it is not yours.")


# ---------------------------------------------------------------------- titles: a Text kept as data
def _encode(value: Any) -> Any:
    if isinstance(value, Text):
        return {"$text": value.msgid, "values": {k: _encode(v) for k, v in value.values.items()}}
    if isinstance(value, dict):  # a {"vi": …, "en": …} label
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, datetime | date):
        return value.strftime("%d/%m/%Y")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$text" in value:
        return Text(str(value["$text"]), **{k: _decode(v) for k, v in (value.get("values") or {}).items()})
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def title_of(n: Notification) -> Text:
    """The notification's title as a ``Text`` (``.translate(lang)`` for a reader)."""
    return Text(n.title_msgid, **{k: _decode(v) for k, v in (n.title_values or {}).items()})


def kind_label(kind: str) -> str:
    """The msgid naming a kind's family (``referral.accepted`` → "Referral"); translate when shown."""
    return KIND_LABELS.get(kind.split(".")[0], N_("Notice"))


def _check_link(link: str | None) -> str | None:
    if link is None or link == "":
        return None
    if not link.startswith("/") or link.startswith("//") or "\\" in link or len(link) > LINK_MAX:
        raise Invalid(Text("A notification links to a page of this application only (a path starting with /)."))
    return link


# ---------------------------------------------------------------------- writing
def notify(session: Session, *, user_ids: Iterable[int] | None = None, centre_id: int | None = None,
           roles: Iterable[str] = (), kind: str, title: Text, link: str | None = None,
           unless_unread: bool = False) -> int:
    """Store one notification for each recipient; returns how many were stored.

    Recipients: ``user_ids`` (active accounts only), plus every active user of ``centre_id`` whose
    role is one of ``roles``.  Nobody to tell is not an error (0).  ``unless_unread`` skips those who
    still have an unread notification of this kind and link (news that repeats, e.g. each autosave
    of a signed-off record, is told once until read)."""
    if not isinstance(title, Text):
        raise Invalid(Text("A notification's title must be a translatable text."))
    if not kind or len(kind) > KIND_MAX:
        raise Invalid(Text("A notification's kind is 1 to %(max)d characters.", max=KIND_MAX))
    link = _check_link(link)
    wanted = {int(u) for u in (user_ids or ()) if u}
    role_list = [r for r in roles if r]
    query = None
    if wanted:
        query = select(User.id, User.centre_id).where(User.id.in_(sorted(wanted)), User.active.is_(True))
    found: dict[int, int | None] = {}
    if query is not None:
        found.update({uid: cid for uid, cid in session.execute(query)})
    if centre_id is not None and role_list:
        found.update({uid: cid for uid, cid in session.execute(
            select(User.id, User.centre_id).where(User.centre_id == centre_id, User.role.in_(role_list),
                                                  User.active.is_(True)))})
    if found and unless_unread:
        told = set(session.scalars(select(Notification.user_id).where(
            Notification.user_id.in_(sorted(found)), Notification.kind == kind, Notification.read_at.is_(None),
            Notification.link.is_(None) if link is None else Notification.link == link)))
        found = {uid: cid for uid, cid in found.items() if uid not in told}
    if not found:
        return 0
    now = utcnow()
    values = {k: _encode(v) for k, v in title.values.items()}
    rows = [Notification(user_id=uid, kind=kind, title_msgid=title.msgid, title_values=values, link=link,
                         created_at=now) for uid in sorted(found)]
    session.add_all(rows)
    session.flush()
    counts = _unread_counts(session, list(found))
    for row in rows:
        _announce(session, user_id=row.user_id, centre_id=found[row.user_id], unread=counts.get(row.user_id, 0),
                  notification_id=row.id, kind=kind)
    return len(rows)


def mark_read(session: Session, *, user_id: int, notification_id: int | None = None) -> int:
    """Mark one of the user's notifications read (``NotificationNotFound`` for anyone else's), or all
    of them when no id is given; returns how many changed."""
    now = utcnow()
    if notification_id is not None:
        row = session.get(Notification, notification_id)
        if row is None or row.user_id != user_id:
            raise NotificationNotFound(None, notification_id)
        if row.read_at is not None:
            return 0
        row.read_at = now
        session.flush()
        changed = 1
    else:
        changed = rowcount(session.execute(
            update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=now).execution_options(synchronize_session=False)))
    if changed:
        centre = session.scalar(select(User.centre_id).where(User.id == user_id))
        _announce(session, user_id=user_id, centre_id=centre, unread=unread_count(session, user_id=user_id),
                  notification_id=notification_id or 0, kind="read")
    return changed


def settle(session: Session, *, link: str, kinds: Iterable[str], centre_id: int | None = None) -> int:
    """The matter is dealt with (a day signed off, the proposals decided): everyone's unread
    notifications of these kinds about ``link`` (only users of ``centre_id`` when given) are marked
    read; returns how many."""
    kinds = [k for k in kinds if k]
    if not kinds:
        return 0
    where = [Notification.link == link, Notification.kind.in_(kinds), Notification.read_at.is_(None)]
    if centre_id is not None:
        where.append(Notification.user_id.in_(select(User.id).where(User.centre_id == centre_id)))
    users = list(session.scalars(select(Notification.user_id).distinct().where(*where)))
    if not users:
        return 0
    changed = rowcount(session.execute(
        update(Notification).where(*where).values(read_at=utcnow()).execution_options(synchronize_session=False)))
    counts = _unread_counts(session, users)
    centres = dict(session.execute(select(User.id, User.centre_id).where(User.id.in_(users))).all())
    for uid in users:
        _announce(session, user_id=uid, centre_id=centres.get(uid), unread=counts.get(uid, 0), notification_id=0,
                  kind="read")
    return changed


def open_link(session: Session, *, user_id: int, notification_id: int) -> str:
    """Following a notification: it is read, and its object's page is where the reader goes."""
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        raise NotificationNotFound(None, notification_id)
    mark_read(session, user_id=user_id, notification_id=notification_id)
    return row.link or "/notifications"


# ---------------------------------------------------------------------- reading
def unread_count(session: Session, *, user_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0)


def _unread_counts(session: Session, user_ids: list[int]) -> dict[int, int]:
    rows = session.execute(select(Notification.user_id, func.count()).where(
        Notification.user_id.in_(user_ids), Notification.read_at.is_(None)).group_by(Notification.user_id))
    return {uid: int(n) for uid, n in rows}


@dataclass(frozen=True)
class Page:
    items: list[Notification]
    total: int
    unread: int
    page: int
    pages: int
    per_page: int


def list_for(session: Session, *, user_id: int, page: int = 1, per_page: int = PER_PAGE,
             unread_only: bool = False) -> Page:
    """The user's notifications, newest first, one page at a time."""
    per_page = max(1, min(int(per_page), 200))
    where = [Notification.user_id == user_id]
    if unread_only:
        where.append(Notification.read_at.is_(None))
    total = int(session.scalar(select(func.count()).select_from(Notification).where(*where)) or 0)
    pages = max(1, math.ceil(total / per_page))
    page = max(1, min(int(page), pages))
    items = list(session.scalars(select(Notification).where(*where).order_by(Notification.id.desc())
                                 .offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total, unread_count(session, user_id=user_id), page, pages, per_page)


def unread_for_page(user_id: int) -> int:
    """The header's count (its own short transaction; a failure shows no count, never a 500)."""
    try:
        with session_scope() as session:
            return unread_count(session, user_id=user_id)
    except Exception:  # noqa: BLE001 - the header must not break a page; the database error is the page's own
        return 0


# ---------------------------------------------------------------------- live screens (after the commit)
def _announce(session: Session, *, user_id: int, centre_id: int | None, unread: int, notification_id: int,
              kind: str) -> None:
    if centre_id is None:
        return  # no live screen without a centre: the count shows at the next page load
    pending: list[tuple[str, dict[str, Any]]] = session.info.setdefault(_PENDING, [])
    pending.append((f"centre:{centre_id}", {"type": "notification", "notification": {
        "user_id": user_id, "unread": unread, "id": notification_id, "kind": kind, "at": utcnow().isoformat()}}))
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    for channel, message in session.info.pop(_PENDING, []):
        bus.publish(channel, message)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def visible_to(viewer: Any, message: dict[str, Any]) -> bool:
    """Live-screen rule: a notification message goes to its recipient's screens only."""
    return bool((message.get("notification") or {}).get("user_id") == viewer.user_id)


# ---------------------------------------------------------------------- retention
def retain(*, now: datetime, notes_cutoff: datetime | None, numbers_cutoff: datetime | None,
           dry_run: bool) -> int:
    """Read notifications older than ``KEEP_READ_DAYS`` go, and every notification older than the
    notes' cutoff (they name referral codes and services of callers' cases)."""
    read_before = now - timedelta(days=KEEP_READ_DAYS)
    cond = Notification.read_at.is_not(None) & (Notification.read_at < read_before)
    if notes_cutoff is not None:
        cond = cond | (Notification.created_at < notes_cutoff)
    with session_scope() as session:
        if dry_run:
            return int(session.scalar(select(func.count()).select_from(Notification).where(cond)) or 0)
        return rowcount(session.execute(delete(Notification).where(cond)))
