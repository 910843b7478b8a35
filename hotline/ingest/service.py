"""The one ingestor: store raw provider events append-only, then apply the call events.

Guarantees:
- a raw event whose dedupe key was seen before changes nothing;
- call events only ever add facts (times, flags, identities); the status is derived from the
  facts, so out-of-order delivery cannot move a call backwards and a terminal call stays
  terminal;
- two calls that turn out to be one (Asterisk re-stamping a ``Linkedid`` on transfer, a Twilio
  child leg) are merged into the older one;
- an event that cannot be applied goes to ``dead_letters`` with the reason, never to the floor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from hotline.calls.models import (
    OPEN_STATUSES,
    Call,
    CallKey,
    CallPart,
    CallRecord,
    DeadLetter,
    PendingCallEvent,
    RawEvent,
)
from hotline.centres.models import Centre
from hotline.centres.service import ingest_routing
from hotline.db import insert_ignore
from hotline.ingest.events import OVERFLOW_FROM, CallEvent, Kind, LiveCall, RawIn
from hotline.phone import parse_caller
from hotline.security import crypto
from hotline.security.crypto import hash_keyring
from hotline.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    stored: int = 0  # new raw events
    duplicates: int = 0
    applied: int = 0  # call events applied
    dead: int = 0
    touched: set[int] = field(default_factory=set)  # call ids changed
    # the changed calls themselves, kept alive for publishing (the session only holds them weakly)
    calls: dict[int, Call] = field(default_factory=dict, repr=False, compare=False)


# QUEUESTATUS values that mean "nobody answered" although Asterisk 22 sends QueueCallerAbandon.
QUEUE_UNANSWERED = frozenset({"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL",
                              "WITHDRAW", "CONTINUE"})


def caller_gave_up(call: Call) -> bool:
    """Whether a call that left the queue unanswered was abandoned by its caller (else: missed).

    Asterisk 22 sends ``QueueCallerAbandon`` on a queue timeout, ``leavewhenempty`` and a
    withdraw too.  A caller who really gave up asked to hang up first (``HangupRequest`` on
    their channel, earlier than the abandon); ``QUEUESTATUS`` (TIMEOUT, LEAVEEMPTY, …) says the
    queue let them go.  Providers that report only real abandons (Twilio) say nothing more."""
    facts = call.facts or {}
    if facts.get("queue_status") in QUEUE_UNANSWERED:
        return False
    how = facts.get("abandon")
    if how is None:
        return True  # the provider's abandon is the caller's
    hung_up, left = facts.get("hangup_request_at"), facts.get("abandon_at")
    if hung_up and left and hung_up != left:
        return bool(hung_up < left)
    return bool(how in ("caller_hung_up", "queue_log_abandon"))


def derive_status(call: Call) -> str:
    """The call's status from its facts; the same facts give the same status in any order."""
    really_ended = call.ended_at is not None
    if call.abandoned and call.answered_at is None:
        return "abandoned" if caller_gave_up(call) else "missed"
    if call.failed_reason and call.answered_at is None:
        return "failed"
    if call.answered_at is not None:
        if really_ended:
            return "completed"
        return "unknown_outcome" if call.resync_closed_at else "in_progress"
    if really_ended:
        return "missed"
    if call.resync_closed_at:
        return "unknown_outcome"
    if call.queued_at is not None:
        return "queued"
    return "ringing"


def _seconds(a: datetime | None, b: datetime | None) -> int | None:
    if a is None or b is None:
        return None
    return max(0, round((b - a).total_seconds()))


def _refresh(call: Call) -> None:
    """Derive status and fill wait/talk from timestamps when the provider did not report them."""
    facts = call.facts or {}
    if not facts.get("wait_reported") and call.queued_at is not None:
        end = call.answered_at or (call.ended_at if call.abandoned or call.ended_at else None)
        call.queue_wait_seconds = _seconds(call.queued_at, end)
    if not facts.get("talk_reported") and call.answered_at is not None:
        call.talk_seconds = _seconds(call.answered_at, call.ended_at)
    call.status = derive_status(call)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class _Batch:
    """State for applying one batch of events inside one transaction."""

    def __init__(self, session: Session, settings: Settings):
        self.session = session
        self.settings = settings
        self.hashes = hash_keyring()  # the number hash under the newest key, with its key id
        self.routing = ingest_routing(session, code=settings.default_centre_code, name=settings.default_centre_name,
                                      timezone=settings.default_timezone)
        self.keys: dict[tuple[str, str], Call] = {}
        # Keys looked up in this batch that name no call (hence no call_keys row: a key always has
        # its call): a new call's key is not asked for again by resolve() and link().
        self.missing: set[tuple[str, str]] = set()
        self.touched: set[int] = set()
        self.pending: dict[tuple[str, str], list[CallEvent]] = {}  # events waiting for their call
        self.parts: dict[int, list[CallPart]] = {}  # each call's parts, read once per batch
        self.created: set[int] = set()  # calls made in this batch
        self._stored_pending: bool | None = None  # whether pending_call_events has rows (asked once)
        # Trunk overflow links met while their call was being created (before its own event said its
        # queue and line): applied right after that event (see overflow_link).
        self.deferred: list[CallEvent] = []
        self._depth = 0  # apply() within apply() (what waited for a new call)
        self._deferred_once: set[tuple[str, str | None]] = set()
        self.agents: dict[tuple[str, str], int] = {}
        for (provider, ident), row in self.routing.agents.items():
            if row.user_id is not None:
                self.agents[(provider, device_name(ident))] = row.user_id
                self.agents.setdefault((provider, _local_exten(ident)), row.user_id)

    # ------------------------------------------------------------------ lookup
    def find(self, provider: str, key: str | None) -> Call | None:
        if not key:
            return None
        hit = self.keys.get((provider, key))
        if hit is not None:
            return hit
        if (provider, key) in self.missing:
            return None
        call = self.session.scalar(
            select(Call).join(CallKey, CallKey.call_id == Call.id).where(
                CallKey.provider == provider, CallKey.key == key
            )
        )
        if call is not None:
            self.keys[(provider, key)] = call
        else:
            self.missing.add((provider, key))
        return call

    def link(self, call: Call, provider: str, key: str, kind: str) -> None:
        if (provider, key) in self.keys and self.keys[(provider, key)] is call:
            return
        existing = None if (provider, key) in self.missing else self.session.scalar(
            select(CallKey).where(CallKey.provider == provider, CallKey.key == key))
        if existing is None:
            self.session.add(CallKey(provider=provider, key=key, kind=kind, call=call))
        elif existing.call_id != call.id:
            existing.call_id = call.id
        self.missing.discard((provider, key))
        self.keys[(provider, key)] = call

    def create(self, ev: CallEvent) -> Call:
        call = Call(
            provider=ev.provider, provider_key=ev.key, centre_id=self.routing.default_centre_id,
            unrouted=True, received_at=ev.at, source=ev.scope or "", facts={},
            caller_id_status="unavailable", caller_masked="", status="ringing",
            abandoned=False,
        )
        self.session.add(call)
        self.session.flush()
        self.created.add(call.id)
        self.link(call, ev.provider, ev.key, "call")
        return call

    def resolve(self, ev: CallEvent) -> Call:
        """The call an event is about, creating it, aliasing and merging as the keys say."""
        call = self.find(ev.provider, ev.key)
        if ev.channel and ev.channel != ev.key:
            via_channel = self.find(ev.provider, ev.channel)
            if call is None and via_channel is not None:
                # A channel we know turned up under a new Linkedid: Asterisk re-stamped it.
                call = via_channel
                self.link(call, ev.provider, ev.key, "call")
            elif call is not None and via_channel is not None and via_channel.id != call.id:
                call = self.merge(via_channel, call)
        if call is None:
            call = self.create(ev)
        if ev.channel and ev.channel != ev.key:
            self.link(call, ev.provider, ev.channel, "channel")
        return call

    # ------------------------------------------------------------------ merge
    def merge(self, a: Call, b: Call, *, into_first: bool = False) -> Call:
        """Fold the newer call into the older one (``into_first``: ``b`` into ``a``); every fact
        survives, nothing counts twice."""
        keep, gone = (a, b) if into_first or (a.received_at, a.id) <= (b.received_at, b.id) else (b, a)
        keep.received_at = _min(keep.received_at, gone.received_at)  # type: ignore[assignment]  # both are set, so is their minimum
        keep.queued_at = _min(keep.queued_at, gone.queued_at)
        keep.answered_at = _min(keep.answered_at, gone.answered_at)
        keep.ended_at = _max(keep.ended_at, gone.ended_at)
        keep.resync_closed_at = _max(keep.resync_closed_at, gone.resync_closed_at)
        keep.abandoned = keep.abandoned or gone.abandoned
        keep.failed_reason = keep.failed_reason or gone.failed_reason
        for attr in ("line_id", "dialed", "queue", "caller_raw", "caller_number", "number_hash",
                     "offered_to", "answered_by", "counsellor_id", "end_reason", "overflow_centre_id"):
            if getattr(keep, attr) is None and getattr(gone, attr) is not None:
                setattr(keep, attr, getattr(gone, attr))
        if keep.caller_id_status != "present" and gone.caller_id_status == "present":
            keep.caller_id_status, keep.caller_masked = gone.caller_id_status, gone.caller_masked
        if keep.unrouted and not gone.unrouted:
            keep.unrouted, keep.centre_id = False, gone.centre_id
        kept_facts, gone_facts = keep.facts or {}, gone.facts or {}
        # A value the provider reported beats one derived from timestamps, whichever call had it.
        for flag, attr in (("wait_reported", "queue_wait_seconds"), ("talk_reported", "talk_seconds")):
            if gone_facts.get(flag) and not kept_facts.get(flag):
                setattr(keep, attr, getattr(gone, attr))
        facts = dict(gone_facts)
        facts.update({k: v for k, v in kept_facts.items() if v})
        facts["merged"] = sorted(set(facts.get("merged", [])) | {gone.provider_key})
        keep.facts = facts
        for attr in ("queue_wait_seconds", "talk_seconds"):
            if getattr(keep, attr) is None:
                setattr(keep, attr, getattr(gone, attr))
        self.session.flush()
        self.session.execute(update(CallKey).where(CallKey.call_id == gone.id).values(call_id=keep.id))
        kept_legs = set(self.session.scalars(select(CallPart.leg).where(CallPart.call_id == keep.id)))
        self.session.execute(update(CallPart).where(CallPart.call_id == gone.id, CallPart.leg.not_in(kept_legs))
                             .values(call_id=keep.id) if kept_legs else
                             update(CallPart).where(CallPart.call_id == gone.id).values(call_id=keep.id))
        self.parts.pop(keep.id, None)
        self.parts.pop(gone.id, None)
        if self.session.scalar(select(CallRecord.id).where(CallRecord.call_id == keep.id)) is None:
            self.session.execute(update(CallRecord).where(CallRecord.call_id == gone.id).values(call_id=keep.id))
        for k, v in list(self.keys.items()):
            if v is gone:
                self.keys[k] = keep
        self.session.expire(keep, ["keys"])
        self.session.delete(gone)
        self.session.flush()
        self.touched.discard(gone.id)
        _refresh(keep)
        log.info("ingest.merged", extra={"kept": keep.id, "merged": gone.id})
        return keep

    # ------------------------------------------------------------------ facts
    def route(self, call: Call, ev: CallEvent) -> None:
        if ev.kind is Kind.QUEUED and ev.queue and call.queue and ev.queue != call.queue:
            self.requeued(call)
        if ev.dialed and not call.dialed:
            call.dialed = ev.dialed
        if ev.queue and not call.queue:
            call.queue = ev.queue
        elif self._joined_before(call, ev):
            self.first_queue(call, ev)
            return
        if call.line_id is None:  # the first queue's line (not an overflow queue's)
            line = self.routing.line_for(ev.provider, dialed=ev.dialed or call.dialed, queue=call.queue or ev.queue)
            if line is not None:
                call.line_id, call.centre_id, call.unrouted = line.id, line.centre_id, False
        if ev.kind is Kind.QUEUED and ev.queue and call.queue and (ev.queue != call.queue or call.line_id is not None):
            # another centre's queue (the line's overflow), also when it is the first queue of a call
            # its dialled number already placed (a caller sent on at once, or over a trunk)
            self.overflow(call, ev)

    def requeued(self, call: Call) -> None:
        """The caller joined a second queue (an overflow, routed by hotline's lines or not): each queue
        reports its own hold time, in whatever order they arrive, so the wait is the clock's, from the
        first join."""
        facts = call.facts or {}
        if not facts.get("requeued"):
            call.facts = {**{k: v for k, v in facts.items() if k != "wait_reported"}, "requeued": True}

    def _joined_before(self, call: Call, ev: CallEvent) -> bool:
        """A caller's join of another queue, dated before anything known of the call's queue so far:
        events arrived out of order (the overflow queue's answer before the line's own join)."""
        known = call.queued_at or call.answered_at
        return (ev.kind is Kind.QUEUED and bool(ev.queue) and bool(call.queue) and ev.queue != call.queue
                and known is not None and ev.at < known)

    def first_queue(self, call: Call, ev: CallEvent) -> None:
        """The queue the caller joined first is the call's (and its line's: the call belongs to that
        centre); the queue seen so far, met later in time, is where it overflowed to."""
        later, later_at = call.queue, call.queued_at or call.answered_at
        assert later is not None and later_at is not None  # _joined_before said so
        call.queue = ev.queue
        line = self.routing.line_for(ev.provider, dialed=None, queue=ev.queue)
        if line is None:
            return
        call.line_id, call.centre_id, call.unrouted = line.id, line.centre_id, False
        if call.overflow_centre_id == line.centre_id:  # set while the order was reversed
            call.overflow_centre_id = None
            call.facts = {k: v for k, v in (call.facts or {}).items()
                          if k not in ("overflow_from", "overflow_to", "overflow_at", "overflow_queue")}
        self.overflow(call, CallEvent(Kind.QUEUED, ev.provider, ev.key, later_at, queue=later))

    def overflow(self, call: Call, ev: CallEvent) -> None:
        """The caller left the line's queue for another centre's (the line's overflow): the call stays
        the line's centre's, ``overflow_centre_id`` lets the other centre see it, and a wait that
        ended unanswered in the first queue is not the call's end."""
        target: int | None = None
        if ev.overflow_to is not None:  # the provider's webhook named it (Twilio queues are not lines)
            target = ev.overflow_to if self.session.get(Centre, ev.overflow_to) is not None else None
        else:
            line = self.routing.line_for(ev.provider, dialed=None, queue=ev.queue)
            target = line.centre_id if line is not None else None
        if target is None or target == call.centre_id:
            return
        if call.overflow_centre_id == target:  # known already: keep the earliest time it was seen
            facts = call.facts or {}
            if str(facts.get("overflow_at") or "") > ev.at.isoformat():
                call.facts = {**facts, "overflow_at": ev.at.isoformat()}
            return
        facts = dict(call.facts or {})
        call.overflow_centre_id = target
        facts.update(overflow_from=call.centre_id, overflow_to=target, overflow_at=ev.at.isoformat(),
                     overflow_queue=ev.queue)
        if ev.scope:  # the PBX of the overflow queue (another one when the caller crossed a trunk)
            facts["overflow_source"] = ev.scope
        # The line's queue letting the caller go (its QueueCallerAbandon) is not the call's end.  Over
        # a trunk the two PBXes' events come in any order: the caller's real hangup may be known
        # already, and the two clocks differ, so it is told by the queue, not by the time.
        left_first = call.abandoned and facts.get("abandon_queue") not in (None, ev.queue)
        if left_first or (call.answered_at is None and (call.ended_at is None or call.ended_at <= ev.at)):
            if facts.get("queue_status"):
                facts["overflow_reason"] = facts.pop("queue_status")
            left_at = facts.pop("abandon_at", None)
            for name in ("abandon", "abandon_queue", "wait_reported"):
                facts.pop(name, None)
            if str(facts.get("hangup_request_at") or "") <= ev.at.isoformat():
                facts.pop("hangup_request_at", None)
            if call.ended_at is not None and (call.ended_at <= ev.at or (
                    left_at and call.ended_at <= datetime.fromisoformat(left_at))):
                call.ended_at = None  # the end was the first queue's leaving
            call.abandoned, call.end_reason = False, None
        call.facts = facts
        self.session.execute(update(CallRecord).where(CallRecord.call_id == call.id)
                             .values(overflow_centre_id=target))

    def overflow_link(self, call: Call, ev: CallEvent) -> Call:
        """Another PBX says its caller ``ev.alias_key`` is ``call``, sent over a trunk to the overflow
        centre's queue there (``HOTLINE_ORIGIN``, ``ev.reason`` names the PBX it came from): that
        side's events become the call's, which stays the line's centre's, overflowed to the other.
        Linkedids are unique per PBX only: a call heard from another PBX than the one named is not
        it (two calls stay two)."""
        pbx = (ev.reason or "").partition(":")[2]
        if pbx and call.source and call.source != pbx:
            log.warning("ingest.overflow_origin_elsewhere", extra={"call": call.id, "named": pbx,
                                                                   "source": call.source})
            return call
        if call.id in self.created and call.line_id is None and call.queue is None \
                and (ev.key, ev.alias_key) not in self._deferred_once:
            # the call is being created by an event not applied yet (this link waited for it): its own
            # queue and line first, else the other side's queue would pass for the line's
            self._deferred_once.add((ev.key, ev.alias_key))
            self.deferred.append(ev)
            return call
        other = self.find(ev.provider, ev.alias_key)
        if other is None:
            self.link(call, ev.provider, ev.alias_key or "", "overflow")
            self.unstash(call, ev.provider, ev.alias_key or "")  # what the other side said before this
            return call
        if other.id == call.id:
            return call
        # That side was recorded as a call of its own first (this PBX's events came later): mark the
        # overflow as its queue join would have (the line's queue letting the caller go is not how the
        # call ended), then fold it into this one: how it ended there is how it ended.
        queue, joined, where = other.queue, other.queued_at or other.received_at, other.source
        lists = {name: [*(call.facts or {}).get(name, []), *(other.facts or {}).get(name, [])]
                 for name in ("offers", "offers_missed")}
        if queue:
            self.overflow(call, CallEvent(Kind.QUEUED, ev.provider, ev.key, joined, queue=queue, scope=where or None))
        call = self.merge(call, other, into_first=True)
        facts = dict(call.facts or {})
        facts.pop("wait_reported", None)  # the wait runs from the line's queue to the answer there
        facts.update({name: list(dict.fromkeys(items)) for name, items in lists.items() if items})
        call.facts = facts
        self.session.execute(update(CallRecord).where(CallRecord.call_id == call.id)
                             .values(centre_id=call.centre_id, overflow_centre_id=call.overflow_centre_id))
        _refresh(call)
        return call

    def caller(self, call: Call, raw: str | None, presentation: str | None = None) -> None:
        facts = call.facts or {}
        if presentation or facts.get("presentation"):
            self.withheld(call, raw, presentation)
            return
        if raw is None or call.caller_id_status == "present":
            return
        number = parse_caller(raw)
        if call.caller_raw is not None and number.status.value in {"unavailable"}:
            return
        call.caller_raw = raw[:255]
        call.caller_id_status = number.status.value
        call.caller_number = number.normalized
        call.caller_masked = number.masked
        call.number_hash = self.hashes.hash(number.normalized) if number.normalized else None

    def withheld(self, call: Call, raw: str | None, presentation: str | None) -> None:
        """The caller restricted their number (presentation prohibited / unavailable): nothing
        shown, no number kept, only its hash (the caller history is by hash)."""
        facts = dict(call.facts or {})
        if presentation and facts.get("presentation") != presentation and not facts.get("presentation"):
            facts["presentation"] = presentation
        number = parse_caller(raw) if raw else None
        if number is not None and number.normalized and not call.number_hash:
            call.number_hash = self.hashes.hash(number.normalized)
        if call.caller_number and not call.number_hash:
            call.number_hash = self.hashes.hash(call.caller_number)
        call.caller_raw = None
        call.caller_number = None
        call.caller_masked = ""
        call.caller_id_status = "withheld"
        call.facts = facts

    # ------------------------------------------------------------------ events awaiting a call
    def existing(self, ev: CallEvent) -> Call | None:
        call = self.find(ev.provider, ev.key)
        if call is None and ev.channel and ev.channel != ev.key and ev.kind not in _PART_KINDS:
            call = self.find(ev.provider, ev.channel)
        return call

    def may_create(self, ev: CallEvent) -> bool:
        if ev.creates:
            return True
        if ev.kind is Kind.STARTED and ev.dialed:
            return self.routing.line_for(ev.provider, dialed=ev.dialed, queue=ev.queue) is not None
        return False

    def stash(self, ev: CallEvent) -> None:
        self.pending.setdefault((ev.provider, ev.key), []).append(ev)

    def unstash(self, call: Call, provider: str, key: str) -> None:
        """Apply what arrived about ``key`` before it became a call."""
        waiting = self.pending.pop((provider, key), [])
        if self._stored_pending is None:
            self._stored_pending = self.session.scalar(select(PendingCallEvent.id).limit(1)) is not None
        if self._stored_pending:
            rows = self.session.scalars(select(PendingCallEvent).where(
                PendingCallEvent.provider == provider, PendingCallEvent.key == key).order_by(PendingCallEvent.id)).all()
            for row in rows:
                try:
                    waiting.insert(0, CallEvent.from_json(row.event))
                except (KeyError, TypeError, ValueError):
                    log.warning("ingest.pending_unreadable", extra={"provider": provider, "pending": row.id})
                self.session.delete(row)
        for ev in waiting:
            self.apply(ev)

    def save_pending(self) -> None:
        """Keep what is still waiting for a call; forget what waited long enough (the raw events stay)."""
        for ev in self.deferred:  # a link whose call's own event never came in this batch: the sweep's
            self.stash(ev)
        self.deferred.clear()
        if self.pending:
            for (provider, key), events in self.pending.items():
                for ev in events:
                    self.session.add(PendingCallEvent(provider=provider, key=key[:128], event=ev.to_json()))
            self.pending.clear()
            cutoff = datetime.now(timezone.utc) - PENDING_KEEP
            self.session.execute(delete(PendingCallEvent).where(PendingCallEvent.created_at < cutoff))

    # ------------------------------------------------------------------ parts of a call
    def counsellor_for(self, provider: str, agent: str | None) -> int | None:
        if not agent:
            return None
        found = self.routing.counsellor_for(provider, agent)
        if found is None:
            found = self.agents.get((provider, device_name(agent)))
        if found is None and agent.startswith("Local/"):  # Local/101@from-queue is Local/101@phones' person
            found = self.agents.get((provider, _local_exten(agent)))
        return found

    def part(self, call: Call, ev: CallEvent) -> None:
        leg = (ev.channel or ev.agent or "")[:128]
        parts = self.parts.get(call.id)
        if parts is None:  # once per call and batch; a call made in this batch has none yet
            parts = [] if call.id in self.created else list(
                self.session.scalars(select(CallPart).where(CallPart.call_id == call.id)))
            self.parts[call.id] = parts
        row = next((p for p in parts if p.leg == leg), None)
        if row is None:
            row = CallPart(call_id=call.id, leg=leg, agent=(ev.agent or "")[:255])
            self.session.add(row)
            parts.append(row)
        if ev.agent and not row.agent:
            row.agent = ev.agent[:255]
        row.counsellor_id = row.counsellor_id or self.counsellor_for(ev.provider, row.agent)
        if ev.kind is Kind.PART_STARTED:
            row.started_at = _min(row.started_at, ev.at)
        else:  # the first of the two to leave (or hang up) ends the part
            row.ended_at = _min(row.ended_at, ev.at)
        if row.started_at is not None and row.ended_at is not None:
            row.talk_seconds = _seconds(row.started_at, row.ended_at)
        started = sorted((p for p in parts if p.started_at is not None), key=lambda p: (p.started_at, p.leg))
        if started:
            first = started[0]
            call.answered_at = _min(call.answered_at, first.started_at)
            if (not call.answered_by or (call.facts or {}).get("answered_by_part")) and first.agent:
                # no queue member answered (a direct line, a callback): the first one bridged did
                call.answered_by = first.agent
                call.counsellor_id = first.counsellor_id
                call.facts = {**(call.facts or {}), "answered_by_part": True}
            if first.counsellor_id is not None:
                # the counsellor first bridged with the caller answered, whoever the queue named
                # (a directed pickup: the queue names the member whose phone rang)
                call.facts = {**(call.facts or {}), "first_part": [first.agent, first.counsellor_id]}
                self.settle_answerer(call)
        done = [(p.started_at, p.ended_at) for p in started if p.ended_at is not None]
        if len(parts) > 1 and done:
            facts = dict(call.facts or {})
            call.talk_seconds = _span_seconds(done)  # type: ignore[arg-type]  # parts in `started` have started_at set
            facts["talk_reported"] = True
            facts["talk_from_parts"] = True
            call.facts = facts

    def apply(self, ev: CallEvent) -> None:
        self._depth += 1
        try:
            self._apply_event(ev)
        finally:
            self._depth -= 1
        if self._depth == 0 and self.deferred:  # overflow links that waited for this event (overflow_link)
            waiting, self.deferred = self.deferred, []
            for later in waiting:
                self.apply(later)

    def _apply_event(self, ev: CallEvent) -> None:
        if ev.kind is Kind.SNAPSHOT:
            self.snapshot(ev)
            return
        if self.existing(ev) is None:
            if not self.may_create(ev):
                self.stash(ev)
                return
            call = self.resolve(ev)
            self.unstash(call, ev.provider, ev.key)
            call = self.resolve(ev)  # a pending alias may have merged it into another call
        elif ev.kind in _PART_KINDS:
            call = self.existing(ev)  # type: ignore[assignment]  # not None: checked in the branch above
        else:
            call = self.resolve(ev)
        if call.resync_closed_at is not None and derive_status(call) == "unknown_outcome":
            # the stream speaks of it after a resync closed it: it was alive, the stream wins
            call.resync_closed_at = None
        if ev.kind is Kind.ALIAS:
            if ev.alias_key and (ev.reason or "").startswith(OVERFLOW_FROM):
                call = self.overflow_link(call, ev)
            elif ev.alias_key:
                other = self.find(ev.provider, ev.alias_key)
                if other is not None and other.id != call.id:
                    call = self.merge(call, other)
                else:
                    self.link(call, ev.provider, ev.alias_key, "leg")
            self.touched.add(call.id)
            return
        if ev.scope and not call.source:
            call.source = ev.scope
        call.received_at = _min(call.received_at, ev.at)  # type: ignore[assignment]  # ev.at is set, so is the minimum
        self.caller(call, ev.caller, ev.presentation)
        if ev.callback and not (call.facts or {}).get("callback"):
            call.facts = {**(call.facts or {}), "callback": ev.callback[:64]}
        self.route(call, ev)
        _APPLY[ev.kind](self, call, ev)
        _refresh(call)
        self.touched.add(call.id)

    def report(self, call: Call, *, wait: int | None = None, talk: int | None = None) -> None:
        facts = dict(call.facts or {})
        if wait is not None and not facts.get("overflow_at") and not facts.get("requeued"):  # waited in both queues
            call.queue_wait_seconds = wait
            facts["wait_reported"] = True
        if talk is not None and not facts.get("talk_from_parts"):  # a transfer's parts add up
            call.talk_seconds = talk
            facts["talk_reported"] = True
        call.facts = facts

    def agent(self, call: Call, ev: CallEvent) -> None:
        if ev.agent:
            facts = call.facts or {}
            if facts.get("answered_by_part"):  # the queue's member beats a bridge partner's device
                call.answered_by = None
                call.facts = {k: v for k, v in facts.items() if k != "answered_by_part"}
            call.answered_by = call.answered_by or ev.agent
            mapped = self.counsellor_for(ev.provider, call.answered_by)
            if mapped is not None:
                call.counsellor_id = mapped
            self.settle_answerer(call)

    def settle_answerer(self, call: Call) -> None:
        first = (call.facts or {}).get("first_part")
        if first and first[1] != call.counsellor_id:
            call.answered_by, call.counsellor_id = first[0], first[1]

    def snapshot(self, ev: CallEvent) -> None:
        """A resync, ordered against the stream: open what we never saw, and close only calls
        that were open before the snapshot was asked for, are absent from it, and of which the
        stream said nothing since it was asked for (``ev.spare``): what arrives during or after
        a resync always wins.  Times come from the durations Asterisk reports (Wait, Duration,
        BridgedTime), never from the moment of the resync."""
        live_ids: set[int] = set()
        spare = set(ev.spare)
        for live in ev.live:
            call = self.find(ev.provider, live.key)
            if call is None:
                call = self.create(CallEvent(Kind.STARTED, ev.provider, live.key, live.started_at or ev.at,
                                             scope=ev.scope))
                call.facts = {**(call.facts or {}), "seen_first_at_resync": True}
                self.unstash(call, ev.provider, live.key)
            self.caller(call, live.caller)
            self.route(call, CallEvent(Kind.QUEUED, ev.provider, live.key, ev.at, dialed=live.dialed, queue=live.queue))
            if live.queue and call.queued_at is None:
                call.queued_at = live.queued_at or live.started_at or ev.at
            if live.answered and call.answered_at is None:
                call.answered_at = live.answered_at or ev.at
                call.facts = {**(call.facts or {}), "answered_seen_at_resync": True}
                if live.agent:
                    self.agent(call, CallEvent(Kind.ANSWERED, ev.provider, live.key, ev.at, agent=live.agent))
            _refresh(call)
            live_ids.add(call.id)
            self.touched.add(call.id)
        asked = ev.requested_at or ev.at
        stale = self.session.scalars(
            select(Call).where(
                Call.provider == ev.provider,
                Call.status.in_(OPEN_STATUSES),
                Call.source == (ev.scope or ""),
                Call.received_at <= asked,
            )
        ).all()
        stale = [c for c in stale if c.id not in live_ids]
        if stale and spare:
            heard = set(self.session.scalars(select(CallKey.call_id).where(
                CallKey.call_id.in_([c.id for c in stale]), CallKey.provider == ev.provider, CallKey.key.in_(spare))))
            stale = [c for c in stale if c.id not in heard and c.provider_key not in spare]
        for call in stale:
            call.resync_closed_at = ev.at
            _refresh(call)
            self.touched.add(call.id)
            log.warning("ingest.closed_at_resync", extra={"call": call.id, "status": call.status})


def _started(b: _Batch, call: Call, ev: CallEvent) -> None:
    pass  # received_at, caller and routing are applied for every event


def _queued(b: _Batch, call: Call, ev: CallEvent) -> None:
    call.queued_at = _min(call.queued_at, ev.at)


def _offered(b: _Batch, call: Call, ev: CallEvent) -> None:
    if ev.agent:
        call.offered_to = ev.agent
        offers = list((call.facts or {}).get("offers", []))
        if ev.agent not in offers:
            call.facts = {**(call.facts or {}), "offers": offers + [ev.agent]}


def _offer_missed(b: _Batch, call: Call, ev: CallEvent) -> None:
    if ev.agent:
        missed = list((call.facts or {}).get("offers_missed", []))
        if ev.agent not in missed:
            call.facts = {**(call.facts or {}), "offers_missed": missed + [ev.agent]}


def _answered(b: _Batch, call: Call, ev: CallEvent) -> None:
    call.answered_at = _min(call.answered_at, ev.at)
    b.agent(call, ev)
    b.report(call, wait=ev.wait_seconds)


def _abandoned(b: _Batch, call: Call, ev: CallEvent) -> None:
    facts = call.facts or {}
    if facts.get("overflow_queue") and ev.queue and ev.queue == call.queue != facts["overflow_queue"]:
        return  # the line's queue letting the caller go on to the overflow queue, heard after it (two PBXes)
    if ev.queue:
        call.facts = {**facts, "abandon_queue": ev.queue}
    call.abandoned = True
    call.ended_at = _max(call.ended_at, ev.at)
    b.report(call, wait=ev.wait_seconds)
    if ev.reason in ("caller_hung_up", "left_queue", "queue_log_abandon"):  # AMI QueueCallerAbandon: also a timeout…
        facts = dict(call.facts or {})
        if ev.reason == "queue_log_abandon":  # queue_log's ABANDON: only when the stream said nothing
            facts.setdefault("abandon", ev.reason)
        elif facts.get("abandon") != "caller_hung_up":
            facts["abandon"] = ev.reason
        facts["abandon_at"] = min(filter(None, [facts.get("abandon_at"), ev.at.isoformat()]))
        call.facts = facts
    call.end_reason = call.end_reason or ("abandoned" if caller_gave_up(call) else "queue_left")


def _hangup_requested(b: _Batch, call: Call, ev: CallEvent) -> None:
    facts = dict(call.facts or {})
    facts["hangup_request_at"] = min(filter(None, [facts.get("hangup_request_at"), ev.at.isoformat()]))
    call.facts = facts


def _queue_result(b: _Batch, call: Call, ev: CallEvent) -> None:
    facts = call.facts or {}
    if ev.reason and facts.get("overflow_source") and ev.scope and ev.scope != facts["overflow_source"]:
        # the first PBX's QUEUESTATUS, its caller sent over a trunk to the overflow queue on another PBX
        if not facts.get("overflow_reason"):
            call.facts = {**facts, "overflow_reason": ev.reason}
        return
    if ev.reason and facts.get("overflow_at"):
        # QUEUESTATUS stays on the caller's channel: the first queue's (why it overflowed) comes
        # with the overflow queue's join and every later event; it is not the overflow queue's result.
        if ev.at <= datetime.fromisoformat(facts["overflow_at"]):
            if not facts.get("overflow_reason"):
                call.facts = {**facts, "overflow_reason": ev.reason}
            return
        if ev.reason == facts.get("overflow_reason"):
            return
    if ev.reason and not (call.facts or {}).get("queue_status"):
        call.facts = {**(call.facts or {}), "queue_status": ev.reason}
    if call.queued_at is None and ev.reason in ("JOINEMPTY", "JOINUNAVAIL", "FULL"):
        call.queued_at = ev.at  # it reached the queue, which turned it away at once


def _closed(b: _Batch, call: Call, ev: CallEvent) -> None:
    if not (call.facts or {}).get("out_of_hours"):
        call.facts = {**(call.facts or {}), "out_of_hours": True}
    call.end_reason = "out_of_hours"  # whatever hangup was heard first: the line was closed


def _callback_requested(b: _Batch, call: Call, ev: CallEvent) -> None:
    if not (call.facts or {}).get("callback_requested"):
        call.facts = {**(call.facts or {}), "callback_requested": ev.reason or "out_of_hours"}


def _part(b: _Batch, call: Call, ev: CallEvent) -> None:
    b.part(call, ev)


def _caller(b: _Batch, call: Call, ev: CallEvent) -> None:
    pass  # caller and presentation are applied for every event


def _completed(b: _Batch, call: Call, ev: CallEvent) -> None:
    if ev.talk_seconds is not None and call.answered_at is None:
        call.answered_at = ev.at
    b.agent(call, ev)
    call.ended_at = _max(call.ended_at, ev.at)
    b.report(call, wait=ev.wait_seconds, talk=ev.talk_seconds)
    if ev.reason:
        call.end_reason = ev.reason


def _ended(b: _Batch, call: Call, ev: CallEvent) -> None:
    call.ended_at = _max(call.ended_at, ev.at)
    b.report(call, talk=ev.talk_seconds)
    if ev.reason and not call.end_reason:
        call.end_reason = ev.reason


def _failed(b: _Batch, call: Call, ev: CallEvent) -> None:
    call.failed_reason = call.failed_reason or (ev.reason or "failed")
    call.ended_at = _max(call.ended_at, ev.at)


_APPLY: dict[Kind, Callable[[_Batch, Call, CallEvent], None]] = {
    Kind.STARTED: _started,
    Kind.QUEUED: _queued,
    Kind.OFFERED: _offered,
    Kind.OFFER_MISSED: _offer_missed,
    Kind.ANSWERED: _answered,
    Kind.ABANDONED: _abandoned,
    Kind.COMPLETED: _completed,
    Kind.ENDED: _ended,
    Kind.FAILED: _failed,
    Kind.HANGUP_REQUESTED: _hangup_requested,
    Kind.QUEUE_RESULT: _queue_result,
    Kind.PART_STARTED: _part,
    Kind.PART_ENDED: _part,
    Kind.CALLER: _caller,
    Kind.CLOSED: _closed,
    Kind.CALLBACK_REQUESTED: _callback_requested,
}
_PART_KINDS = frozenset({Kind.PART_STARTED, Kind.PART_ENDED})
PENDING_KEEP = timedelta(hours=6)  # an internal channel's events are forgotten after this (raw events stay)


def _local_exten(identity: str) -> str:
    """``Local/tvv2@pickup-phone-…;2`` and ``Local/tvv2@phones/n`` → ``Local/tvv2``."""
    name = device_name(identity)
    return name.split("@", 1)[0] if name.startswith("Local/") else name


def device_name(identity: str) -> str:
    from hotline.ingest.providers.asterisk.translator import device

    return device(identity)


def _span_seconds(spans: list[tuple[datetime, datetime]]) -> int:
    """From the first part's start to the last part's end: a transfer's parts plus the ringing
    between them (the caller was on the line with the hotline all along); a conference's
    overlapping parts count once."""
    return round((max(b for _, b in spans) - min(a for a, _ in spans)).total_seconds())


# ---------------------------------------------------------------------- public entry points
def store_raw(session: Session, items: Sequence[RawIn]) -> list[RawIn]:
    """Insert raw events, ignoring dedupe keys seen before; return the items that were new."""
    unique: dict[str, RawIn] = {}
    for item in items:
        unique.setdefault(item.dedupe_key, item)
    if not unique:
        return []
    rows = [
        {
            "provider": i.provider, "dedupe_key": i.dedupe_key, "event_type": i.event_type[:64],
            "provider_key": (i.provider_key or None) and i.provider_key[:128], "received_at": i.received_at,
            "payload": i.payload, "payload_bytes": i.payload_bytes,
        }
        for i in unique.values()
    ]
    table = RawEvent.__table__
    if session.get_bind().dialect.name == "postgresql":
        returned = _store_raw_pg(session, rows)
    else:
        # A Core insert on the table, not the ORM entity: the ORM's bulk insert splits a batch
        # into one statement per run of rows with the same non-NULL columns (provider_key and
        # payload_bytes vary from row to row).
        stmt = insert_ignore(session, table).returning(table.c.id, table.c.dedupe_key)
        inserted: Any = session.execute(stmt, rows)  # rows of (id, dedupe_key)
        returned = {key: raw_id for raw_id, key in inserted}
    # In the order given, so events are applied in arrival order.
    new: list[RawIn] = []
    for key, item in unique.items():
        if key in returned:
            item.raw_id = returned[key]
            new.append(item)
    return new


_PG_RAW_INSERT = text(
    "INSERT INTO raw_events (provider, dedupe_key, event_type, provider_key, received_at, payload, payload_bytes) "
    "SELECT * FROM unnest(CAST(:provider AS varchar[]), CAST(:dedupe_key AS varchar[]), "
    "CAST(:event_type AS varchar[]), CAST(:provider_key AS varchar[]), CAST(:received_at AS timestamptz[]), "
    "CAST(:payload AS text[]), CAST(:payload_bytes AS bytea[])) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key"
)


def _store_raw_pg(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """PostgreSQL: one statement with one array per column.  A multi-row VALUES list has seven
    parameters per row, which psycopg re-parses for every batch (~35 ms per 500 events) and the
    ORM bulk insert splits into many statements; ``unnest`` keeps it to seven parameters."""
    columns = ("provider", "dedupe_key", "event_type", "provider_key", "received_at", "payload", "payload_bytes")
    params: dict[str, list[Any]] = {c: [r[c] for r in rows] for c in columns}
    params["received_at"] = [t.astimezone(timezone.utc) for t in params["received_at"]]
    # A plain SQL statement skips the columns' types: encrypt payloads here (see RawEvent).
    ring = crypto.keyring()
    params["payload"] = [ring.encrypt_text(p) if p else p for p in params["payload"]]
    params["payload_bytes"] = [ring.encrypt_bytes(b) if b else b for b in params["payload_bytes"]]
    result: Any = session.execute(_PG_RAW_INSERT, params)  # rows of (id, dedupe_key)
    return {key: raw_id for raw_id, key in result}


def _dead(session: Session, item: RawIn | None, reason: str, payload: str = "") -> None:
    session.add(DeadLetter(
        provider=item.provider if item else "unknown",
        raw_event_id=item.raw_id if item else None,
        payload=(item.payload if item else payload)[:20000],
        reason=reason[:4000],
    ))


def ingest(session: Session, items: Sequence[RawIn], *, settings: Settings | None = None) -> IngestResult:
    """Store and apply a batch inside the caller's transaction (the caller commits)."""
    settings = settings or get_settings()
    result = IngestResult()
    new = store_raw(session, items)
    result.stored = len(new)
    result.duplicates = len({i.dedupe_key for i in items}) - len(new)
    applicable: list[RawIn] = []
    for item in new:
        if item.error:
            _dead(session, item, item.error)
            result.dead += 1
            log.warning("ingest.unparseable", extra={"provider": item.provider, "reason": item.error,
                                                     "event_type": item.event_type})
        elif item.events:
            applicable.append(item)
    if not applicable:
        return result
    batch = _Batch(session, settings)
    try:
        # Fast path: the whole batch in one savepoint (a savepoint per event cost a flush and two
        # round trips each, most of an AMI batch's time).
        with session.begin_nested():
            for item in applicable:
                for ev in item.events:
                    batch.apply(ev)
        result.applied += sum(len(item.events) for item in applicable)
    except Exception:  # noqa: BLE001 - undone; applied again event by event below
        batch.keys.clear()
        batch.missing.clear()
        batch.touched.clear()
        batch.pending.clear()
        batch.parts.clear()
        batch.created.clear()
        batch.deferred.clear()
        for item in applicable:
            for ev in item.events:
                try:
                    with session.begin_nested():
                        batch.apply(ev)
                    result.applied += 1
                except Exception as exc:  # noqa: BLE001 - the event is kept, with the reason
                    batch.keys.clear()
                    batch.missing.clear()
                    batch.parts.clear()
                    reason = f"{type(exc).__name__}: {exc} while applying {ev.kind.value} for {ev.key}"
                    _dead(session, item, reason)
                    result.dead += 1
                    # The log gets the error's type and first line only: a database error's full
                    # text can carry bound parameters such as a caller's number.
                    first = str(exc).splitlines()[0][:200] if str(exc) else ""
                    log.error("ingest.apply_failed", extra={"provider": item.provider, "error": type(exc).__name__,
                                                            "detail": first, "kind": ev.kind.value,
                                                            "dead_letter": True})
    try:
        with session.begin_nested():
            batch.save_pending()
    except Exception as exc:  # noqa: BLE001 - waiting events are a nicety; the raw events are stored
        log.error("ingest.pending_not_saved", extra={"error": type(exc).__name__})
    session.flush()
    result.touched = set(batch.touched)
    result.calls = {c.id: c for c in batch.keys.values() if c.id in result.touched}
    return result


def adopt_waiting(session: Session, *, settings: Settings | None = None, limit: int = 200) -> IngestResult:
    """Apply events still waiting for a key that has become a call (the caller commits).

    A key becomes a call in one transaction, which applies what waited for it; an event about
    that key stored at the same moment by another process waits on.  With several PBXes this
    happens to a trunk overflow: one listener keeps the link to the other PBX's call (an ``ALIAS``
    naming the origin) while the other listener creates that call.  Each listener calls this every
    few seconds; another one doing the same skips the rows it holds (PostgreSQL)."""
    result = IngestResult()
    keys = session.execute(
        select(PendingCallEvent.provider, PendingCallEvent.key)
        .join(CallKey, (CallKey.provider == PendingCallEvent.provider) & (CallKey.key == PendingCallEvent.key)
              & (CallKey.kind == "call"))  # a call's own key: what its creation would have applied
        .order_by(PendingCallEvent.id).limit(limit)
        .with_for_update(skip_locked=True, of=PendingCallEvent)).all()
    if not keys:
        return result
    batch = _Batch(session, settings or get_settings())
    with session.begin_nested():
        for provider, key in dict.fromkeys((p, k) for p, k in keys):
            call = batch.find(provider, key)
            if call is not None:
                batch.unstash(call, provider, key)
                batch.touched.add(call.id)
        batch.save_pending()
    session.flush()
    result.applied = len(keys)
    result.touched = set(batch.touched)
    result.calls = {c.id: c for c in batch.keys.values() if c.id in result.touched}
    log.info("ingest.adopted_waiting", extra={"events": len(keys), "calls": len(result.touched)})
    return result


def publish_updates(session: Session, call_ids: set[int], calls: dict[int, Call] | None = None) -> None:
    """Tell live screens what changed (after the commit)."""
    if not call_ids:
        return
    from hotline import bus
    from hotline.live import service as live

    # From the session (objects are not expired on commit): no second read of what was just written.
    known = calls or {}
    changed = [call for cid in sorted(call_ids) if (call := known.get(cid) or session.get(Call, cid)) is not None]
    for call in changed:
        summary = call_summary(call)
        bus.publish(f"centre:{call.centre_id}", {"type": "call", "call": summary})
        if call.overflow_centre_id is not None and call.overflow_centre_id != call.centre_id:
            bus.publish(f"centre:{call.overflow_centre_id}", {"type": "call", "call": summary})
    # Presence follows the counsellors' calls (busy, wrap-up): owned by the live screen.
    rows = live.follow_calls(session, changed)
    if rows:
        session.commit()
        for row in rows:
            live.announce_presence(session, row=row, reason=row.state)


def call_summary(call: Call) -> dict[str, Any]:
    """What may travel to a screen: never the full number."""
    return {
        "id": call.id, "status": call.status, "provider": call.provider, "centre_id": call.centre_id,
        "line_id": call.line_id, "queue": call.queue, "caller_masked": call.caller_masked,
        "caller_id_status": call.caller_id_status, "offered_to": call.offered_to,
        "answered_by": call.answered_by, "counsellor_id": call.counsellor_id,
        "received_at": call.received_at.isoformat() if call.received_at else None,
        "queued_at": call.queued_at.isoformat() if call.queued_at else None,
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "queue_wait_seconds": call.queue_wait_seconds, "talk_seconds": call.talk_seconds,
        "unrouted": call.unrouted, "overflow_centre_id": call.overflow_centre_id,
    }


def ingest_and_commit(items: Sequence[RawIn], *, publish: bool = True) -> IngestResult:
    """Open a session, ingest, commit, publish. Raises on database outage (caller spools)."""
    from hotline.db import session_scope

    with session_scope() as session:
        result = ingest(session, items)
        session.flush()
        if publish:
            session.commit()
            publish_updates(session, result.touched, result.calls)
    return result


__all__ = ["IngestResult", "LiveCall", "adopt_waiting", "derive_status", "ingest", "ingest_and_commit", "publish_updates",
           "store_raw", "call_summary"]
