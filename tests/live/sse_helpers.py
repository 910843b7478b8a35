"""A real uvicorn server in a thread, and a server-sent-events reader over real TCP (httpx)."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import httpx
import uvicorn

from hotline.auth.deps import SESSION_COOKIE
from tests.helpers import free_port  # re-exported for the tests here


class LiveServer:
    def __init__(self) -> None:
        from hotline.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        # Wait for the whole shutdown (its lifespan stops the spool drainer and the web scheduler):
        # a server still stopping when the next test starts would sweep or drain that test's spool.
        self.server.should_exit = True
        self.thread.join(60)
        if self.thread.is_alive() and exc[0] is None:
            raise RuntimeError("uvicorn did not stop within 60 s")


class SSE:
    """Reads ``GET /live/events`` in a thread; ``next(type)`` waits for the next event of a type."""

    def __init__(self, base: str, cookie: str, *, last_event_id: str | None = None, query: str = ""):
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status: int | None = None
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.client = httpx.Client(base_url=base, cookies={SESSION_COOKIE: cookie}, timeout=httpx.Timeout(5, read=60))
        self._ready = threading.Event()
        self._closed = threading.Event()
        self.thread = threading.Thread(target=self._run, args=("/live/events" + query, headers), daemon=True)
        self.thread.start()
        self._ready.wait(10)

    def _run(self, path: str, headers: dict[str, str]) -> None:
        try:
            with self.client.stream("GET", path, headers=headers) as r:
                self.status = r.status_code
                self.content_type = r.headers.get("content-type", "")
                self._ready.set()
                if r.status_code != 200:
                    return
                ev: dict[str, Any] = {}
                for line in r.iter_lines():
                    if self._closed.is_set():
                        return
                    if line == "":
                        if "event" in ev or "data" in ev:
                            ev["at"] = time.perf_counter()
                            self.events.put(ev)
                        ev = {}
                    elif line.startswith(":"):
                        continue
                    else:
                        key, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if key == "data":
                            ev["data"] = json.loads(value) if value else None
                        else:
                            ev[key] = value
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self._ready.set()

    def next(self, type_: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {type_ or 'event'} within {timeout}s")
            ev = self.events.get(timeout=left)
            if type_ is None or ev.get("event") == type_:
                return ev

    def drain(self, wait: float = 0.3) -> list[dict[str, Any]]:
        out = []
        time.sleep(wait)
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def close(self) -> None:
        self._closed.set()
        self.client.close()
