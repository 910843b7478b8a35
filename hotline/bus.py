"""Publish/subscribe for live updates: Redis pub/sub when configured, in-process otherwise.

Messages are small JSON objects; subscribers get them in order per channel.  With Redis the
updates fan out to every web process; without it (the demo) they stay in this process.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

_local_lock = threading.Lock()
_local_subscribers: dict[str, list[queue.Queue[dict[str, Any]]]] = {}
_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis | None:
    """One client (and connection pool) per Redis URL per process.  A new client per publish
    opened a new connection each time (connect and handshake on the webhook's path: ~10 % of a
    loaded web process's time, bench/live_memory.py).  redis-py resets the pool in a forked child
    and reconnects after an outage by itself."""
    from hotline.settings import get_settings

    url = get_settings().redis_url
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        import redis

        client = _clients.setdefault(url, redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2))
    return client


def _channel(client: Any, channel: str) -> str:
    """Redis pub/sub ignores the database number, so it goes into the channel name: two
    deployments (or two test runs) sharing one Redis on different databases never cross-talk."""
    db = client.connection_pool.connection_kwargs.get("db", 0)
    return f"hotline:{db}:{channel}"


def publish(channel: str, message: dict[str, Any]) -> None:
    """Publish; a Redis outage is logged, never raised into the caller's path."""
    data = json.dumps(message, default=str)
    client = _redis()
    if client is not None:
        try:
            client.publish(_channel(client, channel), data)
        except Exception as exc:  # noqa: BLE001 - Redis down must not break ingest: logged, the screen resyncs
            log.warning("bus.publish_failed", extra={"channel": channel, "reason": str(exc)})
        return
    with _local_lock:
        for q in list(_local_subscribers.get(channel, [])):
            q.put(json.loads(data))


class Subscription:
    """Iterate over messages; ``get(timeout)`` returns None on timeout."""

    def __init__(self, channels: list[str]):
        self.channels = channels
        self._client = _redis()
        if self._client is not None:
            self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(*[_channel(self._client, c) for c in channels])
        else:
            self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
            with _local_lock:
                for c in channels:
                    _local_subscribers.setdefault(c, []).append(self._queue)

    def get(self, timeout: float = 1.0) -> dict[str, Any] | None:
        if self._client is not None:
            msg = self._pubsub.get_message(timeout=timeout)
            if msg is None or msg.get("type") != "message":
                return None
            message: dict[str, Any] = json.loads(msg["data"])
            return message
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            msg = self.get()
            if msg is not None:
                yield msg

    def close(self) -> None:
        if self._client is not None:
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001 - closing a dead connection: nothing left to do
                pass
            return
        with _local_lock:
            for c in self.channels:
                subs = _local_subscribers.get(c, [])
                if self._queue in subs:
                    subs.remove(self._queue)
