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
