"""A local TCP server speaking the AMI wire protocol, for tests, the demo and benchmarks.

- ``AmiServer`` answers Login (success / failure), Ping, Events, Filter, CoreShowChannels,
  QueueStatus and Logoff like Asterisk does, can replay a capture byte for byte (the banner from
  the file on connect, the file's rest, which starts with its login response, after Login),
  push frames or a lazy stream of frames to the connected clients, drop every connection in the
  middle of a call, and answer the resync actions with given live channels.
- ``synthetic_call`` renders a call shaped exactly like the captures (same frames, same order)
  with fresh Linkedids, caller, queue, agent, wait and talk time.
- ``DemoPbx`` places a realistic simulated call every ~``interval`` seconds and answers the
  resync actions with the calls it still has.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from hotline.ingest.providers.asterisk.translator import FRAME_END, parse_frame, split_frames

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CHUNK = 1 << 16


# ---------------------------------------------------------------------- captures
@dataclass
class Capture:
    """A recorded AMI session: banner line, then messages (each ending ``\\r\\n\\r\\n``)."""

    banner: bytes  # with its ``\r\n``
    rest: bytes  # everything after the banner, byte for byte

    @classmethod
    def load(cls, source: str | Path | bytes) -> Capture:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        cut = data.find(b"\r\n")
        if cut < 0 or not data.startswith(b"Asterisk Call Manager/"):
            raise ValueError("not an AMI capture: it must start with the 'Asterisk Call Manager/…' banner line")
        return cls(data[: cut + 2], data[cut + 2:])

    @property
    def frames(self) -> list[bytes]:
        return split_frames(self.rest)[0]

    def event_frames(self) -> list[bytes]:
        """The ``Event:`` messages only (no login response, no action responses)."""
        return [f for f in self.frames if f.startswith(b"Event:")]


def chunk_frames(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    """Cut a byte stream into pieces that end on message boundaries (so answers can go between)."""
    start, total = 0, len(data)
    while start < total:
        if total - start <= size:
            yield data[start:]
            return
        end = data.rfind(FRAME_END, start, start + size)
        if end < 0:
            end = data.find(FRAME_END, start + size)
            if end < 0:
                yield data[start:]
                return
        end += len(FRAME_END)
        yield data[start:end]
        start = end


def message(*pairs: tuple[str, str]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n").encode("utf-8")


# ---------------------------------------------------------------------- one client connection
class _Conn:
    def __init__(self, server: AmiServer, sock: socket.socket):
        self.server = server
        self.sock = sock
        self.authed = False
        self.closed = threading.Event()
        self._cv = threading.Condition()
        self._urgent: collections.deque[bytes] = collections.deque()
        self._bulk: collections.deque[Iterator[bytes]] = collections.deque()
        self._close_after = False

    def start(self) -> None:
        threading.Thread(target=self._read, name="ami-sim-read", daemon=True).start()
        threading.Thread(target=self._write, name="ami-sim-write", daemon=True).start()

    def answer(self, data: bytes, *, close: bool = False) -> None:
        with self._cv:
            self._urgent.append(data)
            self._close_after = self._close_after or close
            self._cv.notify()

    def stream(self, blocks: Iterable[bytes]) -> None:
        with self._cv:
            self._bulk.append(iter(blocks))
            self._cv.notify()

    def close(self) -> None:
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._cv:
            self._cv.notify_all()
        self.server._forget(self)

    def _write(self) -> None:
        try:
            while not self.closed.is_set():
                with self._cv:
                    while not self._urgent and not self._bulk and not self.closed.is_set():
                        if self._close_after:
                            break
                        self._cv.wait(0.5)
                    data = self._urgent.popleft() if self._urgent else None
                    if data is None and self._close_after and not self._bulk:
                        break
                    source = self._bulk[0] if data is None and self._bulk else None
                if data is None and source is not None:
                    data = next(source, None)
                    if data is None:
                        with self._cv:
                            if self._bulk and self._bulk[0] is source:
                                self._bulk.popleft()
                        continue
                if data:
                    self.sock.sendall(data)
                    self.server.bytes_sent += len(data)
        except OSError:
            pass
        finally:
            if not self.closed.is_set():
                self.close()

    def _read(self) -> None:
        buf = b""
        try:
            self.sock.sendall(self.server.banner())
            while not self.closed.is_set():
                chunk = self.sock.recv(CHUNK)
                if not chunk:
                    break
                buf += chunk
                frames, buf = split_frames(buf)
                for raw in frames:
                    self.server._action(self, parse_frame(raw).fields)
        except OSError:
            pass
        finally:
            if not self.closed.is_set():
                self.close()


# ---------------------------------------------------------------------- the server
class AmiServer:
    """A real TCP server on ``host`` that speaks enough AMI for the listener."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, username: str, secret: str,
                 replay: str | Path | bytes | None = None):
        self.host = host
        self._port = port
        self.username = username
        self.secret = secret
        self.capture = Capture.load(replay) if replay is not None else None
        self.logins = 0
        self.failed_logins = 0
        self.actions: list[dict[str, str]] = []
        #: ``Originate``: Channel → the ``Reason`` its OriginateResponse gives (4 answered; 0 no such
        #: channel, 1 hung up, 3 no answer, 5 busy, 8 congestion); others are answered
        self.originate_reasons: dict[str, str] = {}
        #: when set, ``Originate`` is refused with this message (as without the originate permission)
        self.originate_refusal: str | None = None
        self.originate_delay = 0.05
        self._originated = 0
        self.bytes_sent = 0
        self.live_channels: list[dict[str, str]] = []
        self.queue_entries: list[dict[str, str]] = []
        self._resync_frames: tuple[list[bytes], list[bytes]] | None = None
        self._pending: list[Iterable[bytes]] = []
        self._conns: set[_Conn] = set()
        self._lock = threading.Lock()
        self._logged_in = threading.Condition(self._lock)
        self._sock: socket.socket | None = None
        self._stopped = threading.Event()

    # -- lifecycle
    def start(self) -> AmiServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(16)
        self._port = sock.getsockname()[1]
        self._sock = sock
        self._stopped.clear()
        threading.Thread(target=self._accept, name="ami-sim-accept", daemon=True).start()
        return self

    @property
    def port(self) -> int:
        return self._port

    def stop(self) -> None:
        self._stopped.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        self.drop()

    def __enter__(self) -> AmiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(self, client)
            with self._lock:
                self._conns.add(conn)
            conn.start()

    def _forget(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.discard(conn)

    # -- what tests and benchmarks drive
    def banner(self) -> bytes:
        return self.capture.banner if self.capture is not None else BANNER

    @property
    def clients(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns if c.authed)

    def wait_for_login(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``count`` logins have succeeded in total."""
        deadline = time.monotonic() + timeout
        with self._logged_in:
            while self.logins < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._logged_in.wait(remaining)
        return True

    def push(self, data: bytes | Iterable[bytes]) -> None:
        """Send messages to every logged-in client (or to the next one to log in)."""
        blocks: Iterable[bytes] = chunk_frames(data) if isinstance(data, bytes) else data
        with self._lock:
            targets = [c for c in self._conns if c.authed]
            if not targets:
                self._pending.append(blocks)
                return
        if len(targets) > 1 and not isinstance(data, bytes):
            data = b"".join(blocks)
        for conn in targets:
            conn.stream(chunk_frames(data) if isinstance(data, bytes) else blocks)

    def drop(self) -> None:
        """Cut every connection now, as a crashing PBX or a broken network would."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close()

    def set_live(self, channels: list[dict[str, str]] | None = None,
                 entries: list[dict[str, str]] | None = None) -> None:
        """What the next ``CoreShowChannels`` / ``QueueStatus`` answer lists."""
        self.live_channels = list(channels or [])
        self.queue_entries = list(entries or [])
        self._resync_frames = None

    def set_live_from_capture(self, path: str | Path | bytes) -> None:
        """Answer the resync actions with the list events of a recorded resync (ActionIDs rewritten)."""
        cap = Capture.load(path)
        channels = [f for f in cap.frames if f.startswith(b"Event: CoreShowChannel\r\n")]
        queue = [f for f in cap.frames if re.match(rb"Event: Queue(Params|Member|Entry)\r\n", f)]
        self._resync_frames = (channels, queue)

    # -- actions
    def _action(self, conn: _Conn, fields: dict[str, str]) -> None:
        name = (fields.get("Action") or "").lower()
        self.actions.append(fields)
        aid = fields.get("ActionID")
        head = [("ActionID", aid)] if aid is not None else []
        if name == "login":
            if fields.get("Username") == self.username and fields.get("Secret") == self.secret:
                self._logged_in_conn(conn, head)
            else:
                with self._lock:
                    self.failed_logins += 1
                conn.answer(message(("Response", "Error"), *head, ("Message", "Authentication failed")), close=True)
            return
        if not conn.authed:
            conn.answer(message(("Response", "Error"), *head, ("Message", "Permission denied")))
            return
        handler = {
            "ping": self._ping, "events": self._events, "filter": self._filter, "logoff": self._logoff,
            "coreshowchannels": self._core_show_channels, "queuestatus": self._queue_status,
            "originate": self._originate,
        }.get(name)
        if handler is None:
            conn.answer(message(("Response", "Error"), *head, ("Message", "Invalid/unknown command")))
            return
        handler(conn, head, fields)

    def _logged_in_conn(self, conn: _Conn, head: list[tuple[str, str]]) -> None:
        if self.capture is not None:
            conn.stream(chunk_frames(self.capture.rest))  # starts with the recorded login response
        else:
            conn.answer(message(("Response", "Success"), *head, ("Message", "Authentication accepted")))
            conn.answer(message(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted")))
        with self._lock:
            conn.authed = True
            pending, self._pending = self._pending, []
            self.logins += 1
            self._logged_in.notify_all()
        for blocks in pending:
            conn.stream(blocks)

    def _ping(self, conn: _Conn, head: list[tuple[str, str]], fields: dict[str, str]) -> None:
        conn.answer(message(("Response", "Success"), *head, ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")))

    def _events(self, conn: _Conn, head: list[tuple[str, str]], fields: dict[str, str]) -> None:
        conn.answer(message(("Response", "Success"), *head, ("Events", "On")))

    def _filter(self, conn: _Conn, head: list[tuple[str, str]], fields: dict[str, str]) -> None:
        conn.answer(message(("Response", "Success"), *head, ("Message", "Filter Added")))

    def _logoff(self, conn: _Conn, head: list[tuple[str, str]], fields: dict[str, str]) -> None:
        conn.answer(message(("Response", "Goodbye"), *head, ("Message", "Thanks for all the fish.")), close=True)

    def _originate(self, conn: _Conn, head: list[tuple[str, str]], fields: dict[str, str]) -> None:
        """Asynchronous ``Originate`` as Asterisk 22 answers it: queued at once, then one
        ``OriginateResponse`` event (Success with Reason 4, or Failure with the dial's reason)."""
        if self.originate_refusal is not None:
            conn.answer(message(("Response", "Error"), *head, ("Message", self.originate_refusal)))
            return
        if not fields.get("Channel") or not (fields.get("Application") or fields.get("Exten")):
            conn.answer(message(("Response", "Error"), *head, ("Message", "Channel not specified")))
            return
        conn.answer(message(("Response", "Success"), *head, ("Message", "Originate successfully queued")))
        reason = self.originate_reasons.get(fields["Channel"], "4")
        with self._lock:
            self._originated += 1
            uid = f"{int(time.time())}.{9000 + self._originated}"
        where = ([("Application", fields.get("Application", "")), ("Data", fields.get("Data", ""))]
                 if fields.get("Application") else
                 [("Context", fields.get("Context", "")), ("Exten", fields.get("Exten", ""))])
        event = message(("Event", "OriginateResponse"), ("Privilege", "call,all"),
                        ("Timestamp", f"{time.time():.6f}"), *head,
                        ("Response", "Success" if reason == "4" else "Failure"),
                        ("Channel", fields["Channel"]), *where, ("Reason", reason),
                        ("Uniqueid", uid if reason == "4" else "<null>"),
                        ("CallerIDNum", fields.get("CallerID", "<unknown>")), ("CallerIDName", "<unknown>"))

        def later() -> None:
            time.sleep(self.originate_delay)
            if not conn.closed.is_set():
                conn.answer(event)

        threading.Thread(target=later, name="ami-sim-originate", daemon=True).start()

    def _list(self, conn: _Conn, head: list[tuple[str, str]], intro: str, items: list[bytes], done: str) -> None:
        aid = dict(head).get("ActionID", "")
        out = [message(("Response", "Success"), *head, ("EventList", "start"), ("Message", intro))]
        for item in items:
            out.append(re.sub(rb"ActionID: [^\r\n]*", b"ActionID: " + aid.encode(), item) + FRAME_END)
        out.append(message(("Event", done), *head, ("EventList", "Complete"), ("ListItems", str(len(items)))))
        conn.answer(b"".join(out))

    def _core_show_channels(self, conn: _Conn, head: list[tuple[str, str]], fields: dict[str, str]) -> None:
        if self._resync_frames is not None:
            items = self._resync_frames[0]
        else:
            items = [message(("Event", "CoreShowChannel"), ("ActionID", ""), *ch.items()).rstrip(b"\r\n")
                     for ch in self.current_channels()]
        self._list(conn, head, "Channels will follow", items, "CoreShowChannelsComplete")

    def _queue_status(self, conn: _Conn, head: list[tuple[str, str]], fields: dict[str, str]) -> None:
        if self._resync_frames is not None:
            items = self._resync_frames[1]
        else:
            items = [message(("Event", "QueueEntry"), *e.items(), ("ActionID", "")).rstrip(b"\r\n")
                     for e in self.current_entries()]
        self._list(conn, head, "Queue status will follow", items, "QueueStatusComplete")

    def current_channels(self) -> list[dict[str, str]]:
        return self.live_channels

    def current_entries(self) -> list[dict[str, str]]:
        return self.queue_entries


def live_call(linkedid: str, *, caller: str = "0912345678", queue: str | None = "hotline", wait: int = 5,
              exten: str = "1900", answered: bool = False) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """CoreShowChannel and QueueEntry fields for one call the PBX still has."""
    channel = f"PJSIP/trunk-{linkedid.replace('.', '')}"
    caller_ch = {
        "Channel": channel, "ChannelState": "6", "ChannelStateDesc": "Up", "CallerIDNum": caller,
        "CallerIDName": "", "Context": "hotline-in", "Exten": exten, "Priority": "4", "Uniqueid": linkedid,
        "Linkedid": linkedid, "Application": "Queue" if queue and not answered else "AppQueue",
        "ApplicationData": f"{queue},,,,60" if queue else "", "Duration": time.strftime("%H:%M:%S", time.gmtime(wait)),
        "BridgeId": "b-" + linkedid if answered else "",
    }
    entries = [] if answered or not queue else [{
        "Queue": queue, "Position": "1", "Channel": channel, "Uniqueid": linkedid, "CallerIDNum": caller,
        "CallerIDName": "", "Wait": str(wait), "Priority": "0",
    }]
    return [caller_ch], entries


# ---------------------------------------------------------------------- synthetic calls
_ID = re.compile(rb"\b(17954241(?:41|65|70))\.(\d+)\b")
_DATE = re.compile(rb"\b2026-11-23 08:5\d:\d\d\b")
_QUEUE = re.compile(rb"(Queue: |Data: )hotline(?:-abandon)?(?=[\r,])")
_AGENT = re.compile(rb"Local/agent[12]@agents/n")
_MEMBER = re.compile(rb"(MemberName: |Name: )Agent (?:One|Two)")
_HOLD = re.compile(rb"HoldTime: \d+")
_TALK = re.compile(rb"TalkTime: \d+")
_BRIDGE = re.compile(rb"BridgeUniqueid: [0-9a-fA-F-]+")
_EVENT_HEAD = re.compile(rb"^(Event: [^\r]*\r\n(?:Privilege: [^\r]*\r\n)?)")
_SKIP = (b"Event: FullyBooted", b"Event: SuccessfulAuth", b"Event: OriginateResponse")


@dataclass
class _Template:
    body: bytes  # every frame, with placeholders, each followed by \r\n\r\n
    frames: list[bytes]
    phases: list[int]
    ids: int  # number of distinct channel ids (placeholders \x00I0\x00 …)
    id_epoch_offset: list[int]


def _build_template(raw: bytes, phase_marks: list[tuple[bytes, bytes | None]]) -> _Template:
    frames = [f for f in Capture.load(raw).event_frames() if not f.startswith(_SKIP)]
    ids: dict[bytes, int] = {}
    offsets: list[int] = []
    base_epoch: int | None = None

    def sub_id(m: re.Match[bytes]) -> bytes:
        nonlocal base_epoch
        whole = m.group(0)
        if whole not in ids:
            epoch = int(m.group(1))
            base_epoch = epoch if base_epoch is None else base_epoch
            ids[whole] = len(ids)
            offsets.append(epoch - base_epoch)
        return b"\x00I%d\x00" % ids[whole]

    out: list[bytes] = []
    phases: list[int] = []
    phase = 0
    for f in frames:
        if phase < len(phase_marks):
            event, channel_part = phase_marks[phase]
            if f.startswith(event) and (channel_part is None or channel_part in f):
                phase += 1
        f = _ID.sub(sub_id, f)
        f = _DATE.sub(b"\x00DATE\x00", f)
        f = _QUEUE.sub(rb"\1" + b"\x00QUEUE\x00", f)
        f = _AGENT.sub(b"\x00AGENT\x00", f)
        f = _MEMBER.sub(rb"\1" + b"\x00MEMBER\x00", f)
        f = _HOLD.sub(b"HoldTime: \x00HOLD\x00", f)
        f = _TALK.sub(b"TalkTime: \x00TALK\x00", f)
        f = _BRIDGE.sub(b"BridgeUniqueid: \x00BRIDGE\x00", f)  # a fresh bridge per call, as Asterisk does
        f = f.replace(b"0901234567", b"\x00CALLER\x00").replace(b"Nguyen Van A", b"\x00NAME\x00")
        f = _EVENT_HEAD.sub(rb"\1" + b"Timestamp: \x00TS\x00\r\n", f, count=1)
        out.append(f)
        phases.append(phase)
    return _Template(b"".join(f + FRAME_END for f in out), out, phases, len(ids), offsets)


_TEMPLATES: dict[str, _Template] = {}
_template_lock = threading.Lock()


def _template(outcome: str) -> _Template:
    with _template_lock:
        if outcome not in _TEMPLATES:
            files = resources.files("hotline.ingest.providers.asterisk") / "templates"
            marks: list[tuple[bytes, bytes | None]]
            if outcome == "answered":
                marks = [(b"Event: QueueCallerLeave", None), (b"Event: SoftHangupRequest", None)]
            elif outcome == "abandoned":
                marks = [(b"Event: AgentRingNoAnswer", None), (b"Event: SoftHangupRequest", b"caller-sim")]
            else:
                raise ValueError("outcome must be 'answered' or 'abandoned'")
            _TEMPLATES[outcome] = _build_template((files / f"{outcome}.txt").read_bytes(), marks)
        return _TEMPLATES[outcome]


_sequence = itertools.count(1)
_sequence_lock = threading.Lock()


@dataclass
class SyntheticCall:
    linkedid: str
    outcome: str
    caller: str
    queue: str
    agent: str
    wait: int
    talk: int
    frames: list[tuple[float, bytes]] = field(default_factory=list)  # (seconds after start, message)

    def stream(self) -> bytes:
        return b"".join(frame for _, frame in self.frames)


def _ids_for(count: int, epoch: int, offsets: list[int]) -> list[bytes]:
    with _sequence_lock:
        first = next(_sequence)
        for _ in range(count - 1):
            next(_sequence)
    return [f"{epoch + offsets[i]}.{first + i}".encode() for i in range(count)]


def synthetic_call(*, outcome: str = "answered", caller: str = "0901234567", name: str = "Nguyễn Văn A",
                   queue: str = "hotline", agent: str = "Local/agent1@agents/n", member: str = "Tư vấn viên",
                   wait: int = 2, talk: int = 6, start: float | None = None) -> SyntheticCall:
    """One call shaped like the captures, with fresh Linkedids and the given facts.

    Each message carries a ``Timestamp:`` header (as with ``timestampevents=yes``) placed at the
    time it would happen: phase 0 at ``start``, the answer / ring-no-answer at ``start + wait``
    (``wait / 2`` for an abandoned call's missed ring), the hang-up at ``start + wait + talk``.
    """
    tpl = _template(outcome)
    start = time.time() if start is None else start
    ids = _ids_for(tpl.ids, int(start), tpl.id_epoch_offset)
    if outcome == "answered":
        phase_at = (0.0, float(wait), float(wait + talk))
    else:
        phase_at = (0.0, wait / 2, float(wait))
    date = datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d %H:%M:%S").encode()
    values = {
        b"\x00CALLER\x00": caller.encode(), b"\x00NAME\x00": name.encode(), b"\x00QUEUE\x00": queue.encode(),
        b"\x00AGENT\x00": agent.encode(), b"\x00MEMBER\x00": member.encode(), b"\x00HOLD\x00": str(wait).encode(),
        b"\x00TALK\x00": str(talk).encode(), b"\x00DATE\x00": date,
        b"\x00BRIDGE\x00": str(uuid.uuid4()).encode(),
    }
    frames: list[tuple[float, bytes]] = []
    for i, (tpl_frame, phase) in enumerate(zip(tpl.frames, tpl.phases, strict=True)):
        f = tpl_frame
        for k, v in values.items():
            if k in f:
                f = f.replace(k, v)
        for n in range(tpl.ids):
            key = b"\x00I%d\x00" % n
            if key in f:
                f = f.replace(key, ids[n])
        offset = phase_at[phase]
        f = f.replace(b"\x00TS\x00", b"%.6f" % (start + offset + i * 1e-5))
        frames.append((offset, f + FRAME_END))
    return SyntheticCall(ids[0].decode(), outcome, caller, queue, agent, wait, talk, frames)


def synthetic_stream(events: int, *, abandon_every: int = 4, queue: str = "hotline",
                     agents: Iterable[str] = ("Local/agent1@agents/n",), start: float | None = None,
                     block_calls: int = 20) -> Iterator[bytes]:
    """Back-to-back synthetic calls until at least ``events`` messages; yields blocks of whole messages."""
    agents = list(agents)
    t = time.time() if start is None else start
    sent = 0
    n = 0
    block: list[bytes] = []
    while sent < events:
        outcome = "abandoned" if abandon_every and n % abandon_every == abandon_every - 1 else "answered"
        call = synthetic_call(outcome=outcome, caller=f"09{n % 100_000_000:08d}", queue=queue,
                              agent=agents[n % len(agents)], wait=3 + n % 20, talk=30 + n % 300, start=t)
        block.append(call.stream())
        sent += len(call.frames)
        n += 1
        t += 0.01
        if len(block) >= block_calls:
            yield b"".join(block)
            block = []
    if block:
        yield b"".join(block)


# ---------------------------------------------------------------------- the demo PBX
_MOBILE_PREFIXES = ("032", "033", "034", "035", "036", "037", "038", "039", "056", "058", "070", "076",
                    "077", "078", "079", "081", "082", "083", "084", "085", "086", "088", "089", "090",
                    "091", "093", "094", "096", "097", "098")
_WITHHELD = ("anonymous", "Restricted", "<unknown>")
_NAMES = ("Nguyễn Thị Hoa", "Trần Văn Nam", "Lê Thị Mai", "Phạm Minh Tuấn", "Hoàng Thị Lan", "Vũ Đức Anh",
          "Đặng Thị Thu", "Bùi Văn Hùng", "Đỗ Thị Ngọc", "Hồ Văn Long")


def random_caller(rng: random.Random) -> tuple[str, str]:
    """A made-up Vietnamese mobile number and name; about one call in eight withholds its ID."""
    if rng.random() < 0.125:
        return rng.choice(_WITHHELD), ""
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10_000_000):07d}", rng.choice(_NAMES)


class DemoPbx(AmiServer):
    """A simulated PBX placing a call every ~``interval`` seconds into ``queue``: answered by one
    of ``agents`` after a few seconds, or abandoned; talk from a few seconds to a few minutes."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, username: str, secret: str, interval: float,
                 queue: str, agents: list[str], seed: int | None = None, max_talk: int = 240):
        super().__init__(host, port, username=username, secret=secret)
        if interval <= 0:
            raise ValueError("interval must be a positive number of seconds")
        if not agents:
            raise ValueError("the demo PBX needs at least one agent interface, e.g. Local/agent1@agents/n")
        self.interval = interval
        self.queue = queue
        self.agents = list(agents)
        self.max_talk = max_talk
        self.rng = random.Random(seed)
        self.calls_placed = 0
        self._heap: list[tuple[float, int, bytes, str, bool]] = []
        self._live: dict[str, tuple[SyntheticCall, float]] = {}
        self._busy_until: dict[str, float] = {}  # agent → when their current call ends (monotonic)
        self._seq = itertools.count()
        self._demo_lock = threading.Lock()
        self._demo_thread: threading.Thread | None = None

    def start(self) -> DemoPbx:
        super().start()
        self._demo_thread = threading.Thread(target=self._run, name="ami-demo-pbx", daemon=True)
        self._demo_thread.start()
        return self

    def place_call(self) -> SyntheticCall:
        """A new caller; a counsellor is on one call at a time, so when every counsellor is still
        busy by the time the caller has waited, the caller gives up (abandoned)."""
        caller, name = random_caller(self.rng)
        wait = self.rng.randint(2, 20)
        now = time.monotonic()
        with self._demo_lock:
            free = [a for a in self.agents if self._busy_until.get(a, 0.0) <= now + wait]
        answered = bool(free) and self.rng.random() < 0.85
        agent = self.rng.choice(free) if answered else self.rng.choice(self.agents)
        talk = self.rng.randint(5, self.max_talk) if answered else 0
        call = synthetic_call(outcome="answered" if answered else "abandoned", caller=caller, name=name,
                              queue=self.queue, agent=agent, member="Tư vấn viên", wait=wait, talk=talk)
        with self._demo_lock:
            if answered:
                self._busy_until[agent] = now + wait + talk + 1
            self._live[call.linkedid] = (call, time.time())
            last = len(call.frames) - 1
            for i, (offset, frame) in enumerate(call.frames):
                heapq.heappush(self._heap, (now + offset, next(self._seq), frame, call.linkedid, i == last))
            self.calls_placed += 1
        return call

    def _run(self) -> None:
        next_call = time.monotonic() + min(1.0, self.interval)
        while not self._stopped.is_set():
            now = time.monotonic()
            if now >= next_call:
                self.place_call()
                next_call = now + self.interval * self.rng.uniform(0.6, 1.4)
            due: list[bytes] = []
            with self._demo_lock:
                while self._heap and self._heap[0][0] <= now:
                    _, _, frame, linkedid, last = heapq.heappop(self._heap)
                    due.append(frame)
                    if last:
                        self._live.pop(linkedid, None)
            if due and self.clients:
                self.push([b"".join(due)])
            self._stopped.wait(0.05)

    def live_linkedids(self) -> list[str]:
        """The calls the PBX has right now (what its resync answer lists)."""
        with self._demo_lock:
            return list(self._live)

    def current_channels(self) -> list[dict[str, str]]:
        with self._demo_lock:
            live = list(self._live.values())
        channels: list[dict[str, str]] = []
        for call, started in live:
            age = int(time.time() - started)
            answered = call.outcome == "answered" and age >= call.wait
            channels += live_call(call.linkedid, caller=call.caller, queue=call.queue, wait=age,
                                  answered=answered)[0]
        return channels

    def current_entries(self) -> list[dict[str, str]]:
        with self._demo_lock:
            live = list(self._live.values())
        entries: list[dict[str, str]] = []
        for call, started in live:
            age = int(time.time() - started)
            if not (call.outcome == "answered" and age >= call.wait):
                entries += live_call(call.linkedid, caller=call.caller, queue=call.queue, wait=age)[1]
        return entries


__all__ = ["AmiServer", "BANNER", "Capture", "DemoPbx", "SyntheticCall", "chunk_frames", "live_call", "message",
           "random_caller", "synthetic_call", "synthetic_stream"]
