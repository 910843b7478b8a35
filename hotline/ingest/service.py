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
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from hotline.calls.models import OPEN_STATUSES, Call, CallKey, CallRecord, DeadLetter, RawEvent
from hotline.centres.service import ingest_routing
from hotline.db import insert_ignore
from hotline.ingest.events import CallEvent, Kind, LiveCall, RawIn
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


def derive_status(call: Call) -> str:
    """The call's status from its facts; the same facts give the same status in any order."""
    really_ended = call.ended_at is not None
    if call.abandoned and call.answered_at is None:
        return "abandoned"
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
        self.touched: set[int] = set()

    # ------------------------------------------------------------------ lookup
    def find(self, provider: str, key: str | None) -> Call | None:
        if not key:
            return None
        hit = self.keys.get((provider, key))
        if hit is not None:
            return hit
        call = self.session.scalar(
            select(Call).join(CallKey, CallKey.call_id == Call.id).where(
                CallKey.provider == provider, CallKey.key == key
            )
        )
        if call is not None:
            self.keys[(provider, key)] = call
        return call

    def link(self, call: Call, provider: str, key: str, kind: str) -> None:
        if (provider, key) in self.keys and self.keys[(provider, key)] is call:
            return
        existing = self.session.scalar(select(CallKey).where(CallKey.provider == provider, CallKey.key == key))
        if existing is None:
            self.session.add(CallKey(provider=provider, key=key, kind=kind, call=call))
        elif existing.call_id != call.id:
            existing.call_id = call.id
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
    def merge(self, a: Call, b: Call) -> Call:
        """Fold the newer call into the older one; every fact survives, nothing counts twice."""
        keep, gone = (a, b) if (a.received_at, a.id) <= (b.received_at, b.id) else (b, a)
        keep.received_at = _min(keep.received_at, gone.received_at)  # type: ignore[assignment]
        keep.queued_at = _min(keep.queued_at, gone.queued_at)
        keep.answered_at = _min(keep.answered_at, gone.answered_at)
        keep.ended_at = _max(keep.ended_at, gone.ended_at)
        keep.resync_closed_at = _max(keep.resync_closed_at, gone.resync_closed_at)
        keep.abandoned = keep.abandoned or gone.abandoned
        keep.failed_reason = keep.failed_reason or gone.failed_reason
        for attr in ("line_id", "dialed", "queue", "caller_raw", "caller_number", "number_hash",
                     "offered_to", "answered_by", "counsellor_id", "end_reason"):
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
        if ev.dialed and not call.dialed:
            call.dialed = ev.dialed
        if ev.queue and not call.queue:
            call.queue = ev.queue
        if call.line_id is None:
            line = self.routing.line_for(ev.provider, dialed=ev.dialed or call.dialed, queue=ev.queue or call.queue)
            if line is not None:
                call.line_id, call.centre_id, call.unrouted = line.id, line.centre_id, False

    def caller(self, call: Call, raw: str | None) -> None:
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

    def apply(self, ev: CallEvent) -> None:
        if ev.kind is Kind.SNAPSHOT:
            self.snapshot(ev)
            return
        call = self.resolve(ev)
        if ev.kind is Kind.ALIAS:
            if ev.alias_key:
                other = self.find(ev.provider, ev.alias_key)
                if other is not None and other.id != call.id:
                    call = self.merge(call, other)
                else:
                    self.link(call, ev.provider, ev.alias_key, "leg")
            self.touched.add(call.id)
            return
        if ev.scope and not call.source:
            call.source = ev.scope
        call.received_at = _min(call.received_at, ev.at)  # type: ignore[assignment]
        self.caller(call, ev.caller)
        self.route(call, ev)
        _APPLY[ev.kind](self, call, ev)
        _refresh(call)
        self.touched.add(call.id)

    def report(self, call: Call, *, wait: int | None = None, talk: int | None = None) -> None:
        facts = dict(call.facts or {})
        if wait is not None:
            call.queue_wait_seconds = wait
            facts["wait_reported"] = True
        if talk is not None:
            call.talk_seconds = talk
            facts["talk_reported"] = True
        call.facts = facts

    def agent(self, call: Call, ev: CallEvent) -> None:
        if ev.agent:
            call.answered_by = call.answered_by or ev.agent
            mapped = self.routing.counsellor_for(ev.provider, call.answered_by)
            if mapped is not None:
                call.counsellor_id = mapped

    def snapshot(self, ev: CallEvent) -> None:
        """A resync: close what the provider no longer has, open what we never saw."""
        live_ids: set[int] = set()
        for live in ev.live:
            call = self.find(ev.provider, live.key)
            if call is None:
                call = self.create(CallEvent(Kind.STARTED, ev.provider, live.key, live.started_at or ev.at,
                                             scope=ev.scope))
                call.facts = {**(call.facts or {}), "seen_first_at_resync": True}
            self.caller(call, live.caller)
            self.route(call, CallEvent(Kind.QUEUED, ev.provider, live.key, ev.at, dialed=live.dialed, queue=live.queue))
            if live.queue and call.queued_at is None:
                call.queued_at = live.started_at or ev.at
            if live.answered and call.answered_at is None:
                call.answered_at = ev.at
                call.facts = {**(call.facts or {}), "answered_seen_at_resync": True}
                if live.agent:
                    self.agent(call, CallEvent(Kind.ANSWERED, ev.provider, live.key, ev.at, agent=live.agent))
            _refresh(call)
            live_ids.add(call.id)
            self.touched.add(call.id)
        stale = self.session.scalars(
            select(Call).where(
                Call.provider == ev.provider,
                Call.status.in_(OPEN_STATUSES),
                Call.source == (ev.scope or ""),
                Call.received_at <= ev.at,
            )
        ).all()
        for call in stale:
            if call.id in live_ids:
                continue
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
    call.abandoned = True
    call.ended_at = _max(call.ended_at, ev.at)
    b.report(call, wait=ev.wait_seconds)
    call.end_reason = call.end_reason or "abandoned"


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
}


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
        batch.touched.clear()
        for item in applicable:
            for ev in item.events:
                try:
                    with session.begin_nested():
                        batch.apply(ev)
                    result.applied += 1
                except Exception as exc:  # noqa: BLE001 - the event is kept, with the reason
                    batch.keys.clear()
                    reason = f"{type(exc).__name__}: {exc} while applying {ev.kind.value} for {ev.key}"
                    _dead(session, item, reason)
                    result.dead += 1
                    # The log gets the error's type and first line only: a database error's full
                    # text can carry bound parameters such as a caller's number.
                    first = str(exc).splitlines()[0][:200] if str(exc) else ""
                    log.error("ingest.apply_failed", extra={"provider": item.provider, "error": type(exc).__name__,
                                                            "detail": first, "kind": ev.kind.value,
                                                            "dead_letter": True})
    session.flush()
    result.touched = set(batch.touched)
    result.calls = {c.id: c for c in batch.keys.values() if c.id in result.touched}
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
        bus.publish(f"centre:{call.centre_id}", {"type": "call", "call": call_summary(call)})
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
        "unrouted": call.unrouted,
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


__all__ = ["IngestResult", "LiveCall", "derive_status", "ingest", "ingest_and_commit", "publish_updates",
           "store_raw", "call_summary"]
