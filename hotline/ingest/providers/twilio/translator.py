"""Translate Twilio voice webhooks into the one normalised call event (``hotline.ingest.events``).

Each webhook kind has a table from the value Twilio reports (``CallStatus``, ``QueueResult``,
``DialCallStatus``) to the call events it means.  Events carry facts only; the ingestor derives
the call's status from them, so Twilio's retries and out-of-order delivery are harmless.

How the webhooks map (``key`` is the caller's ``CallSid``):

- ``voice`` (the incoming call; we answer with ``<Enqueue>``): STARTED and QUEUED.
- ``status`` on the caller's call: queued / initiated / ringing / in-progress → STARTED (in-progress
  only means Twilio answered with TwiML, not that a counsellor did); completed → ENDED at
  ``Timestamp`` (and STARTED at ``Timestamp − CallDuration``: ``CallDuration`` covers greeting and
  queue too, so it is not talk time; talk time comes from the answer and end times);
  busy / failed / no-answer / canceled → FAILED with that reason.
- ``status`` on a child leg (it has ``ParentCallSid``: a ``<Dial>`` to a counsellor's phone or
  client): key = ``ParentCallSid``, channel = ``CallSid``; ringing → OFFERED, in-progress → ANSWERED,
  completed → COMPLETED with talk = ``CallDuration``, busy / no-answer / failed / canceled →
  OFFER_MISSED, each with the dialled counsellor (``To``) as the agent.
- ``enqueue-action`` (``QueueResult``, ``QueueTime``): bridged → ANSWERED with wait = ``QueueTime``
  (Twilio calls this only after both parties hung up, so the dequeue callback's time wins);
  hangup → ABANDONED with wait; leave and the retryable failures (queue-full, error, system-error)
  → QUEUED again while retries remain; after them FAILED with the reason, except leave (a time
  limit: nothing, the call ends missed); redirected → nothing (missed unless a dialled leg answers).
- ``dequeue`` (the ``url`` of the counsellor's ``<Dial><Queue>``; ``CallSid`` is the caller,
  ``DequeingCallSid`` the counsellor's call, ``agent`` the client identity we put in the url) →
  ANSWERED by that identity with wait = ``QueueTime``; the counsellor's call is linked as a
  channel of the caller's call.
- ``dial-action`` (``DialCallStatus``, ``DialCallDuration``) on the caller's call (a ``<Dial>`` to a
  counsellor's phone): answered / completed → ANSWERED at ``now − DialCallDuration`` and COMPLETED
  with talk = ``DialCallDuration``; other results leave the call to its own callbacks.  On the
  counsellor's client leg (``<Dial><Queue>``) it is stored raw only: the dequeue callback and the
  caller's own callbacks already carry its facts (talk = end − answer).
- ``agent`` (the counsellor's call asking for TwiML: a Twilio Client, or a phone calling the
  counsellors' number): stored raw, no call event; the dequeue URL names the counsellor.

A request about a counsellor's own call (``From`` = ``client:…``, or ``?leg=agent`` on our URL: the
dial action we give counsellors, and the status callback of the counsellors' number) never
creates a call.

A call hotline placed itself (a callback, ``hotline.pbx.twilio``: the counsellor's phone first,
then ``<Dial>`` the number) carries ``?callback=<ref>`` on its status and dial-action URLs
(``webhooks.twilio.outbound``); key = that call's ``CallSid``, the caller = the number called
(``Request.callee``, from the pbx command), every event carries the ref (``facts["callback"]``):
``status`` queued / initiated / ringing / in-progress → STARTED (creating the call), completed →
ENDED, busy / no-answer / failed / canceled (the counsellor's phone) → FAILED; ``dial-action``
answered / completed → ANSWERED by the counsellor (``To``) and COMPLETED with talk =
``DialCallDuration``, any other result (the person did not answer) → FAILED with it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.phone import CallerIdStatus, parse_caller

PROVIDER = "twilio"
CLIENT_PREFIX = "client:"
QUEUE_RETRIES = 2  # re-enqueue a caller this many times after a queue failure before giving up

# What Twilio sends in ``From`` when the caller withheld their number; translated to words the
# phone module classifies as withheld, so two withheld callers never look like one caller.
WITHHELD_FROM: dict[str, str] = {
    "+266696687": "anonymous",
    "+7378742833": "restricted",
    "+8656696": "unknown",
    "+2562533": "blocked",
}


class Hook(StrEnum):
    VOICE = "voice"
    STATUS = "status"
    ENQUEUE_ACTION = "enqueue-action"
    DEQUEUE = "dequeue"
    DIAL_ACTION = "dial-action"
    AGENT = "agent"
    WAIT = "wait"
    CLOSED_KEY = "closed-key"
    OUTBOUND = "outbound"  # a call hotline placed asks for its TwiML (the counsellor answered)


REQUIRED: dict[Hook, tuple[str, ...]] = {
    Hook.VOICE: ("CallSid",),
    Hook.STATUS: ("CallSid", "CallStatus"),
    Hook.ENQUEUE_ACTION: ("CallSid", "QueueResult"),
    Hook.DEQUEUE: ("CallSid", "DequeingCallSid"),
    Hook.DIAL_ACTION: ("CallSid", "DialCallStatus"),
    Hook.AGENT: ("CallSid", "From"),
    Hook.WAIT: (),
    Hook.CLOSED_KEY: ("CallSid",),
    Hook.OUTBOUND: ("CallSid",),
}


class QueueOutcome(StrEnum):
    """What the caller's call does after it left the queue (the views turn it into TwiML)."""

    DONE = "done"  # answered and over, or the caller hung up: nothing more to play
    RETRY = "retry"  # put the caller back in the queue
    GIVE_UP = "give_up"  # retries exhausted: apologise and say where else to call
    NONE = "none"  # Twilio ignores our answer (the call was redirected elsewhere)


@dataclass
class Request:
    """One webhook request as it arrived, after its signature was checked."""

    hook: Hook
    params: dict[str, str]  # form fields (the last value of a repeated field)
    received_at: datetime
    body: bytes = b""
    path: str = ""  # path and query as requested, kept with the raw payload
    idempotency_token: str | None = None
    query: dict[str, str] = field(default_factory=dict)  # our own url parameters (agent, queue, attempt)
    assigned_queue: str | None = None  # the queue the voice webhook put the caller in
    closed: bool = False  # the voice webhook found the line closed (out of hours): no queue
    problems: list[str] = field(default_factory=list)  # values left out, each a dead letter (see translate_all)
    callee: str | None = None  # a call hotline placed: the number it called (never from the request)

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value not in (None, "") else None


class BadWebhook(ValueError):
    """The request cannot be applied; the message says what was wrong and what to do."""


# ---------------------------------------------------------------------- small parsers
# Signed values are still only what the sender wrote: a value out of these bounds is left out of
# the call (which keeps every other fact) and reported as a dead letter with the reason.
MAX_SECONDS = 86_400  # Twilio ends every call within 24 h (the largest timeLimit)
MAX_TIMESTAMP_SKEW = timedelta(days=366)  # a callback's Timestamp this far from its arrival is not believed
TEXT_LIMITS = {"key": 128, "channel": 128, "dialed": 128, "queue": 128, "agent": 255, "caller": 255, "reason": 64}


def _number(value: str | None) -> int | None:
    """A finite number written in ``value`` (``90``, ``90.0``, ``9e1``), truncated; else None."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or abs(number) > 1e15:
        return None
    return int(number)


def to_int(value: str | None) -> int | None:
    """Our own URL parameters and the hold-music values: a non-negative number or None, never an error."""
    number = _number(value)
    return None if number is None else min(max(0, number), 1_000_000)


def _seconds(req: Request, name: str) -> int | None:
    """A duration Twilio reports (``CallDuration``, ``QueueTime``, ``DialCallDuration``), in seconds."""
    value = req.get(name)
    if value is None:
        return None
    number = _number(value)
    if number is None or not 0 <= number <= MAX_SECONDS:
        req.problems.append(f"{name}={value[:40]!r} is not a number of seconds from 0 to {MAX_SECONDS}; "
                            "the call is recorded without it")
        return None
    return number


def _timestamp(req: Request, fallback: datetime) -> datetime:
    """Twilio's ``Timestamp`` is RFC 2822 (``Mon, 23 Nov 2026 11:00:00 +0000``)."""
    value = req.get("Timestamp")
    if not value:
        return fallback
    try:
        at = parsedate_to_datetime(value)
        # converting to UTC can leave datetime's range (``31 Dec 9999 23:59:59 -2359``)
        at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    except (TypeError, ValueError, IndexError, OverflowError):
        at = None
    if at is not None and abs(at - fallback) <= MAX_TIMESTAMP_SKEW:
        return at
    req.problems.append(f"Timestamp={value[:60]!r} is not an RFC 2822 date within a year of its arrival; "
                        "the time of arrival is used instead")
    return fallback


def _is_client(value: str | None) -> bool:
    return value is not None and value.lower().startswith(CLIENT_PREFIX)


def caller_of(req: Request) -> str | None:
    raw = req.params.get("From", req.params.get("Caller"))
    if raw is None or _is_client(raw):
        return None
    return WITHHELD_FROM.get(raw.strip(), raw)


def dialed_of(req: Request) -> str | None:
    value = req.get("To") or req.get("Called")
    return None if _is_client(value) else value


AGENT_LEG = "agent"  # ``?leg=agent`` on our URLs: a request about the counsellor's own call


def agent_identity(req: Request) -> str | None:
    """The counsellor a request speaks for: the ``agent`` we put in our own URL (a client identity
    or the phone number a counsellor called in from), else the client identity calling."""
    if req.query.get("agent"):
        return req.query["agent"]
    for value in (req.get("From"), req.get("Caller")):
        if _is_client(value):
            return value
    return None


def counsellor_calling(req: Request) -> str | None:
    """Who asks for the counsellors' TwiML (``/agent``): a Twilio Client identity, or the E.164
    number of a counsellor who called the counsellors' number from a phone (None if withheld)."""
    identity = agent_identity(req)
    if identity:
        return identity
    number = parse_caller(req.get("From"))
    return number.normalized if number.status is CallerIdStatus.PRESENT else None


def _counsellors_own_leg(req: Request) -> bool:
    return req.query.get("leg") == AGENT_LEG or _is_client(req.get("From"))


def queue_outcome(result: str, attempt: int) -> QueueOutcome:
    outcome, _kind = _QUEUE_RESULTS[result]
    if outcome is QueueOutcome.RETRY and attempt >= QUEUE_RETRIES:
        return QueueOutcome.GIVE_UP
    return outcome


# ---------------------------------------------------------------------- event builders
def _ev(kind: Kind, req: Request, key: str, at: datetime, **kw: Any) -> CallEvent:
    if len(key) > TEXT_LIMITS["key"]:
        raise BadWebhook(f"CallSid of {len(key)} characters (Twilio's have 34); the request is kept as a dead letter")
    for name, value in list(kw.items()):
        limit = TEXT_LIMITS.get(name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            problem = f"{name} value of {len(value)} characters is longer than {limit}; the call is recorded without it"
            if problem not in req.problems:
                req.problems.append(problem)
            kw[name] = None
    return CallEvent(kind=kind, provider=PROVIDER, key=key, at=at, **kw)


def _voice(req: Request) -> list[CallEvent]:
    key, at = req.params["CallSid"], req.received_at
    common = {"caller": caller_of(req), "dialed": dialed_of(req)}
    if req.closed:
        return [_ev(Kind.STARTED, req, key, at, **common), _ev(Kind.CLOSED, req, key, at, **common)]
    return [_ev(Kind.STARTED, req, key, at, **common),
            _ev(Kind.QUEUED, req, key, at, queue=req.assigned_queue, **common)]


def _parent_started(req: Request, key: str, at: datetime) -> list[CallEvent]:
    return [_ev(Kind.STARTED, req, key, at, caller=caller_of(req), dialed=dialed_of(req))]


def _parent_completed(req: Request, key: str, at: datetime) -> list[CallEvent]:
    common = {"caller": caller_of(req), "dialed": dialed_of(req)}
    events = []
    duration = _seconds(req, "CallDuration")
    if duration is not None:
        events.append(_ev(Kind.STARTED, req, key, at - timedelta(seconds=duration), **common))
    events.append(_ev(Kind.ENDED, req, key, at, reason="completed", **common))
    return events


def _parent_failed(req: Request, key: str, at: datetime) -> list[CallEvent]:
    return [_ev(Kind.FAILED, req, key, at, reason=req.params["CallStatus"], caller=caller_of(req),
                dialed=dialed_of(req))]


def _child(kind: Kind, talk: bool = False) -> Callable[[Request, str, datetime], list[CallEvent]]:
    def build(req: Request, key: str, at: datetime) -> list[CallEvent]:
        return [_ev(kind, req, key, at, channel=req.params["CallSid"], agent=req.get("To"),
                    talk_seconds=_seconds(req, "CallDuration") if talk else None,
                    reason=req.params["CallStatus"] if kind is Kind.OFFER_MISSED else None)]
    return build


_Builder = Callable[[Request, str, datetime], list[CallEvent]]

PARENT_STATUS: dict[str, _Builder] = {
    "queued": _parent_started,
    "initiated": _parent_started,
    "ringing": _parent_started,
    "in-progress": _parent_started,  # Twilio answered with our TwiML; no counsellor yet
    "completed": _parent_completed,
    "busy": _parent_failed,
    "failed": _parent_failed,
    "no-answer": _parent_failed,
    "canceled": _parent_failed,
}

CHILD_STATUS: dict[str, _Builder] = {
    "queued": _child(Kind.OFFERED),
    "initiated": _child(Kind.OFFERED),
    "ringing": _child(Kind.OFFERED),
    "in-progress": _child(Kind.ANSWERED),
    "answered": _child(Kind.ANSWERED),
    "completed": _child(Kind.COMPLETED, talk=True),
    "busy": _child(Kind.OFFER_MISSED),
    "no-answer": _child(Kind.OFFER_MISSED),
    "failed": _child(Kind.OFFER_MISSED),
    "canceled": _child(Kind.OFFER_MISSED),
}


def _status(req: Request) -> list[CallEvent]:
    status = req.params["CallStatus"].strip().lower()
    at = _timestamp(req, req.received_at)
    parent = req.get("ParentCallSid")
    table = CHILD_STATUS if parent else PARENT_STATUS
    if status not in table:
        raise BadWebhook(f"unknown CallStatus {status!r} (known: {', '.join(table)}); the request is kept "
                         "as a dead letter, update the Twilio translator if Twilio added a status")
    if not parent and _counsellors_own_leg(req):
        return []  # the counsellor's own client leg: not a hotline call
    return table[status](req, parent or req.params["CallSid"], at)


# QueueResult → (what the caller's call does next, the call event it means)
_QUEUE_RESULTS: dict[str, tuple[QueueOutcome, Kind | None]] = {
    "bridged": (QueueOutcome.DONE, Kind.ANSWERED),
    "bridging-in-progress": (QueueOutcome.DONE, Kind.ANSWERED),
    "redirected-from-bridged": (QueueOutcome.NONE, Kind.ANSWERED),
    "hangup": (QueueOutcome.DONE, Kind.ABANDONED),
    "leave": (QueueOutcome.RETRY, Kind.QUEUED),
    "redirected": (QueueOutcome.NONE, None),
    "queue-full": (QueueOutcome.RETRY, Kind.QUEUED),
    "error": (QueueOutcome.RETRY, Kind.QUEUED),
    "system-error": (QueueOutcome.RETRY, Kind.QUEUED),
}


def _enqueue_action(req: Request) -> list[CallEvent]:
    result = req.params["QueueResult"].strip().lower()
    if result not in _QUEUE_RESULTS:
        raise BadWebhook(f"unknown QueueResult {result!r} (known: {', '.join(_QUEUE_RESULTS)}); the request "
                         "is kept as a dead letter, update the Twilio translator if Twilio added a result")
    _outcome, kind = _QUEUE_RESULTS[result]
    if queue_outcome(result, to_int(req.query.get("attempt")) or 0) is QueueOutcome.GIVE_UP:
        # ``leave`` is the queue's time limit (a wait URL's ``<Leave>``): nobody answered, so the
        # call ends as missed; the other results are Twilio failing to queue the caller.
        kind = None if result == "leave" else Kind.FAILED
    if kind is None:
        return []
    overflow = req.query.get("overflow")
    if result == "leave" and overflow:  # the wait URL's <Leave/>: on to the overflow centre's queue
        centre = to_int(req.query.get("overflow_centre"))
        return [_ev(Kind.QUEUED, req, req.params["CallSid"], req.received_at, queue=overflow,
                    overflow_to=centre if centre and centre > 0 else None, reason=result,
                    caller=caller_of(req), dialed=dialed_of(req))]
    wait = _seconds(req, "QueueTime")
    return [_ev(kind, req, req.params["CallSid"], req.received_at, queue=req.query.get("queue"),
                wait_seconds=wait if kind in (Kind.ANSWERED, Kind.ABANDONED) else None,
                reason=result, caller=caller_of(req), dialed=dialed_of(req))]


def _dequeue(req: Request) -> list[CallEvent]:
    return [_ev(Kind.ANSWERED, req, req.params["CallSid"], req.received_at,
                channel=req.params["DequeingCallSid"], agent=agent_identity(req),
                wait_seconds=_seconds(req, "QueueTime"), queue=req.query.get("queue"),
                caller=caller_of(req), dialed=dialed_of(req))]


_DIAL_ANSWERED = {"answered", "completed"}
_DIAL_NOT_ANSWERED = {"busy", "no-answer", "failed", "canceled"}


def _dial_action(req: Request) -> list[CallEvent]:
    status = req.params["DialCallStatus"].strip().lower()
    if status not in _DIAL_ANSWERED | _DIAL_NOT_ANSWERED:
        known = ", ".join(sorted(_DIAL_ANSWERED | _DIAL_NOT_ANSWERED))
        raise BadWebhook(f"unknown DialCallStatus {status!r} (known: {known}); the request is kept as a "
                         "dead letter, update the Twilio translator if Twilio added a status")
    if status in _DIAL_NOT_ANSWERED or _counsellors_own_leg(req):
        # Not answered: the caller's own callbacks say how the call ends.  The counsellor's client
        # leg: the dequeue callback and the caller's callbacks already said everything, and keyed on
        # the counsellor's CallSid it would open a second call if it overtook a delayed dequeue.
        return []
    key, end = req.params["CallSid"], req.received_at
    talk = _seconds(req, "DialCallDuration")
    kw = {"channel": req.get("DialCallSid"), "agent": agent_identity(req)}
    events = []
    if talk is not None:
        events.append(_ev(Kind.ANSWERED, req, key, end - timedelta(seconds=talk), **kw))
    events.append(_ev(Kind.COMPLETED, req, key, end, talk_seconds=talk, **kw))
    return events


def _no_events(req: Request) -> list[CallEvent]:
    return []


def _closed_key(req: Request) -> list[CallEvent]:
    """The out-of-hours caller's key press (the closed message's ``<Gather>``): a callback request."""
    if not req.get("Digits"):
        return []
    return [_ev(Kind.CALLBACK_REQUESTED, req, req.params["CallSid"], req.received_at, reason="out_of_hours",
                caller=caller_of(req), dialed=dialed_of(req))]


_PLACED_OPEN = {"queued", "initiated", "ringing", "in-progress", "answered"}
_PLACED_FAILED = {"busy", "no-answer", "failed", "canceled"}


def _placed(req: Request) -> list[CallEvent]:
    """A call hotline placed (``?callback=<ref>`` on our own URLs): see the module's docstring."""
    ref = req.query["callback"][:64]
    key, at = req.params["CallSid"], _timestamp(req, req.received_at)
    common: dict[str, Any] = {"caller": req.callee, "dialed": req.get("From"), "callback": ref}
    if req.hook is Hook.DIAL_ACTION:
        status = req.params["DialCallStatus"].strip().lower()
        if status in _DIAL_ANSWERED:
            talk = _seconds(req, "DialCallDuration")
            kw = {"channel": req.get("DialCallSid"), "agent": req.get("To"), **common}
            return [_ev(Kind.ANSWERED, req, key, at - timedelta(seconds=talk or 0), creates=True, **kw),
                    _ev(Kind.COMPLETED, req, key, at, talk_seconds=talk, creates=True, **kw)]
        if status in _DIAL_NOT_ANSWERED:
            return [_ev(Kind.FAILED, req, key, at, reason=status, creates=True, **common)]
        raise BadWebhook(f"unknown DialCallStatus {status!r}; the request is kept as a dead letter")
    status = req.params["CallStatus"].strip().lower()
    if status in _PLACED_OPEN:
        return [_ev(Kind.STARTED, req, key, at, creates=True, **common)]
    if status == "completed":
        duration = _seconds(req, "CallDuration")
        start = [_ev(Kind.STARTED, req, key, at - timedelta(seconds=duration), creates=True, **common)] \
            if duration is not None else []
        return [*start, _ev(Kind.ENDED, req, key, at, reason="completed", creates=True, **common)]
    if status in _PLACED_FAILED:
        return [_ev(Kind.FAILED, req, key, at, reason=status, creates=True, **common)]
    raise BadWebhook(f"unknown CallStatus {status!r}; the request is kept as a dead letter")


BUILDERS: dict[Hook, Callable[[Request], list[CallEvent]]] = {
    Hook.VOICE: _voice,
    Hook.STATUS: _status,
    Hook.ENQUEUE_ACTION: _enqueue_action,
    Hook.DEQUEUE: _dequeue,
    Hook.DIAL_ACTION: _dial_action,
    Hook.AGENT: _no_events,
    Hook.WAIT: _no_events,
    Hook.CLOSED_KEY: _closed_key,
    Hook.OUTBOUND: _no_events,
}


# ---------------------------------------------------------------------- raw events
def missing_fields(hook: Hook, params: Mapping[str, str]) -> list[str]:
    return [name for name in REQUIRED[hook] if not (params.get(name) or "").strip()]


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def dedupe_key(req: Request) -> str:
    """Twilio's idempotency token when given (same on every retry), else what the request says."""
    if req.idempotency_token:
        token = req.idempotency_token.strip()
        return "twilio:idem:" + (token if len(token) <= 140 else _digest(token)[:48])
    value = req.get("CallStatus") or req.get("QueueResult") or req.get("DialCallStatus") or "-"
    sid = (req.get("CallSid") or "-")[:40]
    seq = (req.get("SequenceNumber") or "-")[:10]
    digest = _digest(sorted(req.params.items()), sorted(req.query.items()))[:32]
    return f"twilio:{req.hook.value}:{sid}:{value[:24]}:{seq}:{digest}"[:160]


def _payload(req: Request) -> tuple[str, bytes | None]:
    head = f"POST {req.path}\n\n".encode()
    try:
        return (head + req.body).decode("utf-8"), None
    except UnicodeDecodeError:
        return (head + req.body).decode("utf-8", errors="replace"), req.body


REJECTED_KEEP_BYTES = 64 * 1024  # of a refused request's body; anyone can send those


def rejected(req: Request, reason: str) -> RawIn:
    """A request refused before translation (bad signature): its first 64 KB, its size and hash.

    Anyone can post to a webhook URL, so a refused body is never kept whole: the dead letter says
    how big it was and its SHA-256, which is enough to recognise a repeated or replayed request.
    """
    body = req.body
    size, sha = len(body), hashlib.sha256(body).hexdigest()
    kept = body[:REJECTED_KEEP_BYTES]
    head = (f"POST {req.path[:2000]}\nbody-size: {size}\nbody-sha256: {sha}\n"
            f"body-kept: {len(kept)}\n\n").encode()
    try:
        payload, raw_bytes = (head + kept).decode("utf-8"), None
    except UnicodeDecodeError:  # also when the cut falls inside a character
        payload, raw_bytes = (head + kept).decode("utf-8", errors="replace"), kept
    note = f"; body of {size} bytes (sha256 {sha}), first {len(kept)} kept" if size > len(kept) else ""
    return RawIn(provider=PROVIDER, dedupe_key="twilio:rejected:" + _digest(req.path, sha)[:48],
                 received_at=req.received_at, payload=payload, payload_bytes=raw_bytes,
                 event_type=f"{req.hook.value}:rejected", provider_key=((req.get("CallSid") or "")[:64] or None),
                 error=reason + note)


def translate_all(req: Request) -> list[RawIn]:
    """``translate(req)``, followed by a dead letter naming the values it left out, if any.

    The call keeps every fact the other values give; the dead letter (same payload, its own
    dedupe key, ``error`` = the reasons) is logged by the ingestor like any refusal.
    """
    raw = translate(req)
    if not req.problems or raw.error:
        return [raw]
    reasons = "; ".join(dict.fromkeys(req.problems))
    bad = RawIn(provider=PROVIDER, dedupe_key=raw.dedupe_key[:150] + ":values", received_at=raw.received_at,
                payload=raw.payload, payload_bytes=raw.payload_bytes, event_type=f"{req.hook.value}:bad-values",
                provider_key=raw.provider_key,
                error=f"twilio {req.hook.value} webhook: {reasons}")
    return [raw, bad]


def translate(req: Request) -> RawIn:
    """The raw event with its call events, or with ``error`` set when it cannot be applied.

    Values out of bounds are left out of the events and listed in ``req.problems``; use
    ``translate_all`` to keep them as a dead letter.
    """
    payload, raw_bytes = _payload(req)
    key = req.get("ParentCallSid") or req.get("CallSid")
    raw = RawIn(provider=PROVIDER, dedupe_key=dedupe_key(req), received_at=req.received_at, payload=payload,
                payload_bytes=raw_bytes, event_type=req.hook.value, provider_key=key[:128] if key else None)
    missing = missing_fields(req.hook, req.params)
    if missing:
        raw.error = (f"missing required field(s) {', '.join(missing)} in the twilio {req.hook.value} webhook; "
                     "Twilio always sends them, so check that this URL is only called by Twilio")
        return raw
    placed = req.query.get("callback") and req.hook in (Hook.STATUS, Hook.DIAL_ACTION)
    try:
        raw.events = _placed(req) if placed else BUILDERS[req.hook](req)
    except BadWebhook as exc:
        raw.error = str(exc)
    return raw
