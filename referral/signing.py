"""Signatures shared by outgoing webhooks and partners' acknowledgements (see PARTNERS.md).

``X-Hotline-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` with
``X-Hotline-Timestamp: <unix seconds>``.  A signature older or newer than ``TOLERANCE`` seconds
is refused, and each accepted acknowledgement's signature is remembered so a replay is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

TOLERANCE = 300
PREFIX = "sha256="


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


class BadSignature(ValueError):
    pass


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None) -> None:
    """Raise ``BadSignature`` with the reason unless the signature is right and fresh."""
    if not secret:
        raise BadSignature("this service has no webhook secret in the directory")
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        raise BadSignature("X-Hotline-Timestamp is missing or not a number of seconds") from None
    now = time.time() if now is None else now
    if abs(now - ts) > TOLERANCE:
        raise BadSignature(f"X-Hotline-Timestamp is more than {TOLERANCE} seconds away from our clock")
    expected = sign(secret, ts, body)
    if not hmac.compare_digest(expected.encode(), (signature or "").strip().encode()):
        raise BadSignature("X-Hotline-Signature does not match the body and timestamp")


def digest(signature: str) -> str:
    return hashlib.sha256(signature.encode()).hexdigest()


def link_token(key: str, link_id: str) -> str:
    mac = hmac.new(key.encode(), b"referral-link:" + link_id.encode(), hashlib.sha256).digest()[:18]
    return f"{link_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def link_id_from(key: str, token: str) -> str | None:
    link_id, _, _sig = (token or "").partition(".")
    if not link_id or not hmac.compare_digest(link_token(key, link_id).encode(), token.encode()):
        return None
    return link_id
