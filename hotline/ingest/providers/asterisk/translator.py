"""The AMI wire protocol: frames in, normalised ``RawIn`` / ``CallEvent`` out.

An AMI message is a block of ``Key: Value`` lines ended by a blank line (``\\r\\n\\r\\n``).
``parse_frame`` turns the bytes of one message into a ``Frame``; ``AmiMapper`` turns a frame
into the ingestor's ``RawIn`` with the call events the queue lifecycle implies.

What the real captures (Asterisk 22) taught us, and what this module therefore does:
- one call has several channels tied by ``Linkedid``; the caller's channel is the one whose
  ``Uniqueid`` equals the ``Linkedid``.  CEL events spell it ``LinkedID`` / ``UniqueID``;
- ``RingTime`` is in milliseconds in ``AgentRingNoAnswer`` and in seconds in ``AgentConnect``
  (``ring_seconds`` normalises it);
- CDRs are per dial attempt (an abandoned call has two "NO ANSWER" CDRs), so the outcome comes
  from the queue events only;
- keys repeat (``ChanVariable``) and are kept in order; ``Key:`` without a space is accepted;
- a line without a colon makes the frame malformed: it is stored and dead-lettered, not dropped;
- invalid UTF-8 (and NUL, which no text column takes) is decoded with replacement characters
  and the original bytes are kept.

Events are *facts*; the ingestor derives the status, so order across event types is irrelevant.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from hotline.ingest.events import CREATING, OVERFLOW_FROM, CallEvent, Kind, LiveCall, RawIn

log = logging.getLogger(__name__)

PROVIDER = "asterisk"
FRAME_END = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"

# The events the adapter maps to call events (the listener asks the PBX for these only).
# AMI filters are regular expressions matched anywhere in the event text: "Event: Hangup" also
# lets HangupRequest through; it is listed anyway because the abandon/timeout decision needs it.
# BridgeEnter/BridgeLeave give each counsellor's part of a transferred call; Blind/AttendedTransfer
# and QueueCallerLeave are kept as raw evidence.
CALL_EVENT_NAMES = (
    "Newchannel", "Hangup", "HangupRequest", "QueueCallerJoin", "QueueCallerAbandon", "QueueCallerLeave",
    "AgentCalled", "AgentRingNoAnswer", "AgentConnect", "AgentComplete", "BridgeEnter", "BridgeLeave",
    "BlindTransfer", "AttendedTransfer", "NewCallerid",
)
# The dialplan context that dials a callback's number (deploy/asterisk/extensions.conf): its Exten
# is the number called.
CALLBACK_CONTEXT = "hotline-callback"
# The channel variable (manager.conf ``channelvars``) a caller carries across a trunk to another PBX
# (the line's overflow centre's queue there): ``<PBX name>:<Linkedid>`` of the call on the PBX it came
# from (deploy/asterisk/extensions.conf, [hotline-overflow-out] / [hotline-overflow-in]).
ORIGIN_VAR = "HOTLINE_ORIGIN"
# The list events of the resync actions (answers to our actions are never filtered by Asterisk).
RESYNC_EVENT_NAMES = ("CoreShowChannel", "CoreShowChannelsComplete", "QueueParams", "QueueMember",
                      "QueueEntry", "QueueStatusComplete")


@dataclass(slots=True)
class Frame:
    """One AMI message: ordered headers (repeats kept) plus a first-value lookup."""

    raw: bytes
    text: str
    headers: list[tuple[str, str]]
    fields: dict[str, str]
    invalid_utf8: bool = False
    error: str | None = None

    @property
    def event(self) -> str | None:
        """The event name; ``None`` for an action response."""
        if self.headers and self.headers[0][0] == "Response":
            return None
        return self.fields.get("Event")

    @property
    def response(self) -> str | None:
        """The response status, when the message answers an action (its first line is
        ``Response:``; an event such as OriginateResponse may carry a Response field too)."""
        if self.headers and self.headers[0][0] == "Response":
            return self.headers[0][1]
        return None

    @property
    def action_id(self) -> str | None:
        return self.fields.get("ActionID")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.headers if k == key]


def parse_frame(raw: bytes) -> Frame:
    """Parse one message (without its terminating blank line). Never raises: a frame that is
    not ``Key: Value`` lines comes back with ``error`` set and its text intact."""
    try:
        text = raw.decode("utf-8")
        invalid = False
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        invalid = True
    if "\x00" in text:  # no database text column takes NUL: replace it, keep the original bytes
        text = text.replace("\x00", "\ufffd")
        invalid = True
    headers: list[tuple[str, str]] = []
    fields: dict[str, str] = {}
    error: str | None = None
    for number, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key:
            error = (f"malformed AMI frame: line {number} has no 'Key: Value' form "
                     f"(expected a colon after a header name)")
            continue
        value = value[1:] if value.startswith(" ") else value
        headers.append((key, value))
        if key not in fields:
            fields[key] = value
    if not headers and error is None:
        error = "malformed AMI frame: empty message"
    return Frame(raw, text, headers, fields, invalid, error)


def split_frames(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut complete messages off ``buffer``; returns (frames, the incomplete rest)."""
    frames: list[bytes] = []
    start = 0
    find = buffer.find
    while True:
        end = find(FRAME_END, start)
        if end < 0:
            break
        if end > start:
            frames.append(buffer[start:end])
        start = end + 4
    return frames, buffer[start:]


def ring_seconds(event: str, value: str | None) -> int | None:
    """``RingTime`` in seconds: AgentRingNoAnswer reports milliseconds, AgentConnect seconds."""
    n = _int(value)
    if n is None:
        return None
    return round(n / 1000) if event == "AgentRingNoAnswer" else n


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        try:
            return round(float(value.strip()))
        except ValueError:
            return None


def _timestamp(value: str | None, default: datetime) -> datetime:
    """The ``Timestamp:`` header (``timestampevents=yes``: epoch seconds with microseconds)."""
    if not value:
        return default
    try:
        return datetime.fromtimestamp(float(value), timezone.utc)
    except (ValueError, OverflowError, OSError):
        return default


def _duration(value: str | None) -> timedelta | None:
    """``Duration: 00:00:07`` of CoreShowChannel (plain seconds are accepted too)."""
    if not value:
        return None
    if ":" not in value:
        n = _int(value)
        return timedelta(seconds=n) if n is not None and n >= 0 else None
    try:
        h, m, s = (int(p) for p in value.split(":"))
    except ValueError:
        return None
    return timedelta(hours=h, minutes=m, seconds=s)


def _agent(f: Frame) -> str | None:
    return f.get("Interface") or f.get("StateInterface") or f.get("MemberName") or None


# ---------------------------------------------------------------------- event → call events
_DEVICE_SUFFIX = re.compile(r"-[0-9a-fA-F]{6,}(;\d)?$")


def device(channel: str | None) -> str:
    """The device a channel belongs to: ``PJSIP/tvv1-0000000a`` → ``PJSIP/tvv1``,
    ``Local/agent1@agents-00000002;1`` → ``Local/agent1@agents``; queue-member interfaces lose a
    trailing ``/n`` (``Local/agent1@agents/n``) so both name the same counsellor."""
    name = (channel or "").strip()
    name = _DEVICE_SUFFIX.sub("", name)
    if name.startswith("Local/") and name.endswith("/n"):
        name = name[:-2]
    return name


def presentation(f: Frame) -> str | None:
    """``withheld`` / ``unavailable`` when the caller ID's presentation says so, else ``None``.

    Asterisk spells it ``CID-CallingPres: 32 (Number Prohibited)`` (NewCallerid),
    ``CallerIDNumPresentation`` / ``CallerIDPres`` in some events, or a channel variable the
    dial plan copies ``CALLERID(num-pres)`` into (``channelvars`` in manager.conf)."""
    values = [f.fields.get(k) for k in ("CID-CallingPres", "CallerIDNumPresentation", "CallerIDPres",
                                        "CallerIDNumPres")]
    for var in f.get_all("ChanVariable"):
        name, _, setting = var.partition("=")
        if name.upper() in ("CALLERID(NUM-PRES)", "CALLERID(PRES)", "HOTLINE_CID_PRES", "CALLINGPRES"):
            values.append(setting)
    for value in values:
        if not value:
            continue
        text = value.strip().lower()
        number = _int(text.split()[0]) if text[:1].isdigit() else None
        if number is not None:
            if number & 0x60 == 0x20:
                return "withheld"
            if number & 0x60 == 0x40:
                return "unavailable"
            continue
        if "prohib" in text or "restrict" in text:
            return "withheld"
        if "unavailable" in text:
            return "unavailable"
    return None


def _chanvar(f: Frame, name: str) -> str | None:
    for var in f.get_all("ChanVariable"):
        key, _, value = var.partition("=")
        if key == name:
            return value or None
    return None


@dataclass(slots=True)
class _Ctx:
    frame: Frame
    key: str
    channel: str
    at: datetime
    scope: str
    mapper: AmiMapper

    def ev(self, kind: Kind, **kw: object) -> CallEvent:
        if self.is_caller_channel:
            kw.setdefault("presentation", presentation(self.frame))
        kw.setdefault("creates", kind.value in CREATING)
        return CallEvent(kind, PROVIDER, self.key, self.at, channel=self.channel, scope=self.scope, **kw)  # type: ignore[arg-type]  # kw: CallEvent fields given by name

    @property
    def is_caller_channel(self) -> bool:
        return self.channel == self.key


def _newchannel(c: _Ctx) -> list[CallEvent]:
    if not c.is_caller_channel:
        return []
    f = c.frame
    callback = _chanvar(f, "HOTLINE_CALLBACK")
    # Only a call that reaches a hotline line or queue is a call: a channel on its own is not
    # (internal and outbound calls); one hotline placed itself (a callback) is, as a callback.
    return [c.ev(Kind.STARTED, caller=f.get("CallerIDNum"), dialed=f.get("Exten") or None,
                 callback=callback, creates=callback is not None)]


def _queue_join(c: _Ctx) -> list[CallEvent]:
    f = c.frame
    return [c.ev(Kind.QUEUED, caller=f.get("CallerIDNum"), queue=f.get("Queue") or None)]


def _agent_called(c: _Ctx) -> list[CallEvent]:
    f = c.frame
    return [c.ev(Kind.OFFERED, caller=f.get("CallerIDNum"), queue=f.get("Queue") or None, agent=_agent(f))]


def _ring_no_answer(c: _Ctx) -> list[CallEvent]:
    f = c.frame
    rang = ring_seconds("AgentRingNoAnswer", f.get("RingTime"))
    return [c.ev(Kind.OFFER_MISSED, queue=f.get("Queue") or None, agent=_agent(f),
                 reason=f"rang {rang} s without answer" if rang is not None else None)]


def _agent_connect(c: _Ctx) -> list[CallEvent]:
    f = c.frame
    return [c.ev(Kind.ANSWERED, caller=f.get("CallerIDNum"), queue=f.get("Queue") or None, agent=_agent(f),
                 wait_seconds=_int(f.get("HoldTime")))]


def _agent_complete(c: _Ctx) -> list[CallEvent]:
    f = c.frame
    return [c.ev(Kind.COMPLETED, caller=f.get("CallerIDNum"), queue=f.get("Queue") or None, agent=_agent(f),
                 wait_seconds=_int(f.get("HoldTime")), talk_seconds=_int(f.get("TalkTime")),
                 reason=f.get("Reason") or None)]


def _abandon(c: _Ctx) -> list[CallEvent]:
    """Asterisk 22 sends QueueCallerAbandon also on a queue timeout, ``leavewhenempty`` and a
    withdraw.  A caller who really gave up asked to hang up first (HangupRequest on their
    channel): ``reason`` says whether that was seen before this event on this connection."""
    f = c.frame
    hung_up = c.channel in c.mapper._hangup_requested
    return [c.ev(Kind.ABANDONED, caller=f.get("CallerIDNum"), queue=f.get("Queue") or None,
                 wait_seconds=_int(f.get("HoldTime")), reason="caller_hung_up" if hung_up else "left_queue")]


def _hangup_request(c: _Ctx) -> list[CallEvent]:
    if not c.is_caller_channel:
        return []
    c.mapper._hangup_requested.add(c.channel)
    return [c.ev(Kind.HANGUP_REQUESTED)]


def _hangup(c: _Ctx) -> list[CallEvent]:
    # a channel that hangs up leaves its bridges (BridgeLeave may be filtered out, or lost)
    out = c.mapper._leave_all(c)
    if c.is_caller_channel:
        out.append(c.ev(Kind.ENDED, reason=c.frame.get("Cause-txt") or None))
    return out


def _new_callerid(c: _Ctx) -> list[CallEvent]:
    if not c.is_caller_channel:
        return []
    return [c.ev(Kind.CALLER, caller=c.frame.get("CallerIDNum"))]


def _varset(c: _Ctx) -> list[CallEvent]:
    """``QUEUESTATUS`` set on the caller's channel when Queue() returns without an answer
    (VarSet needs the "dialplan" class; ``channelvars = QUEUESTATUS`` in manager.conf carries the
    same value on the caller's later events instead)."""
    f = c.frame
    if not c.is_caller_channel or f.get("Variable") != "QUEUESTATUS" or not f.get("Value"):
        return []
    if c.channel in c.mapper._queue_result:
        return []
    c.mapper._queue_result.add(c.channel)
    return [c.ev(Kind.QUEUE_RESULT, reason=(f.get("Value") or "").upper()[:32])]


def _bridge_enter(c: _Ctx) -> list[CallEvent]:
    return c.mapper._bridge(c, enter=True)


def _bridge_leave(c: _Ctx) -> list[CallEvent]:
    return c.mapper._bridge(c, enter=False)


MAPPERS: dict[str, Callable[[_Ctx], list[CallEvent]]] = {
    "Newchannel": _newchannel,
    "QueueCallerJoin": _queue_join,
    "AgentCalled": _agent_called,
    "AgentRingNoAnswer": _ring_no_answer,
    "AgentConnect": _agent_connect,
    "AgentComplete": _agent_complete,
    "QueueCallerAbandon": _abandon,
    "HangupRequest": _hangup_request,
    "Hangup": _hangup,
    "NewCallerid": _new_callerid,
    "BridgeEnter": _bridge_enter,
    "BridgeLeave": _bridge_leave,
    "VarSet": _varset,
}

# QUEUESTATUS values that mean "nobody answered" (the caller did not hang up).
QUEUE_UNANSWERED = frozenset({"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL",
                              "WITHDRAW", "CONTINUE"})

_UNTRACKED = frozenset({"CEL", "Cdr"})


def _ids(f: Frame) -> tuple[str | None, str | None]:
    """(Uniqueid, Linkedid) of the channel a frame is about; CEL spells them differently."""
    fields = f.fields
    uid = fields.get("Uniqueid") or fields.get("UniqueID")
    lid = fields.get("Linkedid") or fields.get("LinkedID")
    return uid or None, lid or None


@dataclass(slots=True)
class _Member:
    channel: str
    lid: str
    enter: datetime | None = None
    leave: datetime | None = None  # left the bridge (or hung up)
    gone: datetime | None = None  # hung up
    told: dict[str, tuple[datetime | None, datetime | None]] = field(default_factory=dict)  # caller → (start, end) sent


class AmiMapper:
    """Turns frames of one AMI source into ``RawIn`` items.

    Remembers the Linkedid each live channel was first seen with, so that a channel
    re-stamped onto another Linkedid (transfer) yields an ``ALIAS`` event and the ingestor
    merges the two calls.  Entries go when the channel hangs up; the table is capped so a
    missed ``Hangup`` cannot grow memory without bound.  It also follows bridges: while a
    caller's channel shares a bridge with another channel, that channel's device has a part of
    the call (``PART_STARTED`` / ``PART_ENDED``): a transfer keeps every counsellor's part.
    """

    def __init__(self, source: str, *, max_channels: int = 100_000):
        self.source = source
        self.max_channels = max_channels
        self._first: OrderedDict[str, str] = OrderedDict()  # Uniqueid → first Linkedid
        self._restamped: dict[str, str] = {}  # Uniqueid → Linkedid already reported
        self._salt = source.encode("utf-8") + b"\x00"
        self.members: dict[str, str] = {}  # queue member name → interface
        self._hangup_requested: set[str] = set()  # caller channels that asked to hang up
        self._queue_result: set[str] = set()  # caller channels whose QUEUESTATUS was reported
        self.max_bridges = max(1000, max_channels // 10)
        self._bridges: OrderedDict[str, dict[str, _Member]] = OrderedDict()  # bridge → {Uniqueid: member}
        self._hung_up: OrderedDict[str, datetime] = OrderedDict()  # Uniqueid → when it hung up
        # Calls hotline placed (HOTLINE_CALLBACK on the first channel: the counsellor's own phone):
        # Linkedid → [ref, the number dialled in the callback context, told as the caller]
        self._callbacks: OrderedDict[str, list[str | None]] = OrderedDict()
        self.callback_context = CALLBACK_CONTEXT
        self._where: OrderedDict[str, str] = OrderedDict()  # channel name → its latest bridge
        self._in: dict[str, set[str]] = {}  # Uniqueid → bridges it is in (until it hangs up)
        # Trunk overflow (HOTLINE_ORIGIN): callers that came from another PBX (Linkedid → the origin
        # told), and this PBX's channels carrying a caller to another PBX (no counsellor's part).
        self._origins: OrderedDict[str, str] = OrderedDict()
        self._trunk_legs: OrderedDict[str, None] = OrderedDict()

    def learn(self, f: Frame) -> None:
        """Queue member name → interface (queue_log names members by name)."""
        name, interface = f.fields.get("MemberName"), f.fields.get("Interface") or f.fields.get("Location")
        if name and interface and self.members.get(name) != interface:
            self.members[name] = interface
            if len(self.members) > 10_000:
                self.members.pop(next(iter(self.members)))

    def dedupe_key(self, raw: bytes) -> str:
        """Identical frames from one source are the same event."""
        return "ami:" + hashlib.blake2b(self._salt + raw, digest_size=20).hexdigest()

    def to_raw(self, raw: bytes, received_at: datetime, frame: Frame | None = None) -> RawIn:
        f = frame or parse_frame(raw)
        item = RawIn(
            provider=PROVIDER, dedupe_key=self.dedupe_key(raw), received_at=received_at, payload=f.text,
            event_type=(f.event or f.response or "")[:64],
            payload_bytes=raw if f.invalid_utf8 else None,
        )
        if f.invalid_utf8:
            log.warning("ami.invalid_utf8", extra={"source": self.source, "event_type": item.event_type,
                                                   "reason": "frame is not valid UTF-8; stored with "
                                                             "replacement characters and its original bytes"})
        if f.error:
            item.error = f.error
            return item
        uid, lid = _ids(f)
        item.provider_key = lid
        if uid is None or lid is None:
            return item
        name = f.event or ""
        at = _timestamp(f.fields.get("Timestamp"), received_at)
        # CEL records trail the Hangup; tracking them would re-add channels that are gone.
        alias = self._track(uid, lid, name) if name not in _UNTRACKED else None
        if alias is not None:
            item.events.append(CallEvent(Kind.ALIAS, PROVIDER, lid, at, channel=uid, alias_key=alias,
                                         scope=self.source, creates=False))
        if name in _UNTRACKED:
            return item
        ctx = _Ctx(f, lid, uid, at, self.source, self)
        origin = _chanvar(f, ORIGIN_VAR)
        if origin:
            link = self._origin(uid, lid, origin, at)
            if link is not None:
                item.events.append(link)
        if uid == lid and uid not in self._queue_result:
            status = _chanvar(f, "QUEUESTATUS")
            if status:
                self._queue_result.add(uid)
                item.events.append(ctx.ev(Kind.QUEUE_RESULT, reason=status.upper()[:32]))
        # known as placed before its bridge is paired: the counsellor answers a callback, never the
        # number called, whether or not an event carrying HOTLINE_CALLBACK came first (out of order)
        placed = self._placed_ref(ctx) if uid == lid else None
        mapper = MAPPERS.get(name)
        if mapper is not None:
            item.events.extend(mapper(ctx))
        if placed is not None:
            self._placed(ctx, item, placed)
        if name == "Hangup":
            self._hangup_requested.discard(uid)
            self._queue_result.discard(uid)
        return item

    def _origin(self, uid: str, lid: str, origin: str, at: datetime) -> CallEvent | None:
        """``HOTLINE_ORIGIN=<PBX>:<Linkedid>``: on a caller's channel naming another call, this caller
        came over a trunk from that call on that PBX (the line's overflow): an ``ALIAS`` tells the
        ingestor, once, so both PBXes' events make one call.  On another channel of the call it names
        (inherited by the trunk channel the origin PBX dialled), that channel carries the caller away:
        not a counsellor's part."""
        pbx, _, key = origin.strip().rpartition(":")
        if not key:
            return None
        if uid != lid:
            if key == lid and uid not in self._trunk_legs:
                self._trunk_legs[uid] = None
                while len(self._trunk_legs) > self.max_bridges:
                    self._trunk_legs.popitem(last=False)
            return None
        if key == lid or self._origins.get(lid) == origin:
            return None
        self._origins[lid] = origin
        while len(self._origins) > self.max_bridges:
            self._origins.popitem(last=False)
        return CallEvent(Kind.ALIAS, PROVIDER, key[:128], at, alias_key=lid, reason=(OVERFLOW_FROM + pbx)[:128],
                         scope=self.source, creates=False)

    def _placed_ref(self, c: _Ctx) -> list[str | None] | None:
        """The call's entry in ``_callbacks`` when hotline placed it (a callback): its first channel
        is the counsellor's own phone, marked ``HOTLINE_CALLBACK`` (seen from the first event after
        the Originate set it, not on Newchannel)."""
        cb = self._callbacks.get(c.key)
        if cb is None:
            ref = _chanvar(c.frame, "HOTLINE_CALLBACK")
            if not ref:
                return None
            cb = self._callbacks[c.key] = [ref[:64], None, None]
            while len(self._callbacks) > self.max_bridges:
                self._callbacks.popitem(last=False)
        return cb

    def _placed(self, c: _Ctx, item: RawIn, cb: list[str | None]) -> None:
        """A call hotline placed: its caller is the number the callback context dials (``Exten``),
        never the channel's caller ID (the hotline number shown to the person called)."""
        item.events = [e for e in item.events if e.kind is not Kind.CALLER]
        for e in item.events:
            e.caller = None
        exten = c.frame.get("Exten") or ""
        if cb[1] is None and c.frame.get("Context") == self.callback_context and exten[:1].isdigit():
            cb[1] = exten
        if cb[2] is None or (cb[1] is not None and cb[2] != cb[1]):
            cb[2] = cb[1] or ""
            item.events.append(c.ev(Kind.STARTED, caller=cb[1], callback=cb[0], creates=True))

    def _bridge(self, c: _Ctx, *, enter: bool, bridge: str | None = None) -> list[CallEvent]:
        """A part is the overlap of a caller's channel and another channel in one bridge: it
        starts when the later of the two entered and ends when the first of the two left (or hung
        up).  Worked out from the times, so BridgeEnter/BridgeLeave/Hangup may arrive in any order."""
        bridge = bridge or c.frame.get("BridgeUniqueid") or ""
        if not bridge:
            return []
        members = self._bridges.get(bridge)
        if members is None:
            members = self._bridges[bridge] = {}
            while len(self._bridges) > self.max_bridges:
                self._bridges.popitem(last=False)
        rec = members.get(c.channel)
        if rec is None:
            rec = members[c.channel] = _Member(c.frame.get("Channel") or "", c.key)
            if c.channel not in self._hung_up:
                self._in.setdefault(c.channel, set()).add(bridge)
                while len(self._in) > self.max_channels:
                    self._in.pop(next(iter(self._in)))
        if rec.channel:
            self._where[rec.channel] = bridge
            while len(self._where) > self.max_channels:
                self._where.pop(next(iter(self._where)))
        gone = self._hung_up.get(c.channel)
        if gone is not None:
            rec.gone = gone if rec.gone is None else min(rec.gone, gone)
            rec.leave = gone if rec.leave is None else min(rec.leave, gone)
        if enter:
            rec.enter = c.at if rec.enter is None else min(rec.enter, c.at)
        else:
            rec.leave = c.at if rec.leave is None else min(rec.leave, c.at)
        if len(members) > 16:  # channels long gone cannot share this bridge with anyone new
            for uid in [u for u, m in members.items() if m.gone is not None and u != c.channel][:len(members) - 8]:
                members.pop(uid, None)
        out: list[CallEvent] = []
        for uid, other in members.items():
            if uid == c.channel:
                continue
            if c.channel == c.key:  # this is a caller's channel: a part for the other one
                out.extend(self._pair(c, bridge, c.channel, rec, uid, other, enter))
            if uid == other.lid:  # the other one is a caller's channel: a part for this one
                out.extend(self._pair(c, bridge, uid, other, c.channel, rec, enter))
        return out

    def _pair(self, c: _Ctx, bridge: str, caller: str, crec: _Member, leg: str, lrec: _Member,
              enter: bool) -> list[CallEvent]:
        if crec.enter is None or lrec.enter is None or leg in self._trunk_legs:
            return []
        if (lrec.gone is not None and lrec.gone < crec.enter) or (crec.leave is not None and crec.leave < lrec.enter):
            return []  # never in the bridge together (a bridge id used again)
        out: list[CallEvent] = []
        name = f"{leg}/{bridge}"[:128]
        # a call hotline placed: the first channel is the counsellor's own phone, the other the person
        agent = self._device(crec.channel if caller in self._callbacks else lrec.channel)
        start = max(crec.enter, lrec.enter)
        told_start, told_end = lrec.told.get(caller, (None, None))
        if told_start != start:
            out.append(CallEvent(Kind.PART_STARTED, PROVIDER, caller, start, channel=name,
                                 agent=agent, scope=self.source, creates=False))
        # The caller leaving (or hanging up) ends it, and so does the counsellor hanging up; a
        # counsellor stepping out of the bridge (hold, consulting before an attended transfer) does not.
        ends = [t for t in (crec.leave, lrec.gone) if t is not None]
        end = max(start, min(ends)) if ends else None
        if end is not None and end != told_end:
            out.append(CallEvent(Kind.PART_ENDED, PROVIDER, caller, end, channel=name,
                                 agent=agent, scope=self.source, creates=False))
        lrec.told[caller] = (start, end if end is not None else told_end)
        return out

    def _device(self, channel: str, depth: int = 0) -> str:
        """The device behind a channel; a Local channel's ``;1`` stands for whatever its ``;2``
        half is bridged with (an attended transfer's ``Local/102@counsellors`` leg → ``PJSIP/tvv2``)."""
        if depth < 3 and channel.startswith("Local/") and channel.endswith(";1"):
            twin = channel[:-1] + "2"
            members = self._bridges.get(self._where.get(twin, ""))
            if members:
                for other in members.values():
                    if other.channel and other.channel != twin:
                        return self._device(other.channel, depth + 1)
        return device(channel)

    def _leave_all(self, c: _Ctx) -> list[CallEvent]:
        """A Hangup: the channel left every bridge it was in (BridgeLeave may be filtered out)."""
        self._hung_up[c.channel] = c.at
        while len(self._hung_up) > self.max_channels:
            self._hung_up.popitem(last=False)
        out: list[CallEvent] = []
        for bridge in self._in.pop(c.channel, ()):
            if bridge in self._bridges:
                out.extend(self._bridge(c, enter=False, bridge=bridge))
        return out

    def _track(self, uid: str, lid: str, event: str) -> str | None:
        """Returns the old Linkedid when ``uid`` turns up under a new one (once per change)."""
        first = self._first.get(uid)
        alias: str | None = None
        if first is None:
            self._first[uid] = lid
            if len(self._first) > self.max_channels:
                gone, _ = self._first.popitem(last=False)
                self._restamped.pop(gone, None)
        elif first != lid and self._restamped.get(uid) != lid:
            self._restamped[uid] = lid
            alias = first
        if event == "Hangup":
            self._first.pop(uid, None)
            self._restamped.pop(uid, None)
        return alias

    @property
    def tracked_channels(self) -> int:
        return len(self._first)


# ---------------------------------------------------------------------- resync snapshot
@dataclass
class Resync:
    """Collects the answers to ``CoreShowChannels`` and ``QueueStatus`` sent on (re)connect."""

    channels_id: str
    queue_id: str
    requested_at: datetime
    channels: list[Frame] = field(default_factory=list)
    entries: list[Frame] = field(default_factory=list)
    channels_done: bool = False
    queue_done: bool = False
    failed: str | None = None
    answered_at: datetime | None = None
    spare: set[str] = field(default_factory=set)  # keys heard on the stream after it was asked for
    callback_context: str = CALLBACK_CONTEXT  # where calls hotline places run (HOTLINE_PBX_CALLBACK_CONTEXT)

    @property
    def done(self) -> bool:
        return self.channels_done and self.queue_done

    def offer(self, f: Frame, received_at: datetime) -> bool:
        """Take a frame if it answers one of our two actions; True when it was ours."""
        aid = f.action_id
        if aid not in (self.channels_id, self.queue_id):
            return False
        if f.response is not None:
            if aid == self.channels_id and self.answered_at is None:
                self.answered_at = received_at
            if f.response.lower() == "error":
                self.failed = (f"{'CoreShowChannels' if aid == self.channels_id else 'QueueStatus'} "
                               f"was refused: {f.get('Message') or 'no reason given'}")
            return True
        name = f.event
        if name == "CoreShowChannel":
            self.channels.append(f)
        elif name == "CoreShowChannelsComplete":
            self.channels_done = True
        elif name == "QueueEntry":
            self.entries.append(f)
        elif name == "QueueStatusComplete":
            self.queue_done = True
        return True

    def live_calls(self, at: datetime) -> list[LiveCall]:
        """One ``LiveCall`` per Linkedid still on the PBX."""
        by_call: dict[str, list[Frame]] = {}
        uid_to_lid: dict[str, str] = {}
        for ch in self.channels:
            uid, lid = _ids(ch)
            if lid is None:
                continue
            by_call.setdefault(lid, []).append(ch)
            if uid:
                uid_to_lid[uid] = lid
        queued: dict[str, Frame] = {}
        entry: Frame | None
        for entry in self.entries:
            uid = entry.get("Uniqueid") or ""
            lid = uid_to_lid.get(uid, uid)
            if lid:
                queued[lid] = entry
                by_call.setdefault(lid, [])
        live: list[LiveCall] = []
        for lid, channels in by_call.items():
            caller_ch = next((c for c in channels if _ids(c)[0] == lid), channels[0] if channels else None)
            entry = queued.get(lid)
            started = None
            if caller_ch is not None:
                duration = _duration(caller_ch.get("Duration"))
                started = at - duration if duration is not None else None
            elif entry is not None and _int(entry.get("Wait")) is not None:
                started = at - timedelta(seconds=_int(entry.get("Wait")) or 0)
            queue = entry.get("Queue") if entry is not None else None
            if queue is None and caller_ch is not None and caller_ch.get("Application") == "Queue":
                queue = (caller_ch.get("ApplicationData") or "").split(",")[0] or None
            bridged = any(c.get("BridgeId") for c in channels)
            # Times from the durations Asterisk reports, not from the moment of the resync.
            queued_at = None
            if entry is not None and _int(entry.get("Wait")) is not None:
                queued_at = at - timedelta(seconds=_int(entry.get("Wait")) or 0)
            answered_at = None
            agent = None
            if bridged and entry is None:
                others = [c for c in channels if c is not caller_ch and c.get("BridgeId")]
                bridged_time = next((_duration(c.get("BridgedTime")) for c in [caller_ch, *others]
                                     if c is not None and c.get("BridgedTime")), None)
                if bridged_time is None and others:  # the counsellor's channel is no older than the answer
                    ages = [d for d in (_duration(c.get("Duration")) for c in others) if d is not None]
                    bridged_time = min(ages) if ages else None
                answered_at = at - bridged_time if bridged_time is not None else None
                if others:
                    agent = device(others[0].get("Channel"))
            source = caller_ch if caller_ch is not None else entry
            caller = source.get("CallerIDNum") if source is not None else None
            if caller_ch is not None and caller_ch.get("Context") == self.callback_context:
                # a call hotline placed: its first channel is the counsellor's phone, dialling the person
                caller = caller_ch.get("Exten") or None
                agent = device(caller_ch.get("Channel")) if agent is not None else None
            live.append(LiveCall(
                key=lid,
                caller=caller,
                dialed=(caller_ch.get("Exten") or None) if caller_ch is not None else None,
                queue=queue or None,
                answered=bridged and entry is None,
                started_at=started,
                agent=agent,
                queued_at=queued_at,
                answered_at=answered_at,
            ))
        return live

    def to_raw(self, source: str) -> RawIn:
        """The snapshot as one raw event (its payload lists what the PBX said)."""
        at = self.answered_at or self.requested_at
        live = self.live_calls(at)
        payload = "\r\n\r\n".join(f.text for f in [*self.channels, *self.entries])
        digest = hashlib.blake2b(
            f"{source}\x00{self.channels_id}\x00{at.isoformat()}\x00".encode() + payload.encode(), digest_size=20
        ).hexdigest()
        return RawIn(
            provider=PROVIDER, dedupe_key=f"ami-resync:{digest}", received_at=at, payload=payload,
            event_type="Resync",
            events=[CallEvent(Kind.SNAPSHOT, PROVIDER, f"resync:{source}", at, live=live, scope=source,
                              spare=sorted(self.spare), requested_at=self.requested_at)],
        )


__all__ = ["AmiMapper", "CALL_EVENT_NAMES", "Frame", "MAPPERS", "ORIGIN_VAR", "OVERFLOW_FROM", "Resync", "parse_frame",
           "device", "presentation", "ring_seconds", "split_frames"]
