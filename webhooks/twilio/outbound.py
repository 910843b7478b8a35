"""Twilio webhooks of the calls hotline places itself (callbacks, ``hotline.pbx.twilio``).

Twilio rings the counsellor's own phone first; answered, it asks ``POST /webhooks/twilio/outbound/{id}``
for TwiML, which says nothing (nothing may name the service before the person confirms they called)
and ``<Dial callerId=hotline number>`` the number.  The call's status callbacks
(``/outbound/{id}/status?callback=<ref>``) and the dial's action (``/outbound/{id}/dial?callback=<ref>``)
record it as a call marked with the ref (``facts["callback"]``), the person called as its caller.
A call that ends before it is answered (the counsellor's phone: status ``no-answer``/``busy``/``failed``/
``canceled``; the person called: the dial's ``DialCallStatus``) fails its command with the reason
(``pbx.fail_placed``), and the ref's hook puts the callback back on its list, as on Asterisk.
Every request's ``X-Twilio-Signature`` is checked (``views._read``); raw requests are kept like the
other webhooks'.
"""

from __future__ import annotations

import logging

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from twilio.twiml.voice_response import Dial, VoiceResponse

from hotline.db import session_scope
from hotline.ingest.providers.twilio import translator
from hotline.ingest.providers.twilio.translator import Hook
from hotline.pbx import service as pbx
from hotline.pbx.twilio import urls
from hotline.settings import get_settings
from webhooks.twilio.views import _bad_request, _keep, _read, _twiml

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks/twilio", tags=["twilio"])

# Said to the counsellor (never to the person called) when the call cannot go on.
CANNOT_CALL = "Không thực hiện được cuộc gọi này. Xin vui lòng thử lại từ danh sách gọi lại."
FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
#: the call to the counsellor's own phone ended before it was answered (its status callback)
COUNSELLOR_NOT_REACHED = {"no-answer": pbx.NO_ANSWER, "busy": pbx.BUSY, "failed": pbx.UNREACHABLE,
                          "canceled": pbx.CANCELLED}
#: the counsellor answered, the ``<Dial>`` to the person called did not connect (its action)
PERSON_NOT_REACHED = {"no-answer": pbx.PERSON_NO_ANSWER, "busy": pbx.PERSON_BUSY, "failed": pbx.PERSON_UNREACHABLE,
                      "canceled": pbx.PERSON_CANCELLED}


def _target(command_id: int, *, forget: bool = False) -> tuple[str, str, str] | None:
    """(number, hotline number, ref) of a Twilio call command still holding its number."""
    try:
        with session_scope() as db:
            cmd = db.get(pbx.PbxCommand, command_id)
            if cmd is None or cmd.provider != "twilio" or cmd.kind != "call":
                return None
            out = (cmd.dial_number or "", cmd.caller_id, cmd.ref)
            if forget:
                pbx.forget_number(db, command_id)
            return out if out[0] else None
    except Exception:  # noqa: BLE001 - the database is away: the call cannot go on, say so
        log.warning("twilio.outbound_unreadable", extra={"command": command_id})
        return None


@router.post("/outbound/{command_id}")
async def outbound_twiml(command_id: int, request: Request) -> Response:
    req = await _read(request, Hook.OUTBOUND)
    if isinstance(req, Response):
        return req
    items = translator.translate_all(req)
    await _keep(items)
    target = await anyio.to_thread.run_sync(lambda: _target(command_id))
    response = VoiceResponse()
    if target is None:
        response.say(CANNOT_CALL, language="vi-VN")
        response.hangup()
        return _twiml(response)
    number, hotline_number, ref = target
    action = urls(command_id, ref)[1].replace("/status?", "/dial?")
    dial = Dial(caller_id=hotline_number, timeout=get_settings().pbx_ring_seconds, action=action, method="POST")
    dial.number(number)
    response.append(dial)
    return _twiml(response)


async def _placed_callback(request: Request, hook: Hook, command_id: int) -> Response:
    req = await _read(request, hook)
    if isinstance(req, Response):
        return req
    final = (req.get("CallStatus") or "").lower() in FINAL
    target = await anyio.to_thread.run_sync(lambda: _target(command_id, forget=final))
    req.callee = target[0] if target else None
    if target is not None and req.query.get("callback") != target[2]:
        req.callee = None  # a ref that is not this command's: recorded, but never with its number
    items = translator.translate_all(req)
    await _keep(items)
    if items[0].error:
        return _bad_request(req, items[0])
    if target is not None and req.query.get("callback") == target[2]:
        if hook == Hook.STATUS:
            reason = COUNSELLOR_NOT_REACHED.get((req.get("CallStatus") or "").lower())
        else:
            reason = PERSON_NOT_REACHED.get((req.get("DialCallStatus") or "").lower())
        if reason is not None:
            sid = req.get("CallSid") or ""
            await anyio.to_thread.run_sync(lambda: _failed(command_id, reason, sid))
    return _twiml(VoiceResponse())


def _failed(command_id: int, reason: str, call_sid: str) -> None:
    """The placed call ended before it was answered: the command fails with the reason and the ref's hook
    puts the callback back on its list (as a refused Originate does on Asterisk)."""
    try:
        with session_scope() as db:
            pbx.fail_placed(db, command_id, reason=reason, call_uid=call_sid)
    except Exception:  # noqa: BLE001 - the call is recorded; the sweep fails a command left "sent"
        log.warning("twilio.outbound_fail_unrecorded", extra={"command": command_id, "reason": reason})


@router.post("/outbound/{command_id}/status")
async def outbound_status(command_id: int, request: Request) -> Response:
    return await _placed_callback(request, Hook.STATUS, command_id)


@router.post("/outbound/{command_id}/dial")
async def outbound_dial(command_id: int, request: Request) -> Response:
    return await _placed_callback(request, Hook.DIAL_ACTION, command_id)
