"""The supervisors' blocking page, counsellors' proposals (a record-page panel) and the Asterisk lookup."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Form, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from markupsafe import Markup

from blocking import service
from blocking.service import Actor
from hotline.auth.deps import Principal, csrf_protect, require_roles
from hotline.db import session_scope
from hotline.web import add_template_dir, render, template_context, templates

add_template_dir(FilePath(__file__).parent / "templates")

router = APIRouter()
# Writes: the role is checked before the CSRF token (so the signed-out are sent to sign in).
supervisors = require_roles(*service.BLOCK_ROLES)
staff = require_roles(*service.PROPOSE_ROLES)
MAX_ROW_ID = 2**31 - 1  # an integer column: a larger id is 422, never a database error


def actor_of(principal: Principal) -> Actor:
    return Actor(id=principal.id, username=principal.username, role=principal.role, centre_id=principal.centre_id)


@router.get("/blocking")
def page(request: Request, principal: Principal = Depends(supervisors)) -> Response:
    actor = actor_of(principal)
    with session_scope() as session:
        blocks = service.active_blocks(session, actor)
        proposals = service.pending_proposals(session, actor)
        session.expunge_all()
    return render(request, "blocking/page.html", {"blocks": blocks, "proposals": proposals,
                                                  "units": service.UNIT_LABELS})


def _duration(amount: str, unit: str) -> str:
    return f"{amount.strip()}{unit.strip()}"


@router.post("/blocking", dependencies=[Depends(supervisors), Depends(csrf_protect)])
def add(request: Request, number: str = Form(""), amount: str = Form(""), unit: str = Form("d"),
        reason: str = Form(""), principal: Principal = Depends(supervisors)) -> Response:
    with session_scope() as session:
        service.add_block(session, actor=actor_of(principal), number=number, duration=_duration(amount, unit),
                          reason=reason, request=request)
    return RedirectResponse("/blocking", status_code=303)


@router.post("/blocking/{block_id}/lift", dependencies=[Depends(supervisors), Depends(csrf_protect)])
def lift(request: Request, block_id: int = Path(ge=1, le=MAX_ROW_ID), principal: Principal = Depends(supervisors)) -> Response:
    with session_scope() as session:
        service.lift(session, actor=actor_of(principal), block_id=block_id, request=request)
    return RedirectResponse("/blocking", status_code=303)


@router.post("/blocking/proposals/{proposal_id}/accept", dependencies=[Depends(supervisors), Depends(csrf_protect)])
def accept(request: Request, proposal_id: int = Path(ge=1, le=MAX_ROW_ID), amount: str = Form(""), unit: str = Form("d"),
           principal: Principal = Depends(supervisors)) -> Response:
    with session_scope() as session:
        service.decide(session, actor=actor_of(principal), proposal_id=proposal_id, accept=True,
                       duration=_duration(amount, unit), request=request)
    return RedirectResponse("/blocking", status_code=303)


@router.post("/blocking/proposals/{proposal_id}/refuse", dependencies=[Depends(supervisors), Depends(csrf_protect)])
def refuse(request: Request, proposal_id: int = Path(ge=1, le=MAX_ROW_ID), principal: Principal = Depends(supervisors)) -> Response:
    with session_scope() as session:
        service.decide(session, actor=actor_of(principal), proposal_id=proposal_id, accept=False, request=request)
    return RedirectResponse("/blocking", status_code=303)


@router.post("/records/{record_id}/block-proposal", dependencies=[Depends(staff), Depends(csrf_protect)])
def propose(request: Request, record_id: int = Path(ge=1, le=MAX_ROW_ID), reason: str = Form(""),
            principal: Principal = Depends(staff)) -> Response:
    with session_scope() as session:
        service.propose(session, actor=actor_of(principal), record_id=record_id, reason=reason, request=request)
    return RedirectResponse(f"/records/{record_id}", status_code=303)


async def lookup_caller(request: Request) -> Principal:
    """``supervisors`` for the Asterisk lookup without a thread when it carries the API token (no
    database to read): a busy thread pool must not delay a caller."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return supervisors(request)
    return await run_in_threadpool(supervisors, request)


@router.get("/api/blocking/check", response_class=PlainTextResponse)  # the dialplan reads text
async def check(number: str = Query("", max_length=128), call: str = Query("", max_length=128),
                principal: Principal = Depends(lookup_caller)) -> Response:
    """For the Asterisk dialplan (API token): ``blocked=1`` or ``blocked=0``; a blocked call is
    recorded: in the write-ahead journal before the answer, in the database after it (``blocking.recorder``)."""
    block_id = await service.blocked_now(number)
    if block_id is not None:
        await service.record_blocked_call_async(provider="asterisk", call_ref=call, block_id=block_id)
    return PlainTextResponse(f"blocked={1 if block_id else 0}")


@router.post("/api/blocking/pressed", dependencies=[Depends(supervisors), Depends(csrf_protect)],
             response_class=PlainTextResponse)
def pressed(call: str = Query("", max_length=128), principal: Principal = Depends(supervisors)) -> Response:
    """The dialplan says a blocked caller pressed the key for a supervisor (in the write-ahead journal
    before the answer, in the database after it)."""
    service.mark_pressed(provider="asterisk", call_ref=call)
    return PlainTextResponse("ok")


def setup_app(app: FastAPI) -> None:
    """Each web process keeps a copy of the active blocks and records blocked calls off the voice path."""
    app.state.startup_hooks.append(lambda _app: service.start_voice_path())


def record_panel(request: Request, db: Any, record: Any, principal: Principal) -> Markup:
    """On a record closed as non-counselling: propose a block ("repeat prank"), or its state."""
    if principal.role not in service.PROPOSE_ROLES or getattr(record, "outcome", None) != "non_counselling":
        return Markup("")
    ctx = template_context(request, {"record": record, "proposal": service.proposal_for_record(db, record.id)})
    return Markup(templates.get_template("blocking/_record_panel.html").render(ctx))
