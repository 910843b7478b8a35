"""Password strength (#14, ASVS 2.1): long enough, not one of the 100,000 most common passwords, not
built from the user name or the centre's name, not one character repeated.

The list ships as data: ``hotline/data/common-passwords.txt.gz`` (SecLists' 10-million-password-list
top 100,000, MIT licence in ``common-passwords.LICENSE.txt``), loaded once, compared without case.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from hotline.i18n import N_

MIN_PASSWORD_LENGTH = 10
MIN_DISTINCT = 4
COMMON_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt.gz"


class WeakPassword(ValueError):
    """``message`` is an English msgid with ``%(name)s`` values in ``params``."""

    def __init__(self, message: str, **params: object) -> None:
        self.message, self.params = message, params
        super().__init__(message % params if params else message)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_FILE, "rt", encoding="utf-8", errors="replace") as fh:
        return frozenset(line.strip().lower() for line in fh if line.strip())


def _compact(text: str) -> str:
    """Lower case, no diacritics (đ → d), letters and digits only: "Trung tâm CTXH" → "trungtamctxh"."""
    text = unicodedata.normalize("NFKD", (text or "").lower().replace("đ", "d"))
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in text if not unicodedata.combining(c)))


def check(password: str, *, username: str = "", context: Iterable[str] = ()) -> None:
    """Raise ``WeakPassword`` saying what is wrong; ``context``: names the password must not be
    built from (the centre's name and code, the display name)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(N_("The password needs at least %(min)d characters; this one has %(len)d."),
                           min=MIN_PASSWORD_LENGTH, len=len(password))
    if len(set(password.lower())) < MIN_DISTINCT:
        raise WeakPassword(N_("The password repeats too few different characters; choose a longer phrase."))
    if password.strip().lower() in common_passwords() or _compact(password) in common_passwords():
        raise WeakPassword(N_("This password is one of the most common ones and is guessed first; "
                              "choose another (a phrase of several words is easy to remember)."))
    flat = _compact(password)
    user = _compact(username)
    if user and (flat == user or (len(user) >= 3 and user in flat)):
        raise WeakPassword(N_("The password must not contain the user name; choose another."))
    for name in context:
        words = [_compact(w) for w in re.split(r"\s+", name or "")]
        candidates = {_compact(name)} | {w for w in words if len(w) >= 4}
        if any(c and len(c) >= 4 and c in flat for c in candidates):
            raise WeakPassword(N_("The password must not be built from the centre's name; choose another."))
