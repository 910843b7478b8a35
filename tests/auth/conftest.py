"""Fixtures for the account tests: a browser-like client over https (the session cookie is Secure)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hotline.app import create_app
from hotline.settings import Settings

PASSWORD = "correct horse battery"


@pytest.fixture
def app(env: Settings):
    return create_app()


def _client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver") as c:
        # FastAPI analyses each router's routes when a request first walks past them; make one
        # request that matches nothing (so every router is analysed) before a test freezes time,
        # because freezegun swaps ``date`` in every module and other routes take ``date`` parameters.
        assert c.get("/__no_such_page__").status_code == 404
        yield c


@pytest.fixture
def browser(app) -> Iterator[TestClient]:
    yield from _client(app)


@pytest.fixture
def second_browser(app) -> Iterator[TestClient]:
    yield from _client(app)
