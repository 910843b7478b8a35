"""Bilingual service types (a table, not code): code → Vietnamese and English labels and the
words that name the type inside a search query."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hotline.text import fold

TAXONOMY = "hotline-service-type"


@dataclass(frozen=True)
class ServiceType:
    code: str
    vi: str
    en: str
    words: tuple[str, ...]


@lru_cache(maxsize=1)
def service_types() -> dict[str, ServiceType]:
    raw = json.loads((Path(__file__).parent / "data" / "service_types.json").read_text(encoding="utf-8"))
    return {r["code"]: ServiceType(r["code"], r["vi"], r["en"], tuple(fold(w) for w in r["words"])) for r in raw}


@lru_cache(maxsize=1)
def _by_label() -> dict[str, str]:
    out: dict[str, str] = {}
    for t in service_types().values():
        for label in (t.code, t.vi, t.en, *t.words):
            out.setdefault(fold(label), t.code)
    return out


def resolve(value: str) -> str | None:
    """A type code from its code or either label (diacritics ignored); None when unknown."""
    v = fold(value)
    if not v:
        return "other"
    return _by_label().get(v)


@lru_cache(maxsize=1)
def phrases() -> list[tuple[list[str], str]]:
    """Type-naming phrases as word lists, longest first, for spotting a type inside a query."""
    out = [(w.split(), t.code) for t in service_types().values() for w in t.words if not w.isdigit()]
    return sorted(out, key=lambda p: -len(p[0]))


def _find(words: list[str], only: str | None) -> tuple[str | None, list[str]]:
    for phrase, code in phrases():
        if only and code != only:
            continue
        n = len(phrase)
        for i in range(len(words) - n + 1):
            if words[i:i + n] == phrase:
                return code, words[:i] + words[i + n:]
    return None, words


def find_in_words(words: list[str]) -> tuple[str | None, list[str]]:
    """The type named in the words, and the words left once every phrase of that type is removed
    ("tham vấn tâm lý" names counselling twice)."""
    code, rest = _find(words, None)
    while code:
        again, shorter = _find(rest, code)
        if again is None:
            break
        rest = shorter
    return code, rest
