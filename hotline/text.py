"""Vietnamese text helpers: NFC storage, diacritic folding for search (đ included)."""

from __future__ import annotations

import re
import unicodedata

_D = str.maketrans({"đ": "d", "Đ": "D"})
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def nfc(text: str | None) -> str:
    return unicodedata.normalize("NFC", text or "")


def fold(text: str | None) -> str:
    """Lower-case, strip diacritics (NFD does not split đ/Đ, so map them), collapse spaces.

    ``fold("Hà Nội") == fold("ha noi") == "ha noi"``; ``fold("Đà Nẵng") == "da nang"``.
    """
    text = unicodedata.normalize("NFD", (text or "").translate(_D))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return _SPACES.sub(" ", text.casefold().translate(_D)).strip()


def fold_words(text: str | None) -> list[str]:
    """Folded words, punctuation removed: ``"Điều 185, BLHS"`` → ``["dieu", "185", "blhs"]``."""
    return [w for w in _NON_WORD.split(fold(text)) if w]
