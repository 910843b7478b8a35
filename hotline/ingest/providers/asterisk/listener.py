"""A supervised AMI listener: ``asterisk-ami`` for the socket, login and actions, our own
supervisor for everything that library gets wrong.

Measured quirks of ``asterisk-ami`` 0.1.7 and what this module does about them:
- its reader thread dies on the first socket timeout (3 s of silence): ``_FrameClient.listen``
  replaces the reader; a timeout just means "nothing to read yet";
- an exception in any callback kills the reader (and its module misses ``import traceback``):
  the reader runs no callbacks, it only cuts frames and puts them on a ``queue.Queue``;
- ``AutoReconnect`` can keep pinging a dead reader: not used; a watchdog notices a dead reader
  or silence longer than ``silence_factor × keepalive`` and reconnects with exponential backoff;
- ``disconnect()`` blocks for its timeout: never called; the socket is shut down instead;
- ``send()`` uses ``socket.send`` (may write part of an action): replaced by ``sendall``.

Threads: the library's reader (one per connection), ``ami-supervisor`` (connect, log in,
keepalive Ping, watchdog, backoff) and ``ami-applier`` (parse, map, ``spool.submit`` in
batches).  A database outage spools to disk and never stops the listener.  On every
(re)connect the listener asks ``CoreShowChannels`` and ``QueueStatus`` and emits one snapshot:
calls that ended while it was away are closed as ``unknown_outcome``, calls it never saw open.
"""

from __future__ import annotations

import logging
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from asterisk.ami import Action, AMIClient
from asterisk.ami.response import Response

from hotline import bus
from hotline.ingest import gaps, spool
from hotline.ingest.events import RawIn
from hotline.ingest.providers.asterisk import queue_log
from hotline.ingest.providers.asterisk.translator import (
    BANNER_PREFIX,
    CALL_EVENT_NAMES,
    AmiMapper,
    Frame,
    Resync,
    parse_frame,
    split_frames,
)
from hotline.ingest.service import IngestResult
from hotline.pbx import asterisk as pbx_ami
from hotline.pbx import service as pbx_service
from hotline.settings import get_settings

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1 << 20  # a "frame" longer than this without a blank line is garbage
READ_SIZE = 1 << 16


AMI_COMMAND_CHANNEL = "ami-commands"  # hotline.live.service publishes presence changes here
# Events that answer our own actions (asynchronous Originate): let through the filter too.
ACTION_EVENT_NAMES = ("OriginateResponse",)

# Stored presence → queue member pause: only "available" takes calls; busy (on a call), wrap-up
# (the seconds after one), away and any other known state pause the member, with the state as reason.
PAUSED_STATES = frozenset({"busy", "wrap_up", "wrapup", "wrap-up", "away", "break", "offline", "paused"})


def pause_for(state: str | None) -> bool | None:
    """True (pause), False (unpause) or None (an unknown state: leave the member as it is)."""
    if state == "available":
        return False
    if state in PAUSED_STATES:
        return True
    return None


def stored_presence() -> dict[str, tuple[bool, str, str]]:
    """Interface → (paused, reason, the PBX its centre names or "") for every counsellor with a
    stored presence and an Asterisk queue-member interface (the effective state: a wrap-up past its
    ``until`` counts as available)."""
    from sqlalchemy import select

    from hotline.centres.models import AgentIdentity, Centre
    from hotline.db import session_scope
    from hotline.live.models import CounsellorPresence
    from hotline.live.service import effective_state

    out: dict[str, tuple[bool, str, str]] = {}
    with session_scope() as s:
        rows = s.execute(select(AgentIdentity.identity, Centre.pbx, CounsellorPresence)
                         .join(CounsellorPresence, CounsellorPresence.user_id == AgentIdentity.user_id)
                         .join(Centre, Centre.id == AgentIdentity.centre_id)
                         .where(AgentIdentity.provider == "asterisk")).all()
        # a wrap-up whose time has run is available (unpaused), whether or not the worker stored it yet
        states = [(identity, pbx or "", effective_state(row)) for identity, pbx, row in rows]
    for identity, pbx, state in states:
        paused = pause_for(state)
        if paused is not None:
            out[identity] = (paused, state, pbx)
    return out


def stored_pauses() -> dict[str, tuple[bool, str]]:
    """Interface → (paused, reason), whichever PBX the interface is on."""
    return {i: (paused, reason) for i, (paused, reason, _pbx) in stored_presence().items()}


class AmiLoginError(Exception):
    """The PBX refused our credentials or did not answer the Login action."""


@dataclass
class ListenerStats:
    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    login_failures: int = 0
    frames_received: int = 0
    events_received: int = 0  # ``Event:`` frames
    malformed: int = 0
    submitted: int = 0  # raw items handed to the ingestor (events + snapshots)
    stored: int = 0  # new raw events in the database
    duplicates: int = 0
    applied: int = 0  # call events applied
    dead: int = 0
    spooled: int = 0  # raw items written to the disk spool
    resyncs: int = 0
    last_error: str = ""


class CutFrame(bytes):
    """The start of a frame the connection closed in the middle of."""


class _FrameClient(AMIClient):  # type: ignore[misc]  # asterisk-ami ships no type hints
    """``AMIClient`` whose reader only cuts frames and hands them to ``sink``."""

    def __init__(self, host: str, port: int, *, timeout: float,
                 sink: Callable[[list[bytes], datetime], None]):
        super().__init__(address=host, port=port, timeout=timeout, buffer_size=READ_SIZE)
        self._sink = sink
        self._send_lock = threading.Lock()
        self._awaiting_login = False
        self._login_action_id = ""
        self.login_answered = threading.Event()
        self.login_response: Response | None = None
        self.last_rx = time.monotonic()
        self.banner: str | None = None
        self.error: str | None = None

    # -- writing: whole actions, one writer at a time
    def send(self, pack: object) -> None:
        data = (str(pack) + "\r\n").encode(self.encoding)
        with self._send_lock:
            self._socket.sendall(data)

    def send_named(self, name: str, action_id: str, **keys: str) -> None:
        self.send(Action(name, {"ActionID": action_id, **keys}))

    def login_with_events(self, username: str, secret: str, events: str, action_id: str):  # type: ignore[no-untyped-def]  # returns asterisk-ami's untyped future
        if self.finished is None or self.finished.is_set():
            self.connect()
        keys = {"ActionID": action_id, "Username": username, "Secret": secret, "Events": events}
        # Armed before sending: the answer can arrive before send_action() returns.
        self._login_action_id = action_id
        self._awaiting_login = True
        return self.send_action(Action("Login", keys))

    def shutdown(self) -> None:
        """Drop the connection now; unlike ``disconnect()`` this never waits."""
        if self.finished is not None:
            self.finished.set()
        sock = self._socket
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    @property
    def reader_alive(self) -> bool:
        return bool(self._thread is not None and self._thread.is_alive() and not self.finished.is_set())

    # -- reading: the library starts this as its reader thread
    def listen(self) -> None:
        try:
            self._read()
        except Exception as exc:  # noqa: BLE001 - the watchdog reconnects; say why
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished.set()

    def _recv(self) -> bytes | None:
        """One read; ``b""`` at end of stream, ``None`` when nothing arrived within the timeout."""
        try:
            chunk: bytes = self._socket.recv(READ_SIZE)
        except TimeoutError:
            return None  # silence is not death: the library's reader died exactly here
        except OSError as exc:
            if not self.finished.is_set():
                self.error = f"connection lost: {exc}"
            return b""
        if chunk:
            self.last_rx = time.monotonic()
        return chunk

    def _read(self) -> None:
        buf = b""
        while not self.finished.is_set():
            cut = buf.find(b"\r\n")
            if cut >= 0:
                banner = buf[:cut]
                buf = buf[cut + 2:]
                if not banner.startswith(BANNER_PREFIX):
                    self.error = "the server did not greet like Asterisk (no 'Asterisk Call Manager/' banner)"
                    return
                self.banner = banner.decode("utf-8", "replace")
                self._ami_version = self.banner.split("/", 1)[1]
                break
            if len(buf) > 4096:
                self.error = "no AMI banner in the first 4 KiB: is this port an Asterisk manager port?"
                return
            chunk = self._recv()
            if chunk == b"":
                if not self.finished.is_set():
                    self.error = self.error or "the server closed the connection before its banner"
                return
            if chunk:
                buf += chunk
        while not self.finished.is_set():
            if buf:
                frames, buf = split_frames(buf)
                if len(buf) > MAX_FRAME_BYTES:
                    frames.append(buf)  # stored and dead-lettered as malformed, never dropped
                    buf = b""
                if frames:
                    self._dispatch(frames)
            chunk = self._recv()
            if chunk == b"":
                if not self.finished.is_set():  # not when we hung up ourselves
                    self.error = self.error or "the server closed the connection"
                if buf.strip():  # a frame cut in the middle: kept, as a dead letter, never dropped
                    self._sink([CutFrame(buf)], datetime.now(timezone.utc))
                return
            if chunk:
                buf += chunk

    def _dispatch(self, frames: list[bytes]) -> None:
        if self._awaiting_login:
            for raw in frames:
                if raw.startswith(b"Response:"):
                    self._resolve_login(raw)
                    break
        self._sink(frames, datetime.now(timezone.utc))

    def _resolve_login(self, raw: bytes) -> None:
        """AMI answers actions in order: the first response after Login is Login's, even when a
        recorded stream carries another (or no) ActionID."""
        self._awaiting_login = False
        response = Response.read(raw.decode(self.encoding, "replace"))
        future = self._futures.pop(response.keys.get("ActionID"), None) or self._futures.pop(self._login_action_id, None)
        if future is not None:
            future.response = response
        self.login_response = response
        self.login_answered.set()

    def wait_login(self, timeout: float, stop: threading.Event) -> Response | None:
        """The Login answer; gives up at once when stopping or when the reader has died."""
        deadline = time.monotonic() + timeout
        while not self.login_answered.wait(0.02):
            if stop.is_set() or not self.reader_alive or time.monotonic() > deadline:
                return self.login_response
        return self.login_response


class AmiListener:
    """Listens to one Asterisk's manager interface and feeds the ingestor."""

    def __init__(self, host: str, port: int, username: str, secret: str, *, source: str | None = None,
                 keepalive: float | None = None, reconnect_max: float | None = None,
                 reconnect_min: float = 0.25, silence_factor: float = 3.0, timeout: float = 3.0,
                 login_timeout: float = 10.0,
                 events: str = "call,agent", event_names: Iterable[str] = CALL_EVENT_NAMES,
                 batch_size: int = 500, batch_wait: float = 0.02, queue_chunks: int = 1000,
                 resync_timeout: float = 30.0, spool_check_seconds: float = 5.0, presence_poll: float = 1.0,
                 submit: Callable[[Sequence[RawIn]], IngestResult | None] = spool.submit):
        settings = get_settings()
        self.host, self.port = host, int(port)
        self.username, self.secret = username, secret
        self.source = source or f"ami:{host}:{port}"
        self.keepalive = float(keepalive if keepalive is not None else settings.ami_keepalive_seconds)
        self.reconnect_max = float(reconnect_max if reconnect_max is not None else settings.ami_reconnect_max_seconds)
        self.reconnect_min = min(reconnect_min, self.reconnect_max)
        self.silence_factor = silence_factor
        self.timeout = timeout  # socket connect / read timeout (a read timeout is not an error)
        self.login_timeout = login_timeout
        self.events = events
        self.event_names = tuple(event_names)
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.resync_timeout = resync_timeout
        self.spool_check_seconds = spool_check_seconds
        self._adopt_failed = False  # the last adopt_waiting round failed (logged once a streak)
        self._submit_fn = submit
        self.presence_poll = float(presence_poll)
        self._sent_pause: dict[str, bool] = {}  # interface → paused, as sent on this connection
        self._member_pbx: dict[str, str] = {}  # interface → the PBX its centre names ("" = any), last poll
        self._presence_wake = threading.Event()
        self._pbx_wake = threading.Event()
        # (command id, status, reason, call uid) heard from the PBX, written by the command thread
        self._pbx_results: queue.Queue[tuple[int, str, str, str]] = queue.Queue()
        self._pbx_unsaved: list[tuple[int, str, str, str]] = []
        self._pbx_db_failed = False
        self._presence_db_failed = False
        self._outage_at: datetime | None = None  # when the PBX was last heard before the link broke
        self._first_connect = True
        self._last_pbx_at: datetime | None = None  # the PBX's clock, from the last event's Timestamp
        self._last_pbx_mono = 0.0
        self._gap_pending: tuple[datetime | None, int, float] | None = None  # (start, generation, since)
        self.gap_close_after = 5.0

        self.stats = ListenerStats()
        self.mapper = AmiMapper(self.source)
        # Calls hotline places run in this dialplan context (HOTLINE_PBX_CALLBACK_CONTEXT, hotline.pbx.asterisk).
        self.mapper.callback_context = settings.pbx_callback_context or self.mapper.callback_context
        self._queue: queue.Queue[tuple[int, datetime, list[bytes]] | tuple[int, None, Resync]] = queue.Queue(queue_chunks)
        self._stop = threading.Event()
        self._client: _FrameClient | None = None
        self._generation = 0
        self._threads: list[threading.Thread] = []
        # The applier and a queue_log recovery thread both submit: one at a time, so a call heard on
        # the stream and found in queue_log is never created twice by two concurrent transactions.
        self._submit_lock = threading.Lock()
        self._action_n = 0
        self._lock = threading.Lock()
        self.applied_event = threading.Condition()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._threads:
            raise RuntimeError("this listener is already started; create a new one to start again")
        self._stop.clear()
        for name, target in (("ami-applier", self._apply_loop), ("ami-supervisor", self._supervise),
                             ("ami-commands", self._command_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("ami.started", extra={"source": self.source, "host": self.host, "port": self.port})

    def stop(self, timeout: float = 2.0) -> None:
        """Stop at once: drop the connection (no blocking ``disconnect()``), let the applier
        hand over what it already received (to the database, or the spool), return."""
        self._stop.set()
        client = self._client
        if client is not None and self.stats.connected:
            # calls from now until the next start are not heard: an open gap says so
            gaps.open_gap(self.source, datetime.now(timezone.utc), "listener stopped")
        if client is not None:
            try:
                client.send_named("Logoff", self._next_id("logoff"))
            except OSError:
                pass
            client.shutdown()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.stats.connected = False
        log.info("ami.stopped", extra={"source": self.source, **self._counts()})

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the listener's threads to finish after ``stop()``; True when they have."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    # ------------------------------------------------------------------ commands from the web
    def _command_loop(self) -> None:
        """Presence that always reaches the PBX.  The stored presence (``counsellor_presence``)
        is the truth: every ``presence_poll`` seconds, and at once after each (re)connect, the
        pause state of every mapped counsellor is compared with what this connection has sent
        and the difference goes out as ``QueuePause`` (so it works on SQLite without Redis, a
        change made while the listener was down is applied when it returns, and a restarted PBX
        gets every pause back).  A message on the bus channel ``ami-commands`` is the fast path:
        it is sent at once and the stored state checked right after.

        Calls to place (``pbx_commands``, ``hotline.pbx``) go the same way: a ``PbxCommand`` message
        on the bus wakes this thread at once, and pending rows are looked for on every poll; each
        is claimed (exactly once across listeners) before its ``Originate`` is sent.  Only rows for
        this PBX (``pbx`` = this listener's ``source``, its name) or naming none are taken, and a
        pause goes only to the PBX where the counsellor's queue member lives (``_serves``).

        Redis down: the subscription is dropped and tried again every 2 s; meanwhile the stored
        presence and the pending calls to place are still polled from the database."""
        sub: bus.Subscription | None = None
        next_poll = next_subscribe = 0.0
        try:
            while not self._stop.is_set():
                if sub is None and time.monotonic() >= next_subscribe:
                    sub = self._subscribe_commands()
                    next_subscribe = time.monotonic() + 2.0
                command = None
                try:
                    if sub is None:
                        self._stop.wait(0 if self._pbx_wake.is_set() else min(0.2, self.presence_poll))
                    elif not self._pbx_wake.is_set():
                        command = sub.get(timeout=min(0.2, self.presence_poll))
                except Exception as exc:  # noqa: BLE001 - Redis went away: the database is still polled; subscribe again
                    log.warning("ami.commands_unavailable", extra={"source": self.source, "reason": str(exc)[:200]})
                    assert sub is not None
                    sub.close()
                    sub = None
                if command is not None and command.get("action") == "PbxCommand":
                    self._pbx_wake.set()
                elif command is not None:
                    self._command(command)
                    self._presence_wake.set()
                self._save_pbx_results()
                due = time.monotonic() >= next_poll
                if self._pbx_wake.is_set() or due:
                    self._pbx_wake.clear()
                    self._send_pbx_commands()
                if self._presence_wake.is_set() or due:
                    self._presence_wake.clear()
                    next_poll = time.monotonic() + self.presence_poll
                    self._apply_presence()
        finally:
            if sub is not None:
                sub.close()

    def _subscribe_commands(self) -> bus.Subscription | None:
        try:
            return bus.Subscription([AMI_COMMAND_CHANNEL])
        except Exception as exc:  # noqa: BLE001 - Redis down: the stored presence is still polled, retried in 2 s
            log.warning("ami.commands_unavailable", extra={"source": self.source, "reason": str(exc)[:200]})
            return None

    def _apply_presence(self) -> None:
        if not self.stats.connected or self._client is None:
            return
        try:
            wanted = stored_presence()
        except Exception as exc:  # noqa: BLE001 - the database may be away; the next poll retries
            if not self._presence_db_failed:
                log.warning("ami.presence_unreadable", extra={"source": self.source, "reason": type(exc).__name__})
            self._presence_db_failed = True
            return
        self._presence_db_failed = False
        self._member_pbx = {interface: pbx for interface, (_p, _r, pbx) in wanted.items()}
        members = self._member_interfaces()
        for interface, (paused, reason, pbx) in sorted(wanted.items()):
            if self._sent_pause.get(interface) != paused and self._serves(interface, pbx, members):
                self._send_pause(interface, paused, reason, None, origin="stored presence")

    # Several PBXes: a counsellor's queue member lives on one of them.  A pause goes to the PBX
    # whose queues list the interface (QueueStatus, member events) and to the PBX the counsellor's
    # centre names; to every PBX when the centre names none (one PBX: as before).  Not to the
    # others: the same extension name there would be someone else (or an "Interface not found").
    def _member_interfaces(self) -> frozenset[str]:
        for _ in range(3):
            try:
                return frozenset(self.mapper.members.values())
            except RuntimeError:  # the applier thread added a member meanwhile
                continue
        return frozenset()

    def _serves(self, interface: str, pbx: str, members: frozenset[str] | None = None) -> bool:
        if not pbx or pbx == self.source:
            return True
        return interface in (members if members is not None else self._member_interfaces())

    def _send_pbx_commands(self) -> None:
        """Claim and send every pending call to place (only while connected: a claimed command is ours)."""
        client = self._client
        if client is None or not self.stats.connected:
            return
        from hotline.db import session_scope

        pbx = pbx_service
        try:
            with session_scope() as db:  # this PBX's rows and those naming none, in one statement
                claimed = [(c.id, pbx_ami.action_id(c), pbx_ami.originate(c))
                           for c in pbx.claim_pending(db, provider="asterisk", by=self.source, pbx=self.source)]
        except Exception as exc:  # noqa: BLE001 - the database may be away; the next poll retries
            if not self._pbx_db_failed:
                log.warning("ami.pbx_unreadable", extra={"source": self.source, "reason": type(exc).__name__})
            self._pbx_db_failed = True
            return
        self._pbx_db_failed = False
        for command_id, action_id, keys in claimed:
            try:
                client.send_named("Originate", action_id, **keys)
                log.info("ami.originate", extra={"source": self.source, "command": command_id,
                                                 "application": keys.get("Application", ""),
                                                 "context": keys.get("Context", "")})
            except OSError as exc:
                log.warning("ami.command_not_sent", extra={"source": self.source, "action": "Originate",
                                                           "reason": str(exc)})
                self._pbx_results.put((command_id, "failed", pbx_service.PBX_LOST, ""))

    def _pbx_heard(self, frame: Frame) -> None:
        """The PBX's answer to one of our ``Originate`` actions (its Response, its OriginateResponse)."""
        command_id = pbx_ami.command_id(frame.action_id)
        if command_id is None:
            return
        if frame.response is not None:
            if frame.response.lower() == "error":
                self._pbx_results.put((command_id, "failed", pbx_service.REFUSED_BY_PBX, ""))
            return
        if frame.event == "OriginateResponse":
            if (frame.get("Response") or "").lower() == "success":
                self._pbx_results.put((command_id, "placed", "", frame.get("Uniqueid") or ""))
            else:
                self._pbx_results.put((command_id, "failed", pbx_ami.reason_of(frame.fields), ""))

    def _save_pbx_results(self) -> None:
        while True:
            try:
                self._pbx_unsaved.append(self._pbx_results.get_nowait())
            except queue.Empty:
                break
        if not self._pbx_unsaved:
            return
        from hotline.db import session_scope

        pbx = pbx_service
        try:
            with session_scope() as db:
                for command_id, status, reason, uid in self._pbx_unsaved:
                    pbx.finish(db, command_id, status=status, reason=reason, call_uid=uid)
        except Exception as exc:  # noqa: BLE001 - kept and written on the next turn
            log.warning("ami.pbx_result_unsaved", extra={"source": self.source, "reason": type(exc).__name__})
            return
        self._pbx_unsaved = []

    def _command(self, command: dict[str, object]) -> None:
        if command.get("action") != "QueuePause" or not command.get("interface"):
            log.warning("ami.command_ignored", extra={"source": self.source, "action": str(command.get("action"))})
            return
        keys = {"Interface": str(command["interface"]), "Paused": "true" if command.get("paused") else "false"}
        if command.get("queue"):
            keys["Queue"] = str(command["queue"])
        if command.get("reason"):
            keys["Reason"] = str(command["reason"])[:80]
        if not self._serves(keys["Interface"], self._member_pbx.get(keys["Interface"], "")):
            log.debug("ami.queue_pause_elsewhere", extra={"source": self.source, "interface": keys["Interface"]})
            return
        self._send_pause(keys["Interface"], bool(command.get("paused")), keys.get("Reason"), keys.get("Queue"),
                         origin="bus")

    def _send_pause(self, interface: str, paused: bool, reason: str | None, queue_name: str | None, *,
                    origin: str) -> None:
        keys = {"Interface": interface, "Paused": "true" if paused else "false"}
        if queue_name:
            keys["Queue"] = queue_name
        if reason:
            keys["Reason"] = reason[:80]
        client = self._client
        if client is None or not self.stats.connected:
            log.warning("ami.command_not_sent", extra={"source": self.source, "action": "QueuePause",
                                                       "reason": "not connected to the PBX; the stored presence "
                                                                 "is applied on reconnect"})
            return
        try:
            client.send_named("QueuePause", self._next_id("pause"), **keys)
            if not queue_name:
                self._sent_pause[interface] = paused
            log.info("ami.queue_pause", extra={"source": self.source, "interface": interface,
                                               "paused": keys["Paused"], "origin": origin})
        except OSError as exc:
            log.warning("ami.command_not_sent", extra={"source": self.source, "action": "QueuePause",
                                                       "reason": str(exc)})

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` is set (or ``stop()`` is called from elsewhere)."""
        if not self._threads:
            self.start()
        while not self._stop.is_set():
            if stop is not None and stop.wait(0.2):
                break
            if stop is None:
                self._stop.wait(0.2)
        self.stop()

    @property
    def connected(self) -> bool:
        return self.stats.connected

    def counters(self) -> dict[str, object]:
        return asdict(self.stats)

    def _counts(self) -> dict[str, int]:
        s = self.stats
        return {"frames": s.frames_received, "applied": s.applied, "reconnects": s.reconnects,
                "spooled": s.spooled}

    def _next_id(self, kind: str) -> str:
        with self._lock:
            self._action_n += 1
            return f"hotline-{kind}-{self._action_n}"

    # ------------------------------------------------------------------ supervisor
    def _supervise(self) -> None:
        delay = self.reconnect_min
        first = True
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                client = self._connect()
            except (OSError, AmiLoginError) as exc:
                self.stats.last_error = str(exc)
                wait = delay * random.uniform(0.9, 1.1)
                level = logging.ERROR if isinstance(exc, AmiLoginError) else logging.WARNING
                # the wait actually about to happen (it used to be the previous attempt's)
                log.log(level, "ami.connect_failed", extra={"source": self.source, "reason": str(exc),
                                                            "retry_in_s": round(wait, 2)})
            else:
                if not first:
                    self.stats.reconnects += 1
                first = False
                reason = self._watch(client)
                client.shutdown()
                self._client = None
                self.stats.connected = False
                if self._stop.is_set():
                    break
                self._outage_started(reason)
                self.stats.last_error = reason
                if time.monotonic() - started > 5.0:
                    delay = self.reconnect_min  # it was up for a while: retry soon
                wait = delay * random.uniform(0.9, 1.1)
                log.warning("ami.disconnected", extra={"source": self.source, "reason": reason,
                                                       "retry_in_s": round(wait, 2)})
            if self._stop.wait(wait):
                break
            delay = min(self.reconnect_max, delay * 2)

    def _connect(self) -> _FrameClient:
        self._generation += 1
        generation = self._generation

        def sink(frames: list[bytes], at: datetime) -> None:
            self._enqueue((generation, at, frames))

        client = _FrameClient(self.host, self.port, timeout=self.timeout, sink=sink)
        try:
            client.login_with_events(self.username, self.secret, self.events, self._next_id("login"))
            response = client.wait_login(self.login_timeout, self._stop)
        except OSError:
            client.shutdown()
            raise
        if response is None:
            reason = client.error or f"no answer to Login within {self.login_timeout:g} s"  # before we hang up
            client.shutdown()
            raise AmiLoginError("stopped while logging in" if self._stop.is_set() else reason)
        if response.is_error():
            client.shutdown()
            self.stats.login_failures += 1
            raise AmiLoginError(f"the PBX refused the login ({response.keys.get('Message', 'no reason given')}); "
                                "check HOTLINE_AMI_USERNAME / HOTLINE_AMI_SECRET and the user in manager.conf")
        self._client = client
        self._sent_pause = {}  # a new connection (maybe a restarted PBX): every pause is sent again
        self.stats.connected = True
        self.stats.connects += 1
        self._presence_wake.set()
        self._gap_closed(datetime.now(timezone.utc))
        log.info("ami.connected", extra={"source": self.source, "ami_version": client._ami_version})
        for name in (*self.event_names, *ACTION_EVENT_NAMES):
            client.send_named("Filter", self._next_id("filter"), Operation="Add", Filter=f"Event: {name}")
        resync = Resync(self._next_id("resync"), self._next_id("resync"), datetime.now(timezone.utc),
                        callback_context=self.mapper.callback_context)
        self._queue.put((generation, None, resync))  # before the actions, so it precedes their answers
        client.send_named("CoreShowChannels", resync.channels_id)
        client.send_named("QueueStatus", resync.queue_id)
        log.info("ami.resync_requested", extra={"source": self.source})
        return client

    # ------------------------------------------------------------------ outages (gaps)
    # Gap times are on the PBX's clock where it tells it (the ``Timestamp`` of the last event heard
    # before the break and of the first one after it), so a queue_log window matches its lines.
    def _pbx_clock(self, stamp: str, generation: int) -> None:
        try:
            at = datetime.fromtimestamp(float(stamp), timezone.utc)
        except (ValueError, OverflowError, OSError):
            return
        self._last_pbx_at, self._last_pbx_mono = at, time.monotonic()
        pending = self._gap_pending
        if pending is not None and generation >= pending[1]:
            self._close_gap(at)

    def _outage_started(self, reason: str) -> None:
        """The link broke: record the gap from the last moment the PBX was heard."""
        if self._outage_at is not None:
            return
        if self._last_pbx_at is not None:  # the PBX's clock, moved on by the quiet time since its last event
            self._outage_at = self._last_pbx_at + timedelta(seconds=time.monotonic() - self._last_pbx_mono)
        else:
            self._outage_at = datetime.now(timezone.utc)
        gaps.open_gap(self.source, self._outage_at, f"listener disconnected: {reason}")

    def _gap_closed(self, at: datetime) -> None:
        """Connected again: the gap ends at the first event heard now (or shortly, on our clock);
        a gap a stopped listener left open is ended too."""
        started, self._outage_at = self._outage_at, None
        first, self._first_connect = self._first_connect, False
        if started is None and not first:
            return
        self._gap_pending = (started, self._generation, time.monotonic())

    def _close_gap(self, at: datetime) -> None:
        pending, self._gap_pending = self._gap_pending, None
        if pending is None:
            return
        thread = threading.Thread(target=self._recover, args=(pending[0], at), name="ami-recover", daemon=True)
        self._threads.append(thread)  # joined like the others: it writes to the database
        thread.start()

    def _recover(self, started: datetime | None, at: datetime) -> None:
        try:
            closed = gaps.close_gaps(self.source, started=started, at=at,
                                     reason="listener disconnected")
        except Exception as exc:  # noqa: BLE001 - the database may be away; the gap stays open
            log.warning("ami.gap_not_closed", extra={"source": self.source, "reason": type(exc).__name__})
            return
        path = get_settings().ami_queue_log
        for gap_id, start in closed:
            if path is None:
                note, found = "no queue_log configured (HOTLINE_AMI_QUEUE_LOG): calls inside the gap may be missing", 0
            else:
                items, found, note = queue_log.recover(path, self.source, start, at, members=self.mapper.members)
                if items:
                    self._submit(items)
            try:
                gaps.note_recovery(gap_id, found, note)
            except Exception:  # noqa: BLE001 - the database is down: the gap stays open and is logged
                log.warning("ami.gap_not_closed", extra={"source": self.source, "reason": "database"})
            log.warning("ami.gap", extra={"source": self.source, "started": start.isoformat(), "ended": at.isoformat(),
                                          "seconds": round((at - start).total_seconds(), 1),
                                          "recovered_calls": found, "recovery": note})

    def _watch(self, client: _FrameClient) -> str:
        """Keepalive and watchdog; returns why the connection is over."""
        last_ping = time.monotonic()
        tick = max(0.02, min(0.5, self.keepalive / 4))
        while not self._stop.wait(tick):
            self._last_rx = client.last_rx
            if not client.reader_alive:
                return f"reader stopped: {client.error or 'connection closed'}"
            now = time.monotonic()
            silent = now - client.last_rx
            if silent > self.silence_factor * self.keepalive and not self._queue.full():
                return f"no data for {silent:.1f} s although we pinged every {self.keepalive:g} s"
            if now - last_ping >= self.keepalive:
                last_ping = now
                try:
                    client.send_named("Ping", self._next_id("ping"))
                except OSError as exc:
                    return f"keepalive Ping failed: {exc}"
        return "stopped"

    def _enqueue(self, item: tuple[int, datetime, list[bytes]]) -> None:
        """Called by the reader. Blocks while the applier is behind: TCP back-pressure instead
        of unbounded memory (the watchdog counts that as busy, not silent)."""
        while True:
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if self._stop.is_set():
                    break
                client = self._client
                if client is not None:
                    client.last_rx = time.monotonic()
        # Stopping with a full queue: the frames go to the disk spool, not to the floor.
        self._spool([self.mapper.to_raw(raw, item[1]) for raw in item[2]], "listener stopping")

    # ------------------------------------------------------------------ applier
    def _item_of(self, raw: bytes, at: datetime, generation: int, resync: Resync | None, *,
                 answers: bool) -> RawIn | None:
        """One frame of connection ``generation`` as a raw event, or None when it is an answer to an
        action or was taken by the pending resync (``answers``: the frame is on the resync's connection).
        Any call heard while a resync is pending is spared by it."""
        self.stats.frames_received += 1
        if isinstance(raw, CutFrame):
            self.stats.malformed += 1
            cut = self.mapper.to_raw(bytes(raw), at)
            cut.events, cut.error = [], (f"AMI frame cut in the middle: the connection closed "
                                         f"{len(raw)} bytes into it (no blank line)")
            return cut
        frame = parse_frame(raw)
        if frame.error:
            self.stats.malformed += 1
        if frame.action_id and frame.action_id.startswith(pbx_ami.ACTION_PREFIX):
            self._pbx_heard(frame)
        if frame.response is not None:
            taken = answers and resync is not None and resync.offer(frame, at)
            if not taken and frame.response.lower() == "error" and not (frame.action_id or "").startswith(
                    "hotline-login-"):  # a refused login is logged once, by the supervisor
                log.warning("ami.action_refused", extra={
                    "source": self.source, "action_id": frame.action_id,
                    "reason": frame.get("Message") or "no reason given"})
            return None
        if frame.event is not None:
            self.stats.events_received += 1
            self.mapper.learn(frame)
            stamp = frame.fields.get("Timestamp")
            if stamp:
                self._pbx_clock(stamp, generation)
            if answers and resync is not None and resync.offer(frame, at):
                return None
        item = self.mapper.to_raw(raw, at, frame)
        if resync is not None and item.provider_key:
            # heard after the snapshot was asked for: the snapshot may not close it
            resync.spare.add(item.provider_key)
            uid = frame.fields.get("Uniqueid")
            if uid:
                resync.spare.add(uid)
        return item

    def _finish_resync(self, resync: Resync, items: list[RawIn]) -> None:
        if resync.failed:
            log.error("ami.resync_failed", extra={"source": self.source, "reason": resync.failed})
            return
        snap = resync.to_raw(self.source)
        items.append(snap)
        self.stats.resyncs += 1
        log.info("ami.resynced", extra={"source": self.source, "live_calls": len(snap.events[0].live)})

    def _apply_loop(self) -> None:
        resync: Resync | None = None
        resync_gen = 0
        resync_started = 0.0
        last_spool_check = time.monotonic()
        while True:
            stopping = self._stop.is_set()
            chunks = self._take(stopping)
            if stopping and not chunks:
                break
            items: list[RawIn] = []
            for generation, at, payload in chunks:
                if at is None:
                    assert isinstance(payload, Resync)
                    if resync is not None:
                        log.warning("ami.resync_abandoned", extra={"source": self.source,
                                                                   "reason": "connection lost before the answer"})
                    resync, resync_gen, resync_started = payload, generation, time.monotonic()
                    continue
                assert isinstance(payload, list)
                for raw in payload:
                    item = self._item_of(raw, at, generation, resync, answers=generation == resync_gen)
                    if item is not None:
                        items.append(item)
                if resync is not None and (resync.done or resync.failed):
                    self._finish_resync(resync, items)
                    resync = None
            if self._gap_pending is not None and time.monotonic() - self._gap_pending[2] > self.gap_close_after:
                self._close_gap(datetime.now(timezone.utc))  # no event with a time since the reconnect
            if resync is not None and time.monotonic() - resync_started > self.resync_timeout:
                log.error("ami.resync_failed", extra={
                    "source": self.source,
                    "reason": f"no complete answer to CoreShowChannels/QueueStatus within {self.resync_timeout:g} s"})
                resync = None
            if items:
                if stopping:
                    self._spool(items, "listener stopping")
                else:
                    self._submit(items)
            if not stopping and time.monotonic() - last_spool_check > self.spool_check_seconds:
                last_spool_check = time.monotonic()
                self._drain_spool()
                self._adopt_waiting()

    def _take(self, stopping: bool) -> list[tuple[int, datetime, list[bytes]] | tuple[int, None, Resync]]:
        """Up to ``batch_size`` frames, waiting at most ``batch_wait`` once something arrived."""
        chunks: list[tuple[int, datetime, list[bytes]] | tuple[int, None, Resync]] = []
        try:
            chunks.append(self._queue.get_nowait() if stopping else self._queue.get(timeout=0.1))
        except queue.Empty:
            return chunks
        frames = len(chunks[0][2]) if chunks[0][1] is not None else 0
        deadline = time.monotonic() + self.batch_wait
        while frames < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                if stopping or remaining <= 0:
                    item = self._queue.get_nowait()
                else:
                    item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            chunks.append(item)
            if item[1] is not None:
                frames += len(item[2])
        return chunks

    def _submit(self, items: list[RawIn]) -> None:
        with self._submit_lock:
            self._submit_locked(items)

    def _submit_locked(self, items: list[RawIn]) -> None:
        self.stats.submitted += len(items)
        try:
            result = self._submit_fn(items)
        except Exception as exc:  # keep the events, keep listening
            log.exception("ami.apply_failed", extra={"source": self.source, "events": len(items)})
            self._spool(items, f"{type(exc).__name__}")
            return
        if result is None:
            self.stats.spooled += len(items)
            return
        self.stats.stored += result.stored
        self.stats.duplicates += result.duplicates
        self.stats.applied += result.applied
        self.stats.dead += result.dead
        with self.applied_event:
            self.applied_event.notify_all()

    def _spool(self, items: list[RawIn], why: str) -> None:
        kept = spool.keep(items)  # the disk spool, else memory (logged there); never raises for the disk
        if kept.safe:
            self.stats.spooled += len(items)
            log.warning("ami.spooled", extra={"source": self.source, "events": len(items), "reason": why,
                                              "kept": kept.where})

    def _drain_spool(self) -> None:
        try:
            if spool.held() or spool.pending_files():
                replayed = spool.drain()
                if replayed:
                    log.info("ami.spool_replayed", extra={"source": self.source, "events": replayed})
        except Exception:  # try again later
            log.exception("ami.spool_drain_failed", extra={"source": self.source})

    def _adopt_waiting(self) -> None:
        """Events another listener stored for a call this one (or a third) created at the same
        moment: a trunk overflow's link to the other PBX's half (``service.adopt_waiting``)."""
        from hotline.db import session_scope
        from hotline.ingest import service

        try:
            with self._submit_lock, session_scope() as session:
                result = service.adopt_waiting(session)
                if result.touched:
                    session.commit()
                    service.publish_updates(session, result.touched, result.calls)
            self._adopt_failed = False
        except Exception as exc:  # noqa: BLE001 - the database is away: the next round will do (logged once a streak)
            if not self._adopt_failed:
                log.warning("ami.adopt_waiting_failed", extra={"source": self.source, "error": type(exc).__name__})
            self._adopt_failed = True

    def wait_applied(self, predicate: Callable[[ListenerStats], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(stats)`` holds (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while not predicate(self.stats):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self.applied_event:
                self.applied_event.wait(min(0.05, remaining))
        return True


__all__ = ["AmiListener", "AmiLoginError", "ListenerStats"]
