"""Placing calls through the PBX: callbacks (the counsellor's own phone first, then the number, with
the hotline number as caller ID) and a supervisor's listen-in, whisper or barge.

``place_call`` and ``listen_in`` only write a ``pbx_commands`` row (``pending``) and, after the
commit, nudge whoever sends it: the AMI listener over the bus channel ``ami-commands`` (it also
polls pending rows every second, so it works without Redis and after a restart) or the queue
(Twilio's REST API, ``hotline.pbx.twilio``).  The sender claims the row exactly once
(``claim``: ``pending`` → ``sent`` by a conditional UPDATE), and the PBX's answer ends it
(``finish``: ``placed`` or ``failed`` with a reason); the domain that asked for the call hears the
end through its hook (``pbx_results`` in ``hotline.domains``, keyed by the ref's prefix).

Several PBXes (one Asterisk per centre, one ``hotline ami`` listener each): every row names the PBX
it must go out on (``pbx``, the name of a listener: its ``HOTLINE_AMI_NAME`` / ``--source``, which is
also the ``source`` of the calls it reports), and only that PBX's listener claims it.  A call placed
fresh (callback, follow-up) goes to its line's PBX, else its centre's (``lines.pbx``,
``centres.pbx``); a listen-in goes to the PBX the call is on (``calls.source``).  ``""`` (nothing
named: one PBX) lets any listener take it, as with a single PBX.  A row whose PBX has no listener
fails after ``pbx_pending_seconds`` with a reason naming the PBX.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from hotline.calls.models import Call, CallPart
from hotline.centres.models import AgentIdentity, Centre, Line
from hotline.db import rowcount, utcnow
from hotline.errors import Actor, Invalid, NotAllowed, NotFound
from hotline.i18n import N_, Text, stored_text
from hotline.pbx.models import ENDED, PbxCommand
from hotline.phone import SHORT_CODES, normalize_number

log = logging.getLogger(__name__)

__all__ = ["PbxCommand", "PbxError", "claim", "claim_pending", "command", "fail_placed", "finish", "forget_number",
           "listen_in", "pbx_of", "place_call"]

AMI_CHANNEL = "ami-commands"  # the listener's channel (``hotline.ingest.providers.asterisk.listener``)
PROVIDERS = ("asterisk", "twilio")
REF = re.compile(r"^[a-z][a-z0-9_]{0,15}:[A-Za-z0-9_.-]{1,46}$")
CALLING_ROLES = ("counsellor", "supervisor", "administrator")
SPY_ROLES = ("supervisor", "administrator")
SPY_MODES = ("listen", "whisper", "barge")

#: Reasons a command fails (English msgids, translated where shown).
NO_ANSWER = N_("no answer")
BUSY = N_("busy")
CONGESTED = N_("the network is congested")
REFUSED = N_("the phone refused the call")
UNREACHABLE = N_("the phone could not be reached")
NOT_TAKEN = N_("the PBX did not take the call (is the AMI listener, hotline ami, running?)")
#: stored with the PBX's name (``hotline.i18n.stored_text``)
NOT_TAKEN_BY = N_("the PBX %(pbx)s did not take the call (is its AMI listener, hotline-ami@%(pbx)s, running?)")
NO_RESULT = N_("the PBX did not say how the call went")
PBX_LOST = N_("the connection to the PBX was lost before the call could be asked for")
CANCELLED = N_("the call was cancelled before it was answered")
#: the counsellor answered, then the person called (Twilio's ``<Dial>`` said why not)
PERSON_NO_ANSWER = N_("the person called did not answer")
PERSON_BUSY = N_("the person called was busy")
PERSON_UNREACHABLE = N_("the person called could not be reached")
PERSON_CANCELLED = N_("the call ended before the person called answered")
REFUSED_BY_PBX = N_("the PBX refused the call request (check the phone's name and the AMI user's originate "
                    "permission)")


class PbxError(Invalid):
    default = N_("The call cannot be placed.")


# ---------------------------------------------------------------------- hooks
def result_hooks() -> Mapping[str, Callable[[Session, PbxCommand], None]]:
    from hotline import domains

    return domains.pbx_result_hooks()


def _run_hook(session: Session, cmd: PbxCommand) -> None:
    hook = result_hooks().get(cmd.ref.split(":", 1)[0]) if cmd.ref else None
    if hook is None:
        return
    try:
        with session.begin_nested():
            hook(session, cmd)
    except Exception:  # the command's end is kept; a failing hook is a bug, logged
        log.exception("pbx.result_hook_failed", extra={"command": cmd.id, "ref": cmd.ref})


# ---------------------------------------------------------------------- asking for a call
def dial_digits(e164: str) -> str:
    """What the trunk dials: national digits for Vietnamese numbers (``0912345678``), ``00…`` abroad."""
    if e164.startswith("+84"):
        return "0" + e164[3:]
    if e164.startswith("+"):
        return "00" + e164[1:]
    return e164


def _hotline_numbers(session: Session, centre_id: int) -> list[Line]:
    return list(session.scalars(select(Line).where(Line.centre_id == centre_id, Line.kind == "number",
                                                   Line.active.is_(True)).order_by(Line.id)))


def _own_phone(session: Session, *, user_id: int, centre_id: int) -> dict[str, str]:
    rows = session.scalars(select(AgentIdentity).where(AgentIdentity.user_id == user_id,
                                                       AgentIdentity.provider.in_(PROVIDERS))
                           .order_by(AgentIdentity.id))
    out: dict[str, str] = {}
    for row in rows:
        if row.centre_id == centre_id or row.provider not in out:
            out.setdefault(row.provider, row.identity)
    return out


def pbx_of(session: Session, *, centre_id: int, line: Line | None = None) -> str:
    """The PBX a call placed fresh from this centre (shown with ``line``'s number) goes out on: the
    line's own, else the centre's; "" when neither names one (any listener: one PBX)."""
    if line is not None and line.pbx:
        return line.pbx
    centre = session.get(Centre, centre_id)
    return centre.pbx if centre is not None else ""


def route(session: Session, *, user_id: int, centre_id: int) -> tuple[str, str, str, str]:
    """(provider, the person's own phone, the hotline number to show, the PBX) for a call placed
    from this centre (the PBX is "" on Twilio and when none is named)."""
    lines = _hotline_numbers(session, centre_id)
    if not lines:
        raise PbxError(Text("This centre has no hotline number to call from; an administrator adds one in the "
                            "centre's lines."))
    phones = _own_phone(session, user_id=user_id, centre_id=centre_id)
    for line in lines:
        for provider in (PROVIDERS if line.provider == "any" else (line.provider,)):
            if provider in phones:
                pbx = pbx_of(session, centre_id=centre_id, line=line) if provider == "asterisk" else ""
                return provider, phones[provider], line.identifier, pbx
    raise PbxError(Text("You have no phone mapped for this centre's line; an administrator maps your extension "
                        "or Twilio identity to your account."))


def _check_centre(actor: Actor, centre_id: int) -> None:
    if actor.role != "administrator" and actor.centre_id != centre_id:
        raise NotFound(Text("No such centre, or you may not see it."))


def _nudge(session: Session, cmd: PbxCommand) -> None:
    """After the commit: tell the sender (the listener's poll and the sweep are the safety net)."""
    provider, command_id = cmd.provider, cmd.id

    def after_commit(_session: Session) -> None:
        try:
            if provider == "asterisk":
                from hotline import bus

                bus.publish(AMI_CHANNEL, {"action": "PbxCommand", "id": command_id})
            else:
                from hotline.pbx import twilio
                from hotline.queue import enqueue

                enqueue(twilio.send, command_id)
        except Exception:  # noqa: BLE001 - the listener's poll / the sweep still send it
            log.warning("pbx.nudge_failed", extra={"command": command_id})

    event.listen(session, "after_commit", after_commit, once=True)


def place_call(session: Session, *, actor: Actor, centre_id: int, number: str, ref: str) -> PbxCommand:
    """Ask the PBX to ring the actor's own phone and then ``number``, showing the hotline number.
    The row is ``pending`` until the sender takes it; the caller commits."""
    if actor.role not in CALLING_ROLES:
        raise NotAllowed(Text("Your role may not place calls."), "pbx.call")
    _check_centre(actor, centre_id)
    if not REF.match(ref or ""):
        raise PbxError(Text("The call's reference %(ref)s is not valid.", ref=(ref or "")[:40]))
    e164, _why = normalize_number(number or "")
    if e164 is None:
        raise PbxError(Text("This number cannot be called: it is not a valid phone number."))
    if e164 in SHORT_CODES:
        raise PbxError(Text("Hotline does not place calls to short codes such as %(code)s.", code=e164))
    provider, device, hotline_number, pbx_name = route(session, user_id=actor.id, centre_id=centre_id)
    cmd = PbxCommand(centre_id=centre_id, user_id=actor.id, kind="call", provider=provider, pbx=pbx_name, ref=ref,
                     device=device, dial_number=e164, caller_id=hotline_number, status="pending",
                     created_at=utcnow())
    session.add(cmd)
    session.flush()
    _nudge(session, cmd)
    log.info("pbx.call_requested", extra={"command": cmd.id, "provider": provider, "pbx": pbx_name, "ref": ref})
    return cmd


def spy_target(session: Session, call: Call) -> tuple[str, bool]:
    """The counsellor's channel of a call in progress: (its Uniqueid, True) from the open part, else
    (the answering device's channel-name prefix ``PJSIP/tvv1-``, False), else ("", False)."""
    leg = session.scalar(select(CallPart.leg).where(CallPart.call_id == call.id, CallPart.ended_at.is_(None),
                                                    CallPart.started_at.is_not(None))
                         .order_by(CallPart.started_at.desc()).limit(1))
    if leg:
        return leg.split("/", 1)[0], True  # "<the counsellor channel's Uniqueid>/<bridge>"
    if call.answered_by and "/" in call.answered_by:
        return call.answered_by + "-", False
    return "", False


def listen_in(session: Session, *, actor: Actor, call_id: int, mode: str) -> PbxCommand:
    """A supervisor's own phone rings and, answered, listens to (whispers to, barges into) the
    counsellor's side of one call in progress (Asterisk ``ChanSpy``).  The caller audits and commits."""
    if actor.role not in SPY_ROLES:
        raise NotAllowed(Text("Only supervisors may listen in to calls."), "pbx.spy")
    call = session.get(Call, call_id)
    if call is None or (actor.role != "administrator" and call.centre_id != actor.centre_id):
        raise NotFound(Text("No such call, or you may not see it."))
    if mode not in SPY_MODES:
        raise PbxError(Text("Unknown listen-in mode %(mode)s.", mode=mode[:16]))
    if call.provider != "asterisk":
        raise PbxError(Text("Listening in works on calls through Asterisk only."))
    if call.ended_at is not None or call.answered_at is None:
        raise PbxError(Text("This call is not in progress with a counsellor."))
    channel, exact = spy_target(session, call)
    if not channel or not re.match(r"^[A-Za-z0-9_/@.;:+-]{3,128}$", channel):
        raise PbxError(Text("This call has no counsellor channel to listen to (yet)."))
    device = _own_phone(session, user_id=actor.id, centre_id=call.centre_id).get("asterisk")
    if not device:
        raise PbxError(Text("You have no Asterisk phone mapped to your account; an administrator maps your "
                            "extension so that your phone rings to listen in."))
    # ChanSpy works only on the PBX the call is on: the listener that reported it (its source)
    cmd = PbxCommand(centre_id=call.centre_id, user_id=actor.id, kind="spy", provider="asterisk",
                     pbx=(call.source or "")[:128],
                     ref=f"spy:{call_id}", device=device, dial_number=None, caller_id="",
                     options={"channel": channel, "exact": exact, "mode": mode, "call_id": call_id},
                     status="pending", created_at=utcnow())
    session.add(cmd)
    session.flush()
    _nudge(session, cmd)
    log.info("pbx.spy_requested", extra={"command": cmd.id, "mode": mode, "call_id": call_id, "pbx": cmd.pbx})
    return cmd


def command(session: Session, command_id: int) -> PbxCommand:
    cmd = session.get(PbxCommand, command_id)
    if cmd is None:
        raise NotFound(Text("No such call request."))
    return cmd


# ---------------------------------------------------------------------- the sender's side
def pending_ids(session: Session, *, provider: str, pbx: str | None = None, limit: int = 50) -> list[int]:
    """Pending rows a sender may take; ``pbx``: the AMI listener's name (its own rows and those naming none)."""
    where = [PbxCommand.provider == provider, PbxCommand.status == "pending"]
    if pbx is not None:
        where.append(PbxCommand.pbx.in_(("", pbx)))
    return list(session.scalars(select(PbxCommand.id).where(*where).order_by(PbxCommand.id).limit(limit)))


def claim(session: Session, command_id: int, *, by: str, pbx: str | None = None) -> PbxCommand | None:
    """``pending`` → ``sent`` for exactly one sender (with ``pbx``: only a row for that PBX or for
    any); the row, or None when another took it first."""
    where = [PbxCommand.id == command_id, PbxCommand.status == "pending"]
    if pbx is not None:
        where.append(PbxCommand.pbx.in_(("", pbx)))
    res = session.execute(update(PbxCommand).where(*where)
                          .values(status="sent", sent_at=utcnow(), claimed_by=by[:128]))
    if rowcount(res) != 1:
        return None
    session.flush()
    cmd = session.get(PbxCommand, command_id)
    if cmd is not None:
        session.refresh(cmd)
    return cmd


def claim_pending(session: Session, *, provider: str, by: str, pbx: str | None = None,
                  limit: int = 50) -> list[PbxCommand]:
    """Claim every pending row this sender may take (``pending_ids``' rows) in one statement
    (``UPDATE … RETURNING``: one round trip to the database, where ``pending_ids`` + ``claim`` made
    three per row); each row is claimed by exactly one sender, as with ``claim``."""
    if not session.get_bind().dialect.update_returning:  # SQLite before 3.35
        claimed = (claim(session, i, by=by, pbx=pbx) for i in pending_ids(session, provider=provider, pbx=pbx,
                                                                             limit=limit))
        return [c for c in claimed if c is not None]
    where = [PbxCommand.provider == provider, PbxCommand.status == "pending"]
    if pbx is not None:
        where.append(PbxCommand.pbx.in_(("", pbx)))
    ids = select(PbxCommand.id).where(*where).order_by(PbxCommand.id).limit(limit).scalar_subquery()
    stmt = (update(PbxCommand).where(PbxCommand.id.in_(ids), PbxCommand.status == "pending")
            .values(status="sent", sent_at=utcnow(), claimed_by=by[:128]).returning(PbxCommand))
    rows = list(session.scalars(stmt, execution_options={"synchronize_session": False}))
    return sorted(rows, key=lambda c: c.id)


def finish(session: Session, command_id: int, *, status: str, reason: str = "", call_uid: str = "") -> PbxCommand | None:
    """End a command (once): ``placed`` or ``failed`` with a reason; runs the ref's hook."""
    if status not in ENDED:
        raise ValueError(f"a command ends placed or failed, not {status!r}")
    cmd = session.get(PbxCommand, command_id)
    if cmd is None or cmd.status in ENDED:
        return None
    cmd.status, cmd.reason = status, reason[:255]
    cmd.call_uid = call_uid[:128] or cmd.call_uid
    cmd.finished_at = utcnow()
    if status == "failed" or cmd.provider != "twilio":
        cmd.dial_number = None  # needed only to place the call (Twilio: until its TwiML and callbacks)
    session.flush()
    log.info("pbx.call_" + status, extra={"command": cmd.id, "ref": cmd.ref, "reason": cmd.reason})
    _run_hook(session, cmd)
    return cmd


def fail_placed(session: Session, command_id: int, *, reason: str, call_uid: str = "") -> PbxCommand | None:
    """A call the PBX took (``placed``, or still ``sent``) that then failed before it was answered
    (Twilio's status callback ``no-answer``/``busy``/``failed``/``canceled``, or its ``<Dial>`` to the
    person called): ``failed`` with the reason, once; runs the ref's hook like ``finish``.  None when
    the command is unknown or already failed."""
    cmd = session.get(PbxCommand, command_id)
    if cmd is None or cmd.status not in ("sent", "placed"):
        return None
    cmd.status, cmd.reason = "failed", reason[:255]
    cmd.call_uid = cmd.call_uid or call_uid[:128]
    cmd.finished_at = utcnow()
    cmd.dial_number = None
    session.flush()
    log.info("pbx.call_failed_after_placed", extra={"command": cmd.id, "ref": cmd.ref, "reason": cmd.reason})
    _run_hook(session, cmd)
    return cmd


def forget_number(session: Session, command_id: int) -> None:
    """The placed call is over: its number is no longer kept with the command."""
    cmd = session.get(PbxCommand, command_id)
    if cmd is not None and cmd.dial_number is not None:
        cmd.dial_number = None
        session.flush()


def expire_stale(session: Session, *, now: datetime | None = None, pending_seconds: int | None = None,
                 sent_seconds: int | None = None) -> int:
    """Fail what nobody took (no listener running) or what the PBX never answered."""
    from hotline.settings import get_settings

    s = get_settings()
    now = now or utcnow()
    pending_cut = now - timedelta(seconds=pending_seconds if pending_seconds is not None else s.pbx_pending_seconds)
    sent_cut = now - timedelta(seconds=sent_seconds if sent_seconds is not None else s.pbx_ring_seconds + 60)
    stale: list[tuple[int, str]] = [
        (i, stored_text(NOT_TAKEN_BY, pbx=name) if name else NOT_TAKEN)
        for i, name in session.execute(select(PbxCommand.id, PbxCommand.pbx).where(
            PbxCommand.status == "pending", PbxCommand.created_at < pending_cut).limit(200))]
    stale += [(i, NO_RESULT) for i in session.scalars(select(PbxCommand.id).where(
        PbxCommand.status == "sent", PbxCommand.sent_at < sent_cut).limit(200))]
    for command_id, reason in stale:
        finish(session, command_id, status="failed", reason=reason)
    return len(stale)


def retain(*, now: datetime, notes_cutoff: datetime | None, numbers_cutoff: datetime | None,
           dry_run: bool) -> int:
    """Commands older than ``numbers_cutoff`` go (an ended one keeps no number; an old pending one might)."""
    from sqlalchemy import delete, func

    from hotline.db import session_scope

    if numbers_cutoff is None:
        return 0
    with session_scope() as session:
        old = PbxCommand.created_at < numbers_cutoff
        if dry_run:
            return int(session.scalar(select(func.count()).select_from(PbxCommand).where(old)) or 0)
        return rowcount(session.execute(delete(PbxCommand).where(old)))


def summary(cmd: PbxCommand) -> dict[str, Any]:
    """What a page or the API shows about a command (never the number)."""
    return {"id": cmd.id, "ref": cmd.ref, "kind": cmd.kind, "provider": cmd.provider, "pbx": cmd.pbx,
            "status": cmd.status,
            "reason": cmd.reason, "call_uid": cmd.call_uid, "created_at": cmd.created_at.isoformat(),
            "finished_at": cmd.finished_at.isoformat() if cmd.finished_at else None}
