"""Helpers for the AMI tests: a simulator server and a listener on a real TCP socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from hotline.calls.models import Call, DeadLetter, RawEvent
from hotline.db import session_scope
from hotline.ingest.providers.asterisk.listener import AmiListener
from hotline.ingest.providers.asterisk.simulator import AmiServer
from tests.helpers import wait_for  # noqa: F401  (re-exported for the tests here)

USER, SECRET = "hotline", "s3cret-for-tests"




def calls() -> list[Call]:
    with session_scope() as s:
        return list(s.scalars(select(Call).order_by(Call.id)))


def call(key: str) -> Call | None:
    with session_scope() as s:
        return s.scalar(select(Call).where(Call.provider_key == key))


def count(model: type) -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def raw_events() -> list[RawEvent]:
    with session_scope() as s:
        return list(s.scalars(select(RawEvent).order_by(RawEvent.id)))


def dead_letters() -> list[DeadLetter]:
    with session_scope() as s:
        return list(s.scalars(select(DeadLetter).order_by(DeadLetter.id)))


class Rig:
    """Starts servers and listeners and always stops them."""

    def __init__(self) -> None:
        self.servers: list[AmiServer] = []
        self.listeners: list[AmiListener] = []

    def server(self, **kw: Any) -> AmiServer:
        server = kw.pop("cls", AmiServer)(username=kw.pop("username", USER), secret=kw.pop("secret", SECRET), **kw)
        server.start()
        self.servers.append(server)
        return server

    def listener(self, server: AmiServer, **kw: Any) -> AmiListener:
        kw.setdefault("keepalive", 0.5)
        kw.setdefault("reconnect_max", 0.5)
        kw.setdefault("spool_check_seconds", 0.2)
        listener = AmiListener("127.0.0.1", server.port, kw.pop("username", USER), kw.pop("secret", SECRET), **kw)
        listener.start()
        self.listeners.append(listener)
        return listener

    def close(self) -> None:
        for listener in self.listeners:
            listener.stop()
        for listener in self.listeners:  # nothing of this test may still write to the next one's database
            assert listener.join(30), "the listener's threads did not finish"
        for server in self.servers:
            server.stop()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()
