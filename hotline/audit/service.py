"""Writing and searching the audit log.

``record`` adds a row in the caller's session (it commits with the caller's work, so an action
and its audit entry stand or fall together).  Never put phone numbers, names or record contents
in ``detail``: ids and codes only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.audit.models import AuditEntry
from hotline.db import utcnow

MAX_LIMIT = 1000


class _Actor(Protocol):
    # read-only members: a frozen Principal satisfies them
    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...


def client_ip(request: Any) -> str:
    client = getattr(request, "client", None)
    return (client.host if client else "")[:64]


def record(session: Session, *, actor: _Actor | str | None, action: str, object_type: str,
           object_id: object | None, request: Any = None, detail: dict[str, Any] | None = None) -> AuditEntry:
    """Log one action.  ``actor`` is a Principal (or user), a label such as ``"cli"``, or None (system)."""
    if not action:
        raise ValueError("an audit entry needs an action, e.g. 'record.view'")
    if actor is None or isinstance(actor, str):
        actor_id, username, role = None, actor or "system", ""
    else:
        actor_id, username, role = (actor.id or None), actor.username, actor.role
    entry = AuditEntry(
        at=utcnow(), actor_id=actor_id, actor_username=username[:128], actor_role=role[:32],
        action=action[:64], object_type=(object_type or "")[:64],
        object_id=None if object_id is None else str(object_id)[:128],
        ip=client_ip(request) if request is not None else "",
        user_agent=(request.headers.get("user-agent", "") if request is not None else "")[:255],
        detail=detail,
    )
    session.add(entry)
    session.flush()
    return entry


def search(session: Session, *, actor: str | None = None, action: str | None = None,
           object_type: str | None = None, object_id: str | None = None, since: datetime | None = None,
           until: datetime | None = None, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    """Newest first.  ``actor`` is a username; ``action`` matches exactly or, ending in ``*``, by prefix."""
    stmt = select(AuditEntry)
    if actor:
        stmt = stmt.where(AuditEntry.actor_username == actor)
    if action:
        if action.endswith("*"):
            stmt = stmt.where(AuditEntry.action.startswith(action[:-1], autoescape=True))
        else:
            stmt = stmt.where(AuditEntry.action == action)
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == str(object_id))
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    limit = max(1, min(int(limit), MAX_LIMIT))
    stmt = stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(max(0, offset))
    return list(session.scalars(stmt))


def actions(session: Session) -> list[str]:
    """Every action name seen so far (for the search page's choice list)."""
    return sorted(session.scalars(select(AuditEntry.action).distinct()))
