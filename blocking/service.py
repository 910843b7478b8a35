"""Blocking rules: who may block, what can be blocked, how long, the check on the voice path."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from blocking.index import Stale as Stale  # re-exported: the voice path catches it
from blocking.index import active
from blocking.models import BlockedCall, BlockProposal, NumberBlock
from blocking.recorder import recorder
from hotline.audit import service as audit
from hotline.db import session_scope, utcnow
from hotline.errors import Conflict, Invalid, NotAllowed, NotFound
from hotline.i18n import N_, Text
from hotline.phone import NOT_A_NUMBER, CallerIdStatus, parse_caller, why_invalid
from hotline.security.crypto import hash_keyring

log = logging.getLogger(__name__)
BLOCK_ROLES = ("supervisor", "administrator")
PROPOSE_ROLES = ("counsellor", "supervisor", "administrator")
MIN_DURATION = timedelta(hours=1)
MAX_DURATION = timedelta(days=366)
UNITS = {"h": ("hours", 1), "d": ("days", 1), "w": ("days", 7), "m": ("days", 30)}  # m = months of 30 days
UNIT_LABELS = {"h": N_("hours"), "d": N_("days"), "w": N_("weeks"), "m": N_("months")}
_DURATION = re.compile(r"^\s*(\d{1,4})\s*([hdwm])\s*$", re.IGNORECASE)
REASON_MAX = 500


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in Principal, or the CLI (``username='cli'``, administrator)."""

    id: int
    username: str
    role: str
    centre_id: int | None


def parse_duration(text: str) -> timedelta:
    """``12h``, ``3d``, ``2w``, ``6m`` (30-day months): between one hour and a year."""
    match = _DURATION.match(text or "")
    if match is None:
        raise Invalid({"duration": Text("Give the duration as a number and a unit: 12h, 3d, 2w or 6m (got %(value)s).",
                                        value=repr(text or ""))})
    unit, factor = UNITS[match.group(2).lower()]
    duration = timedelta(**{unit: int(match.group(1)) * factor})
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise Invalid({"duration": Text("A block lasts from one hour to one year.")})
    return duration


def _reason(text: str) -> str:
    reason = " ".join((text or "").split())
    if not reason:
        raise Invalid({"reason": Text("Say why the number is blocked.")})
    if len(reason) > REASON_MAX:
        raise Invalid({"reason": Text("The reason is too long (at most %(n)d characters).", n=REASON_MAX)})
    return reason


def blockable(number: str) -> tuple[str, str]:
    """(E.164, masked) of a number that may be blocked, else ``Invalid`` with the reason."""
    caller = parse_caller(number)
    if caller.status in (CallerIdStatus.WITHHELD, CallerIdStatus.UNAVAILABLE):
        raise Invalid({"number": Text("A withheld or unavailable number cannot be blocked.")})
    if caller.status is CallerIdStatus.INVALID or caller.normalized is None:
        raise Invalid({"number": Text("This is not a valid phone number: %(reason)s.",
                                      reason=Text(why_invalid(number) or NOT_A_NUMBER))})
    if caller.is_short_code:
        raise Invalid({"number": Text("An emergency or hotline short code cannot be blocked.")})
    return caller.normalized, caller.masked


def _may_block(actor: Actor) -> None:
    if actor.role not in BLOCK_ROLES:
        raise NotAllowed(Text("Only a supervisor or an administrator may block a number."))


def _visible(actor: Actor, centre_id: int | None) -> bool:
    return actor.role == "administrator" or actor.centre_id == centre_id


def _active_for(session: Session, hashes: list[str], now: datetime) -> NumberBlock | None:
    return session.scalars(select(NumberBlock).where(
        NumberBlock.number_hash.in_(hashes), NumberBlock.lifted_at.is_(None), NumberBlock.expires_at > now,
        NumberBlock.starts_at <= now).order_by(NumberBlock.expires_at.desc()).limit(1)).first()


def _add(session: Session, *, actor: Actor, number_hash: str, masked: str, duration: timedelta, reason: str,
         request: Any = None, proposal_id: int | None = None, hashes: list[str] | None = None) -> NumberBlock:
    now = utcnow()
    if _active_for(session, hashes or [number_hash], now) is not None:
        raise Conflict(Text("This number is already blocked; lift the block first to change it."))
    block = NumberBlock(centre_id=actor.centre_id, number_hash=number_hash, number_masked=masked, reason=reason,
                        starts_at=now, expires_at=now + duration, created_by=actor.username[:128],
                        proposal_id=proposal_id)
    session.add(block)
    session.flush()
    active.invalidate_on_commit(session)  # applies at once in this process, within a second elsewhere
    audit.record(session, actor=actor, action="block.add", object_type="number_block", object_id=block.id,
                 request=request, detail={"number": masked, "until": block.expires_at.isoformat(),
                                          "reason": reason, "proposal": proposal_id})
    return block


def add_block(session: Session, *, actor: Actor, number: str, duration: str | timedelta, reason: str,
              request: Any = None) -> NumberBlock:
    _may_block(actor)
    normalized, masked = blockable(number)
    span = parse_duration(duration) if isinstance(duration, str) else duration
    keyring = hash_keyring()
    return _add(session, actor=actor, number_hash=keyring.hash(normalized), masked=masked, duration=span,
                reason=_reason(reason), request=request, hashes=keyring.candidates(normalized))


def lift(session: Session, *, actor: Actor, block_id: int, request: Any = None) -> NumberBlock:
    _may_block(actor)
    block = session.get(NumberBlock, block_id)
    if block is None or not _visible(actor, block.centre_id):
        raise NotFound(Text("No such block."))
    now = utcnow()
    if block.lifted_at is not None or block.expires_at <= now:
        raise Conflict(Text("This block has already ended."))
    block.lifted_at, block.lifted_by = now, actor.username[:128]
    active.invalidate_on_commit(session)
    audit.record(session, actor=actor, action="block.lift", object_type="number_block", object_id=block.id,
                 request=request, detail={"number": block.number_masked})
    return block


def active_blocks(session: Session, actor: Actor) -> list[NumberBlock]:
    now = utcnow()
    query = select(NumberBlock).where(NumberBlock.lifted_at.is_(None), NumberBlock.expires_at > now)
    if actor.role != "administrator":
        query = query.where(NumberBlock.centre_id == actor.centre_id)
    return list(session.scalars(query.order_by(NumberBlock.expires_at)))


# ---------------------------------------------------------------------- the voice path
# The Twilio voice webhook and the Asterisk lookup check a caller against this process's copy of the
# active blocks (``blocking.index``: no database, no thread) and record a blocked call after they
# answered (``blocking.recorder``: an fsynced write-ahead journal before the answer, a writer thread
# after it, a journal on disk while the database is down).

def _caller_hashes(raw_number: str | None) -> list[str] | None:
    """The hashes a block of this caller ID may be stored under; None for withheld, unavailable,
    invalid IDs and short codes (never blocked)."""
    caller = parse_caller(raw_number)
    if caller.status is not CallerIdStatus.PRESENT or caller.normalized is None or caller.is_short_code:
        return None
    return hash_keyring().candidates(caller.normalized)


def check(session: Session, raw_number: str | None) -> NumberBlock | None:
    """The active block of this caller ID, read from the database, or None."""
    hashes = _caller_hashes(raw_number)
    return None if hashes is None else _active_for(session, hashes, utcnow())


def check_cached(raw_number: str | None, *, stale_ok: bool = False) -> int | None:
    """The id of the active block of this caller ID from this process's copy (no database), or None.
    Raises ``Stale`` when the copy is not known to be current (unless ``stale_ok``: then what the
    copy knows, None if it never loaded); call ``refresh_blocks()`` and ask again."""
    hashes = _caller_hashes(raw_number)
    if hashes is None:
        return None
    if stale_ok and not active.known:
        return None
    return active.lookup(hashes, stale_ok=stale_ok)


def refresh_blocks() -> None:
    """Bring this process's copy of the active blocks up to date (one statement when nothing changed)."""
    active.refresh()


CHECK_BUDGET = 1.0  # seconds the voice path waits for a refresh of the blocks before using what it knows
# Refreshes asked by the voice path run here, not on the shared thread pool that pages keep busy.
_refresher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="blocking-check")


async def blocked_now(raw_number: str | None) -> int | None:
    """The caller's active block id from this process's copy of the blocks, for the voice path.
    When the copy may be out of date it is refreshed first on a thread of its own (within
    ``CHECK_BUDGET``); when that fails, what the copy knows applies (a known block still turns the
    caller away; a caller it does not know is let in).  Never raises: a failed check lets the call in."""
    try:
        try:
            return check_cached(raw_number)
        except Stale:  # refreshed first, then asked again
            await asyncio.wait_for(asyncio.wrap_future(_refresher.submit(refresh_blocks)), CHECK_BUDGET)
            return check_cached(raw_number, stale_ok=True)
    except Exception as exc:  # noqa: BLE001 - the database is slow or down: what is known still applies
        try:
            known = check_cached(raw_number, stale_ok=True)
        except Exception:  # noqa: BLE001 - never keeps a caller out
            known = None
        log.error("blocking.check_stale", extra={"reason": type(exc).__name__, "blocked": known is not None})
        return known


def record_blocked_call(*, provider: str, call_ref: str, block_id: int | None) -> None:
    """A block turned this call away: in this process's write-ahead journal before the answer (an
    fsync), in the database after it, never lost (``blocking.recorder``)."""
    recorder.blocked(provider=provider, call_ref=call_ref, block_id=block_id)


async def record_blocked_call_async(*, provider: str, call_ref: str, block_id: int | None) -> None:
    """``record_blocked_call`` for the event loop: the journal's fsync runs on a thread of its own."""
    await recorder.blocked_async(provider=provider, call_ref=call_ref, block_id=block_id)


def mark_pressed(*, provider: str, call_ref: str) -> None:
    """The blocked caller pressed the key for a supervisor: recorded after the call's own record."""
    recorder.pressed(provider=provider, call_ref=call_ref)


async def mark_pressed_async(*, provider: str, call_ref: str) -> None:
    """``mark_pressed`` for the event loop (the journal's fsync on a thread of its own)."""
    await recorder.pressed_async(provider=provider, call_ref=call_ref)


def start_voice_path() -> Callable[[], None]:
    """For a web process: a fresh copy of the active blocks kept current by a refresher thread, and
    the recorder's writer; returns the function that stops both (writing what is still queued)."""
    active.invalidate()
    stop_refresher = active.start_refresher()
    recorder.start()  # replays at once what a process killed before this one left

    def stop() -> None:
        stop_refresher()
        recorder.stop()

    return stop


def blocked_hashes(session: Session, hashes: list[str] | Select[Any], now: datetime | None = None) -> set[str]:
    """Which of these number hashes (a list, or a query selecting them) are blocked now (the callback
    worklist never calls them back)."""
    now = now or utcnow()
    chunks = [hashes] if isinstance(hashes, Select) else [hashes[i:i + 1000] for i in range(0, len(hashes), 1000)]
    out: set[str] = set()
    for chunk in chunks:
        out.update(session.scalars(select(NumberBlock.number_hash).where(
            NumberBlock.number_hash.in_(chunk), NumberBlock.lifted_at.is_(None),
            NumberBlock.expires_at > now, NumberBlock.starts_at <= now)))
    return out


def blocked_counts(session: Session, *, centre_id: int, since: datetime, until: datetime) -> dict[str, int]:
    """Calls a block turned away in [since, until) that belong to the centre (the call's centre when
    the call is known, else the centre of the supervisor who blocked the number), and how many of
    those pressed the key for a supervisor (the daily log and reports count them)."""
    from sqlalchemy import and_

    from hotline.calls.models import Call, CallKey

    rows = session.execute(
        select(BlockedCall.pressed_for_supervisor, Call.centre_id, NumberBlock.centre_id)
        .outerjoin(CallKey, and_(CallKey.provider == BlockedCall.provider, CallKey.key == BlockedCall.call_ref))
        .outerjoin(Call, Call.id == CallKey.call_id)
        .outerjoin(NumberBlock, NumberBlock.id == BlockedCall.block_id)
        .where(BlockedCall.at >= since, BlockedCall.at < until))
    out = {"blocked": 0, "blocked_to_supervisor": 0}
    for pressed, call_centre, block_centre in rows:
        if (call_centre if call_centre is not None else block_centre) == centre_id:
            out["blocked"] += 1
            out["blocked_to_supervisor"] += 1 if pressed else 0
    return out


# ---------------------------------------------------------------------- proposals
def propose(session: Session, *, actor: Actor, record_id: int, reason: str, request: Any = None) -> BlockProposal:
    from hotline.calls.models import Call, CallRecord

    if actor.role not in PROPOSE_ROLES:
        raise NotAllowed()
    record = session.get(CallRecord, record_id)
    if record is None or not _visible(actor, record.centre_id):
        raise NotFound()
    if record.outcome != "non_counselling":
        raise Invalid({"": Text("A block can be proposed only from a call closed as non-counselling.")})
    call = session.get(Call, record.call_id) if record.call_id else None
    if call is None or call.caller_id_status != CallerIdStatus.PRESENT or not call.number_hash:
        raise Invalid({"": Text("A withheld or unavailable number cannot be blocked.")})
    pending = session.scalars(select(BlockProposal).where(BlockProposal.record_id == record.id,
                                                          BlockProposal.status == "pending")).first()
    if pending is not None:
        return pending
    proposal = BlockProposal(centre_id=record.centre_id, record_id=record.id, number_hash=call.number_hash,
                             number_masked=call.caller_masked, reason=_reason(reason or "repeat prank"),
                             proposed_by_id=actor.id or None, proposed_by=actor.username[:128])
    session.add(proposal)
    session.flush()
    audit.record(session, actor=actor, action="block.propose", object_type="block_proposal",
                 object_id=proposal.id, request=request, detail={"number": proposal.number_masked,
                                                                 "record": record.id})
    _tell(session, centre_id=record.centre_id, kind="blocking.proposal", link="/blocking",
          title=Text("%(who)s proposes blocking the caller of record #%(record)s: accept or refuse it.",
                     who=actor.username, record=record.id))
    return proposal


def _tell(session: Session, *, kind: str, title: Text, link: str, centre_id: int | None = None,
          user_ids: list[int] | None = None) -> None:
    """A lasting notification (``hotline.notifications``): to ``user_ids`` and, given a centre, its supervisors."""
    from hotline.notifications import service as notifications

    notifications.notify(session, user_ids=user_ids, centre_id=centre_id, roles=("supervisor",) if centre_id else (),
                         kind=kind, title=title, link=link)


def proposal_for_record(session: Session, record_id: int) -> BlockProposal | None:
    return session.scalars(select(BlockProposal).where(BlockProposal.record_id == record_id)
                           .order_by(BlockProposal.id.desc()).limit(1)).first()


def pending_proposals(session: Session, actor: Actor) -> list[BlockProposal]:
    query = select(BlockProposal).where(BlockProposal.status == "pending")
    if actor.role != "administrator":
        query = query.where(BlockProposal.centre_id == actor.centre_id)
    return list(session.scalars(query.order_by(BlockProposal.created_at)))


def decide(session: Session, *, actor: Actor, proposal_id: int, accept: bool, duration: str = "",
           request: Any = None) -> BlockProposal:
    _may_block(actor)
    proposal = session.get(BlockProposal, proposal_id)
    if proposal is None or not _visible(actor, proposal.centre_id):
        raise NotFound()
    if proposal.status != "pending":
        raise Conflict(Text("This proposal has already been decided."))
    if accept:
        _add(session, actor=actor, number_hash=proposal.number_hash, masked=proposal.number_masked,
             duration=parse_duration(duration), reason=proposal.reason, request=request, proposal_id=proposal.id)
    proposal.status = "accepted" if accept else "refused"
    proposal.decided_by, proposal.decided_at = actor.username[:128], utcnow()
    if not accept:
        audit.record(session, actor=actor, action="block.proposal_refuse", object_type="block_proposal",
                     object_id=proposal.id, request=request, detail={"number": proposal.number_masked})
    from hotline.notifications import service as notifications

    session.flush()
    left = session.scalar(select(BlockProposal.id).where(BlockProposal.status == "pending",
                                                         BlockProposal.centre_id == proposal.centre_id).limit(1))
    if left is None and proposal.centre_id is not None:  # nothing left to decide in this centre
        notifications.settle(session, link="/blocking", kinds=("blocking.proposal",), centre_id=proposal.centre_id)
    if proposal.proposed_by_id and proposal.proposed_by_id != actor.id:
        title = (Text("Your proposal to block the caller of record #%(record)s was accepted.", record=proposal.record_id)
                 if accept else
                 Text("Your proposal to block the caller of record #%(record)s was refused.", record=proposal.record_id))
        _tell(session, kind="blocking.accepted" if accept else "blocking.refused", title=title,
              user_ids=[proposal.proposed_by_id], link=f"/records/{proposal.record_id}" if proposal.record_id else "/records")
    return proposal


# ---------------------------------------------------------------------- retention
def retain(*, now: datetime, notes_cutoff: datetime | None, numbers_cutoff: datetime | None,
           dry_run: bool) -> int:
    """Blocks that ended, and decided proposals, before ``numbers_cutoff`` go (they hold a number hash)."""
    if numbers_cutoff is None:
        return 0
    with session_scope() as session:
        ended = select(NumberBlock.id).where(
            (NumberBlock.expires_at < numbers_cutoff)
            | (NumberBlock.lifted_at.is_not(None) & (NumberBlock.lifted_at < numbers_cutoff)))
        decided = select(BlockProposal.id).where(BlockProposal.status != "pending",
                                                 BlockProposal.decided_at < numbers_cutoff)
        ids, pids = list(session.scalars(ended)), list(session.scalars(decided))
        if not dry_run and ids:
            active.invalidate_on_commit(session)
        if not dry_run:
            if ids:
                session.execute(delete(NumberBlock).where(NumberBlock.id.in_(ids)))
            if pids:
                session.execute(delete(BlockProposal).where(BlockProposal.id.in_(pids)))
        return len(ids) + len(pids)
