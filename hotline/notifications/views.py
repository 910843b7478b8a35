"""The inbox pages: every signed-in user sees their own notifications, and only theirs.

* ``GET /notifications``: the list, newest first, unread in bold (``?page=``, ``?unread=1``).
* ``GET /notifications/count``: ``{"unread": n}`` for the header's badge on pages without a live feed.
* ``GET /notifications/{id}/open``: marks it read and goes to the page it is about.
* ``POST /notifications/{id}/read`` and ``POST /notifications/read-all``: "Đánh dấu đã đọc" (CSRF).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from hotline.auth.deps import Principal, csrf_protect, current_principal, wants_json
from hotline.db import session_scope
from hotline.i18n import translator
from hotline.notifications import service
from hotline.web import add_template_dir, render

HERE = Path(__file__).parent
add_template_dir(HERE / "templates")
router = APIRouter()


async def signed_in_write(request: Request, principal: Principal = Depends(current_principal)) -> Principal:
    """Signed in first (a lapsed session is sent to sign in), then the CSRF token (403)."""
    await csrf_protect(request)
    return principal


def _back(request: Request, fallback: str = "/notifications") -> str:
    """Where a browser goes after marking: the list page it came from (a local path only)."""
    nxt = request.query_params.get("next") or ""
    return nxt if nxt.startswith("/notifications") and not nxt.startswith("//") else fallback


@router.get("/notifications")
def inbox(request: Request, page: int = 1, unread: int = 0, principal: Principal = Depends(current_principal)
          ) -> Response:
    _ = translator(principal.language)
    with session_scope() as db:
        found = service.list_for(db, user_id=principal.id, page=page, unread_only=bool(unread))
        items: list[dict[str, Any]] = [{
            "id": n.id, "title": service.title_of(n).translate(principal.language),
            "kind": _(service.kind_label(n.kind)), "link": n.link, "created_at": n.created_at,
            "read": n.read_at is not None} for n in found.items]
    return render(request, "notifications/list.html", {
        "items": items, "found": found, "unread_only": bool(unread), "unread_count": found.unread})


@router.get("/notifications/count")
def count(principal: Principal = Depends(current_principal)) -> Response:
    with session_scope() as db:
        n = service.unread_count(db, user_id=principal.id)
    return JSONResponse({"unread": n}, headers={"Cache-Control": "no-store"})


@router.get("/notifications/{notification_id}/open")
def open_one(notification_id: int, principal: Principal = Depends(current_principal)) -> Response:
    with session_scope() as db:
        link = service.open_link(db, user_id=principal.id, notification_id=notification_id)
    return RedirectResponse(link, status_code=303)


def _answer(request: Request, principal: Principal, changed: int) -> Response:
    if wants_json(request):
        with session_scope() as db:
            n = service.unread_count(db, user_id=principal.id)
        return JSONResponse({"changed": changed, "unread": n})
    return RedirectResponse(_back(request), status_code=303)


@router.post("/notifications/read-all")
def read_all(request: Request, principal: Principal = Depends(signed_in_write)) -> Response:
    with session_scope() as db:
        changed = service.mark_read(db, user_id=principal.id)
    return _answer(request, principal, changed)


@router.post("/notifications/{notification_id}/read")
def read_one(notification_id: int, request: Request, principal: Principal = Depends(signed_in_write)) -> Response:
    with session_scope() as db:
        changed = service.mark_read(db, user_id=principal.id, notification_id=notification_id)
    return _answer(request, principal, changed)
