"""The one normalised call event every telephony adapter produces.

An adapter turns a provider's event (an AMI frame, a Twilio webhook) into a ``RawIn``: the
raw payload with its dedupe key, plus zero or more ``CallEvent``s.  The ingestor stores the
raw payload append-only and applies the call events.  Events carry *facts* (it was queued at,
it was answered by, it ended at); the call's status is derived from the facts, so duplicates
and reordering cannot corrupt a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Kind(StrEnum):
    STARTED = "started"  # the call reached the PBX / Twilio
    QUEUED = "queued"  # joined a hotline queue
    OFFERED = "offered"  # a counsellor's phone is ringing
    OFFER_MISSED = "offer_missed"  # that counsellor did not pick up
    ANSWERED = "answered"  # a counsellor is talking to the caller
    ABANDONED = "abandoned"  # the caller hung up while waiting
    COMPLETED = "completed"  # the counsellor's part ended normally
    ENDED = "ended"  # the caller's channel is gone
    FAILED = "failed"  # busy / failed / no-answer at the provider
    ALIAS = "alias"  # ``alias_key`` names the same call as ``key`` (re-stamped Linkedid, child leg)
    SNAPSHOT = "snapshot"  # resync: ``live`` lists every call the provider still has
    HANGUP_REQUESTED = "hangup_requested"  # the caller asked to hang up (AMI HangupRequest)
    QUEUE_RESULT = "queue_result"  # why the caller left the queue unanswered (``reason``: QUEUESTATUS)
    PART_STARTED = "part_started"  # the caller is now talking with ``agent`` on leg ``channel``
    PART_ENDED = "part_ended"  # that leg left the caller
    CALLER = "caller"  # caller ID (and its presentation) changed
    CLOSED = "closed"  # the line was closed (out of hours): the caller heard the closed message
    CALLBACK_REQUESTED = "callback_requested"  # the caller pressed the key asking for a callback (``reason``)


# An ALIAS event whose reason starts with this names, after it, the PBX the call came from over a
# trunk (``HOTLINE_ORIGIN``): the alias is the same caller in the overflow centre's queue on another PBX.
OVERFLOW_FROM = "overflow_from:"

# What makes a call a hotline call: reaching a queue (or its outcome), a counsellor, a hotline
# line.  Other events about an unknown key wait in ``pending_call_events`` and never create one.
CREATING = frozenset({"queued", "offered", "offer_missed", "answered", "abandoned", "completed",
                      "queue_result", "failed", "closed", "callback_requested"})


@dataclass(slots=True)
class LiveCall:
    """One call the provider still has, from a resync snapshot."""

    key: str
    caller: str | None = None
    dialed: str | None = None
    queue: str | None = None
    answered: bool = False
    started_at: datetime | None = None
    agent: str | None = None
    queued_at: datetime | None = None  # from the queue entry's ``Wait``
    answered_at: datetime | None = None  # from ``BridgedTime`` (or the counsellor channel's age)


@dataclass(slots=True)
class CallEvent:
    kind: Kind
    provider: str
    key: str  # AMI Linkedid / Twilio CallSid of the call
    at: datetime
    channel: str | None = None  # AMI Uniqueid / Twilio child CallSid
    caller: str | None = None
    dialed: str | None = None  # DID / Twilio "To"
    queue: str | None = None
    agent: str | None = None  # queue member interface / Twilio client identity
    wait_seconds: int | None = None
    talk_seconds: int | None = None
    reason: str | None = None
    alias_key: str | None = None
    live: list[LiveCall] = field(default_factory=list)
    scope: str | None = None  # snapshot scope: which open calls it speaks for (e.g. AMI host)
    presentation: str | None = None  # "withheld" / "unavailable" when the caller restricted the number
    callback: str | None = None  # set when hotline itself placed the call (a callback)
    creates: bool = True  # False: an unknown key does not become a call from this event alone
    spare: list[str] = field(default_factory=list)  # snapshot: keys heard after it was asked for
    requested_at: datetime | None = None  # snapshot: when it was asked for
    overflow_to: int | None = None  # QUEUED: the centre whose queue the caller overflowed to (when known)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in ("kind", "provider", "key", "channel", "caller", "dialed", "queue", "agent", "wait_seconds",
                     "talk_seconds", "reason", "alias_key", "scope", "presentation", "callback", "creates",
                     "overflow_to"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.value if isinstance(value, Kind) else value
        out["at"] = self.at.isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, object]) -> CallEvent:
        values = dict(data)
        values["kind"] = Kind(str(values["kind"]))
        values["at"] = datetime.fromisoformat(str(values["at"]))
        return cls(**values)  # type: ignore[arg-type]  # values come from to_json() of this class, field for field


@dataclass(slots=True)
class RawIn:
    """A provider event as it arrived, with what the adapter made of it."""

    provider: str
    dedupe_key: str
    received_at: datetime
    payload: str
    event_type: str = ""
    provider_key: str | None = None
    payload_bytes: bytes | None = None
    events: list[CallEvent] = field(default_factory=list)
    error: str | None = None  # set by the adapter when it could not understand the event
    raw_id: int | None = None  # set by the ingestor once stored
