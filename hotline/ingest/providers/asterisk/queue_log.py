"""Recovering calls from Asterisk's ``queue_log`` after the listener was away.

A call that began and ended while ``hotline ami`` could not hear the PBX never reaches the
stream.  app_queue writes every queue call to ``queue_log`` (a file, or a realtime table with the
same columns): ``time|callid|queue|agent|event|data1|data2|…``, where ``callid`` is the caller
channel's Uniqueid.  On reconnect the lines of the outage are turned into the same call events the
stream would have given, under their own dedupe keys (a line read twice counts once).

Events used (Asterisk 18–22): ENTERQUEUE (data2 = caller ID), CONNECT (data1 = hold time),
COMPLETECALLER / COMPLETEAGENT (hold, talk), ABANDON (data3 = wait), EXITWITHTIMEOUT,
EXITEMPTY, EXITWITHKEY (data3 = wait: nobody answered), TRANSFER / BLINDTRANSFER /
ATTENDEDTRANSFER (hold, talk), RINGNOANSWER (data1 = ring ms).  The agent column is the member's
name, not its interface.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hotline.ingest.events import CallEvent, Kind, RawIn

log = logging.getLogger(__name__)
PROVIDER = "asterisk"
MARGIN = timedelta(seconds=60)  # the break is noticed late (silence × keepalive); a line read twice counts once
UNANSWERED = {"EXITWITHTIMEOUT": "TIMEOUT", "EXITEMPTY": "LEAVEEMPTY", "EXITWITHKEY": "CONTINUE"}
COMPLETES = {"COMPLETECALLER": "caller", "COMPLETEAGENT": "agent", "TRANSFER": "transfer",
             "BLINDTRANSFER": "transfer", "ATTENDEDTRANSFER": "transfer"}


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def parse_line(line: str, source: str, members: dict[str, str] | None = None) -> RawIn | None:
    """One queue_log line as a raw event with its call events; None for lines about no call."""
    fields = line.rstrip("\r\n").split("|")
    if len(fields) < 5:
        return None
    stamp, callid, queue, agent, event, *data = fields
    data += [""] * (8 - len(data))
    seconds = _int(stamp)
    if seconds is None or not callid or callid == "NONE":
        return None
    at = datetime.fromtimestamp(seconds, timezone.utc)
    queue_name = queue if queue and queue != "NONE" else None
    member = agent if agent and agent != "NONE" else None
    if member and members:
        member = members.get(member, member)  # the interface, when the stream told it
    kw = {"channel": callid, "queue": queue_name, "scope": source}
    events: list[CallEvent] = []
    if event == "ENTERQUEUE":
        events.append(CallEvent(Kind.QUEUED, PROVIDER, callid, at, caller=data[1] or None, **kw))  # type: ignore[arg-type]  # kw holds channel, queue and scope (str | None)
    elif event == "CONNECT":
        events.append(CallEvent(Kind.ANSWERED, PROVIDER, callid, at, agent=member, wait_seconds=_int(data[0]),
                                **kw))  # type: ignore[arg-type]  # kw holds channel, queue and scope (str | None)
    elif event in COMPLETES:
        hold, talk = (_int(data[2]), _int(data[3])) if event in ("TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER") \
            else (_int(data[0]), _int(data[1]))
        events.append(CallEvent(Kind.COMPLETED, PROVIDER, callid, at, agent=member, wait_seconds=hold,
                                talk_seconds=talk, reason=COMPLETES[event], **kw))  # type: ignore[arg-type]  # kw holds channel, queue and scope (str | None)
        if event in ("COMPLETECALLER", "COMPLETEAGENT"):
            events.append(CallEvent(Kind.ENDED, PROVIDER, callid, at, creates=False, **kw))  # type: ignore[arg-type]  # kw holds channel, queue and scope (str | None)
    elif event == "ABANDON":
        # ABANDON is also written when the PBX itself ends a waiting call (a restart): the stream's
        # evidence (HangupRequest first or not) wins when there is any
        events.append(CallEvent(Kind.ABANDONED, PROVIDER, callid, at, wait_seconds=_int(data[2]),
                                reason="queue_log_abandon", **kw))  # type: ignore[arg-type]  # kw holds channel, queue and scope (str | None)
    elif event in UNANSWERED:
        events.append(CallEvent(Kind.QUEUE_RESULT, PROVIDER, callid, at, reason=UNANSWERED[event], **kw))  # type: ignore[arg-type]  # kw holds channel, queue and scope (str | None)
        events.append(CallEvent(Kind.ABANDONED, PROVIDER, callid, at, wait_seconds=_int(data[2]),
                                reason="left_queue", **kw))  # type: ignore[arg-type]  # kw holds channel, queue and scope (str | None)
    elif event == "RINGNOANSWER" and member:
        ms = _int(data[0])
        events.append(CallEvent(Kind.OFFER_MISSED, PROVIDER, callid, at, agent=member,
                                reason=f"rang {round(ms / 1000)} s without answer" if ms is not None else None,
                                **kw))  # type: ignore[arg-type]  # kw holds channel, queue and scope (str | None)
    else:
        return None
    text = line.rstrip("\r\n")
    key = hashlib.blake2b(f"{source}\x00{text}".encode(), digest_size=20).hexdigest()
    return RawIn(provider=PROVIDER, dedupe_key=f"queue_log:{key}", received_at=at, payload=text,
                 event_type=f"queue_log:{event}"[:64], provider_key=callid, events=events)


def read_window(lines: Iterable[str], source: str, start: datetime, end: datetime,
                members: dict[str, str] | None = None) -> tuple[list[RawIn], int]:
    """The raw events written during [start, end] (with a small margin), with every line about a
    call that entered a queue within it; and how many calls entered within it."""
    parsed = [item for line in lines if (item := parse_line(line, source, members)) is not None]
    lo, hi = start - MARGIN, end + MARGIN
    entered = {i.provider_key for i in parsed if i.event_type == "queue_log:ENTERQUEUE" and lo <= i.received_at <= hi}
    return [i for i in parsed if i.provider_key in entered or lo <= i.received_at <= hi], len(entered)


def recover(path: Path, source: str, start: datetime, end: datetime, *,
            members: dict[str, str] | None = None) -> tuple[list[RawIn], int, str]:
    """Read ``path`` for the outage [start, end]: (raw events, calls found, what was done)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            items, found = read_window(fh, source, start, end, members)
    except OSError as exc:
        return [], 0, f"queue_log unreadable ({type(exc).__name__}): nothing recovered"
    return items, found, f"{found} call(s) recovered from queue_log"


__all__ = ["parse_line", "read_window", "recover"]
