"""One bus subscription per centre per web process, fanned out to every connected screen.

Each message gets a per-centre sequence number (the SSE ``id:``) and is kept in a short ring
buffer so a screen that reconnects with ``Last-Event-ID`` catches up on what it missed.

With Redis the number comes from Redis itself, keyed by a digest of the message: every web
process that receives the same published message gives it the same number, so a browser may
reconnect to any process.  Without Redis (the demo, one process) numbers and ring stay in memory.

Memory and work stay bounded whatever the number of screens: each message is framed as its SSE
bytes once per web process (``Item.data``), not once per screen, and handed to each event loop
once (one wake-up per loop, not per screen); every screen is sent that same bytes object.  The
keep-alive comment is one timer per event loop (``PING`` into every screen's queue every
``HEARTBEAT_SECONDS``), not a timer armed and cancelled by each screen at each message.  Messages
that arrive within ``BATCH_WAIT`` of the first (or while the feed thread is busy) are taken
together, up to ``BATCH_MAX``: numbered in one Redis round trip, handed to each loop in one
wake-up and written to each screen in one write, so a backlog shrinks instead of growing when the
process is busy, and a screen costs one wake-up and one write per batch, not per message.  The ring
keeps ``RING_SIZE`` messages per centre, and each screen's queue holds at most ``QUEUE_SIZE`` items.  A screen that falls that far behind gets
a ``resync`` event and its stream ends; its browser reconnects with ``Last-Event-ID`` and catches
up from the ring, or, when the ring no longer holds what it missed, gets ``resync`` again and
reloads what it shows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hotline import bus

log = logging.getLogger(__name__)

RING_SIZE = 200
QUEUE_SIZE = 256
RING_TTL_SECONDS = 3600
BATCH_WAIT = 0.02  # seconds the feed waits after a message for others to go out with it
BATCH_MAX = 64  # messages numbered and handed on together when they arrive faster than they are sent
HEARTBEAT_SECONDS = 15.0  # a comment line on every stream, so proxies and browsers keep it open

_ASSIGN = """
local seq = redis.call('GET', KEYS[1])
if seq then return tonumber(seq) end
seq = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], seq, 'EX', ARGV[3])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[2]) + 1))
redis.call('EXPIRE', KEYS[3], ARGV[3])
return seq
"""


class MemoryRing:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq: dict[int, int] = {}
        self._items: dict[int, deque[tuple[int, dict[str, Any]]]] = {}

    def assign(self, centre_id: int, message: dict[str, Any]) -> int:
        with self._lock:
            seq = self._seq.get(centre_id, 0) + 1
            self._seq[centre_id] = seq
            self._items.setdefault(centre_id, deque(maxlen=RING_SIZE)).append((seq, message))
            return seq

    def assign_many(self, centre_id: int, messages: tuple[dict[str, Any], ...]) -> list[int]:
        return [self.assign(centre_id, message) for message in messages]

    def current(self, centre_id: int) -> int:
        with self._lock:
            return self._seq.get(centre_id, 0)

    def since(self, centre_id: int, last: int) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            return [(s, m) for s, m in self._items.get(centre_id, ()) if s > last]


class RedisRing:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._script = client.register_script(_ASSIGN)

    def assign(self, centre_id: int, message: dict[str, Any]) -> int:
        return self.assign_many(centre_id, (message,))[0]

    def assign_many(self, centre_id: int, messages: tuple[dict[str, Any], ...]) -> list[int]:
        """Numbers for messages in order, in one round trip (a pipeline of the script)."""
        base = f"hotline:live:{centre_id}"
        pipe = self.client.pipeline(transaction=False)
        for message in messages:
            data = json.dumps(message, sort_keys=True, default=str)
            digest = hashlib.sha256(data.encode()).hexdigest()
            # The ring member carries its digest, so identical messages are stored once.
            self._script(keys=[f"{base}:msg:{digest}", f"{base}:seq", f"{base}:ring"],
                         args=[data, RING_SIZE, RING_TTL_SECONDS], client=pipe)
        return [int(seq) for seq in pipe.execute()]

    def current(self, centre_id: int) -> int:
        return int(self.client.get(f"hotline:live:{centre_id}:seq") or 0)

    def since(self, centre_id: int, last: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self.client.zrangebyscore(f"hotline:live:{centre_id}:ring", f"({last}", "+inf", withscores=True)
        return [(int(score), json.loads(member)) for member, score in rows]


def make_ring() -> MemoryRing | RedisRing:
    client = bus._redis()
    return RedisRing(client) if client is not None else MemoryRing()


def sse(seq: int, message: dict[str, Any]) -> bytes:
    """One message as a server-sent event, UTF-8 bytes ready for the socket."""
    data = json.dumps(message, ensure_ascii=False, default=str)
    return f"id: {seq}\nevent: {message.get('type', 'message')}\ndata: {data}\n\n".encode()


@dataclass(frozen=True)
class Item:
    """A message with its sequence number and its SSE bytes, shared by every screen."""

    seq: int
    message: dict[str, Any]
    data: bytes


PING = Item(0, {}, b": ping\n\n")  # the keep-alive comment; never counted as a message


@dataclass(eq=False)
class Listener:
    loop: asyncio.AbstractEventLoop
    board: bool = False  # a wallboard's stream: also gets the centre's figures (``wallboard`` events)
    queue: asyncio.Queue[Item | None] = field(default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE))
    dropped: bool = False

    def deliver(self, item: Item | None) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Too far behind: nothing more is queued for it; the stream sends ``resync`` and ends.
            self.dropped = True


def _deliver_all(listeners: list[Listener], item: Item | None) -> None:
    for listener in listeners:
        listener.deliver(item)


def _deliver_each(listeners: list[Listener], items: tuple[Item | None, ...]) -> None:
    for item in items:
        _deliver_all(listeners, item)


class CentreFeed:
    def __init__(self, centre_id: int, ring: MemoryRing | RedisRing, enrich: Any = None):
        self.centre_id = centre_id
        self.ring = ring
        self.enrich = enrich
        self.listeners: set[Listener] = set()
        self.generation = 0  # messages seen: what was computed before a change is known stale
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"live-feed-{centre_id}", daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                sub = bus.Subscription([f"centre:{self.centre_id}"])
            except Exception as exc:  # noqa: BLE001 - Redis down: retry, screens keep their last state
                log.warning("live.subscribe_failed", extra={"centre": self.centre_id, "reason": str(exc)})
                self.ready.set()
                self.stopping.wait(2)
                continue
            self.ready.set()
            try:
                while not self.stopping.is_set():
                    message = sub.get(timeout=1.0)
                    if message is None:
                        continue
                    batch = [message]
                    until = time.monotonic() + BATCH_WAIT
                    while len(batch) < BATCH_MAX:
                        more = sub.get(timeout=max(0.0, until - time.monotonic()))
                        if more is None:
                            break
                        batch.append(more)  # what else has arrived: numbered in one Redis round trip
                    self._dispatch(*batch)
            except Exception as exc:  # noqa: BLE001 - the feed goes on after a second: screens keep their last state
                log.warning("live.feed_error", extra={"centre": self.centre_id, "reason": str(exc)})
                self.stopping.wait(1)
            finally:
                sub.close()

    def _dispatch(self, *messages: dict[str, Any]) -> None:
        """Number, frame and hand on messages that arrived together (one or many)."""
        self.generation += len(messages)
        if self.enrich is not None:
            enriched = []
            for message in messages:
                try:
                    enriched.append(self.enrich(message))
                except Exception as exc:  # noqa: BLE001 - a message without its labels is still shown
                    log.warning("live.enrich_failed", extra={"reason": str(exc)})
                    enriched.append(message)
            messages = tuple(enriched)
        seqs = self.ring.assign_many(self.centre_id, messages)
        self._fan_out(*(Item(seq, message, sse(seq, message)) for seq, message in zip(seqs, messages, strict=True)))

    def _fan_out(self, *items: Item | None) -> None:
        """One hand-off per event loop (normally one per process) for the items, not one per screen."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Listener]] = {}
        with self.lock:
            for listener in self.listeners:
                by_loop.setdefault(listener.loop, []).append(listener)
        for loop, group in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver_each, group, items)
            except RuntimeError:  # that loop has closed (tests, shutdown): its screens are gone
                continue

    def stop(self) -> None:
        self.stopping.set()
        self._fan_out(None)


class Hub:
    def __init__(self, enrich: Any = None) -> None:
        self._lock = threading.Lock()
        self._feeds: dict[int, CentreFeed] = {}
        self._ring: MemoryRing | RedisRing | None = None
        self._pinging: set[asyncio.AbstractEventLoop] = set()
        self.enrich = enrich

    @property
    def ring(self) -> MemoryRing | RedisRing:
        with self._lock:
            if self._ring is None:
                self._ring = make_ring()
            return self._ring

    def feed(self, centre_id: int) -> CentreFeed:
        ring = self.ring
        with self._lock:
            found = self._feeds.get(centre_id)
            if found is None:
                found = self._feeds[centre_id] = CentreFeed(centre_id, ring, self.enrich)
            return found

    def add(self, centre_id: int, *, board: bool = False) -> Listener:
        loop = asyncio.get_running_loop()
        listener = Listener(loop, board)
        feed = self.feed(centre_id)
        with feed.lock:
            feed.listeners.add(listener)
        if loop not in self._pinging:
            self._pinging.add(loop)
            loop.call_later(HEARTBEAT_SECONDS, self._ping, loop)
        return listener

    def _ping(self, loop: asyncio.AbstractEventLoop) -> None:
        """Every ``HEARTBEAT_SECONDS`` on each event loop with screens: ``PING`` into each of its
        screens' queues (one timer per loop, none per screen); stops when the loop has none."""
        group = []
        for feed in list(self._feeds.values()):
            with feed.lock:
                group += [listener for listener in feed.listeners if listener.loop is loop]
        if not group:
            self._pinging.discard(loop)
            return
        _deliver_all(group, PING)
        loop.call_later(HEARTBEAT_SECONDS, self._ping, loop)

    def remove(self, centre_id: int, listener: Listener) -> None:
        feed = self._feeds.get(centre_id)
        if feed is not None:
            with feed.lock:
                feed.listeners.discard(listener)

    def boards(self, centre_id: int, loop: asyncio.AbstractEventLoop) -> list[Listener]:
        """The wallboards' streams of a centre on an event loop."""
        feed = self._feeds.get(centre_id)
        if feed is None:
            return []
        with feed.lock:
            return [listener for listener in feed.listeners if listener.board and listener.loop is loop]

    def to_boards(self, centre_id: int, loop: asyncio.AbstractEventLoop, item: Item) -> None:
        """Hand ``item`` to the centre's wallboards on ``loop`` (called on that loop)."""
        _deliver_all(self.boards(centre_id, loop), item)

    def generation(self, centre_id: int) -> int:
        """How many updates of the centre this process has seen (0 while nobody watches it)."""
        feed = self._feeds.get(centre_id)
        return feed.generation if feed is not None else 0

    def connected(self) -> int:
        return sum(len(f.listeners) for f in list(self._feeds.values()))

    def stop(self) -> None:
        with self._lock:
            feeds = list(self._feeds.values())
            self._feeds.clear()
        for feed in feeds:
            feed.stop()
