"""Second factor: TOTP (RFC 6238, 30 s, 6 digits, SHA-1 as every authenticator app reads it) with
single-use recovery codes.

- The seed is kept encrypted at rest (``hotline.security.crypto``); a code is accepted one step
  either side of now, and never twice (``totp_last_step``).
- Ten recovery codes are shown once at enrolment; only their SHA-256 is kept, each works once.
- The enrolment QR code is drawn here as SVG (``segno``): nothing leaves the server.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

import pyotp

from hotline.auth.models import User
from hotline.db import utcnow
from hotline.settings import get_settings

ISSUER = "Hotline"
RECOVERY_CODES = 10


def required_for(user: User) -> bool:
    """Whether this account must have a second factor (HOTLINE_TOTP_REQUIRED_ROLES)."""
    roles = {r.strip() for r in get_settings().totp_required_roles.split(",") if r.strip()}
    return user.role in roles


def enabled(user: User) -> bool:
    return bool(user.totp_secret and user.totp_enabled_at)


def _seed(user: User) -> str | None:
    from hotline.security.crypto import decrypt_text

    return decrypt_text(user.totp_secret) if user.totp_secret else None


def new_secret(user: User) -> str:
    """Start (or restart) an enrolment: a fresh seed, not active until a code confirms it."""
    from hotline.security.crypto import encrypt_text

    seed = pyotp.random_base32()
    user.totp_secret = encrypt_text(seed)
    user.totp_enabled_at = None
    user.totp_last_step = None
    return seed


def provisioning_uri(user: User, seed: str) -> str:
    return pyotp.TOTP(seed).provisioning_uri(name=user.username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth:// URI as an inline SVG QR code (no script, no external asset)."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False, svgns=True,
                                     title="QR", dark="#000", light="#fff")
    return out.getvalue().decode()


def _check(user: User, code: str, now: float | None = None) -> bool:
    seed = _seed(user)
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if not seed or len(code) != 6:
        return False
    totp = pyotp.TOTP(seed)
    now = time.time() if now is None else now
    step = int(now // totp.interval)
    for s in (step - 1, step, step + 1):
        if secrets.compare_digest(totp.at(s * totp.interval), code):
            if user.totp_last_step is not None and s <= user.totp_last_step:
                return False  # already used: a code works once
            user.totp_last_step = s
            return True
    return False


def confirm(user: User, code: str) -> list[str] | None:
    """Finish an enrolment with a first code; returns the new recovery codes (shown once)."""
    if not user.totp_secret or not _check(user, code):
        return None
    user.totp_enabled_at = utcnow()
    return new_recovery_codes(user)


def _digest(code: str) -> str:
    return hashlib.sha256("".join(code.lower().split()).replace("-", "").encode()).hexdigest()


def new_recovery_codes(user: User) -> list[str]:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = ["-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(2))
             for _ in range(RECOVERY_CODES)]
    user.recovery_codes = json.dumps([_digest(c) for c in codes])
    return codes


def recovery_left(user: User) -> int:
    return len(json.loads(user.recovery_codes or "[]"))


def verify(user: User, code: str) -> str | None:
    """A sign-in's second step: "totp", "recovery" (that code is now used up) or None."""
    if not enabled(user):
        return None
    if _check(user, code):
        return "totp"
    digests: list[Any] = json.loads(user.recovery_codes or "[]")
    mine = _digest(code or "")
    for d in digests:
        if secrets.compare_digest(d, mine):
            digests.remove(d)
            user.recovery_codes = json.dumps(digests)
            return "recovery"
    return None


def reset(user: User) -> None:
    """An administrator's reset (audited by the caller): the user enrols again at next sign-in."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.recovery_codes = None
