"""Helpers for tests that need accounts: create users in the current settings' database, sign in.

    uid = create_user("lan", "a-long-password", "counsellor")
    token = login(client, "lan", "a-long-password")       # through the real /login form
    client.post("/calls/1", data={"csrf_token": token, ...})
    client.post("/api/...", json={...}, headers={"X-CSRF-Token": token})
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from typing import Any

from hotline.auth import service
from hotline.centres.service import ensure_default_centre, get_centre
from hotline.db import session_scope
from hotline.settings import get_settings

_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def create_user(username: str, password: str, role: str, centre_code: str | None = None,
                display_name: str = "", language: str = "vi") -> int:
    """Create an active user (in the default centre unless ``centre_code`` names another) and return its id."""
    settings = get_settings()
    with session_scope() as db:
        if centre_code is None:
            centre = ensure_default_centre(db, code=settings.default_centre_code, name=settings.default_centre_name,
                                           timezone=settings.default_timezone)
        else:
            centre = get_centre(db, centre_code)
        user = service.create_user(db, username=username, password=password, role=role, centre_id=centre.id,
                                   display_name=display_name, language=language)
        return user.id


def csrf_from(html: str) -> str:
    match = _CSRF_META.search(html) or _CSRF_INPUT.search(html)
    if match is None:
        raise AssertionError("no CSRF token in the page: does it extend base.html?")
    return match.group(1)


def login(client, username: str, password: str) -> str:
    """Sign in through the /login form like a browser; returns the session's CSRF token.

    When ``public_base_url`` is https the session cookie is Secure, so the client is switched to
    https (like a browser behind TLS) for the cookie to be sent back.
    """
    if get_settings().public_base_url.lower().startswith("https://") and client.base_url.scheme != "https":
        client.base_url = client.base_url.copy_with(scheme="https")
    page = client.get("/login")
    assert page.status_code == 200, page.text
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": csrf_from(page.text), "next": "/"},
                           follow_redirects=False)
    if response.status_code != 303:
        raise AssertionError(f"sign-in as {username!r} failed with {response.status_code}")
    account = client.get("/account")
    assert account.status_code == 200, f"/account after sign-in gave {account.status_code}"
    return csrf_from(account.text)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition",
             interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy and return its value; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
