"""Versioned taxonomies with stable codes and Vietnamese and English labels.

The source of truth is ``hotline/data/taxonomies.json``; ``hotline db upgrade`` copies it into
the ``taxonomy_terms`` table so reports can join on it.  Code never spells labels itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Term:
    scheme: str
    code: str
    vi: str
    en: str
    parent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def label(self, lang: str = "vi") -> str:
        return self.en if lang == "en" else self.vi


@dataclass(frozen=True)
class Taxonomies:
    version: str
    schemes: dict[str, dict[str, Term]]
    scheme_labels: dict[str, tuple[str, str]]

    def terms(self, scheme: str) -> list[Term]:
        return list(self.schemes[scheme].values())

    def get(self, scheme: str, code: str) -> Term | None:
        return self.schemes.get(scheme, {}).get(code)

    def is_valid(self, scheme: str, code: str) -> bool:
        return code in self.schemes.get(scheme, {})

    def label(self, scheme: str, code: str | None, lang: str = "vi") -> str:
        if code is None:
            return ""
        term = self.get(scheme, code)
        return term.label(lang) if term else code

    def require(self, scheme: str, code: str) -> Term:
        term = self.get(scheme, code)
        if term is None:
            known = ", ".join(sorted(self.schemes.get(scheme, {}))[:40])
            raise ValueError(f"unknown {scheme} code {code!r}; known codes: {known}")
        return term


@lru_cache(maxsize=1)
def get_taxonomies() -> Taxonomies:
    raw = json.loads(resources.files("hotline.data").joinpath("taxonomies.json").read_text("utf-8"))
    schemes: dict[str, dict[str, Term]] = {}
    labels: dict[str, tuple[str, str]] = {}
    for name, body in raw["schemes"].items():
        labels[name] = (body["label_vi"], body["label_en"])
        terms: dict[str, Term] = {}
        for item in body["terms"]:
            extra = {k: v for k, v in item.items() if k not in {"code", "vi", "en", "parent"}}
            terms[item["code"]] = Term(name, item["code"], item["vi"], item["en"], item.get("parent"), extra)
        schemes[name] = terms
    return Taxonomies(raw["version"], schemes, labels)


def non_counselling_codes() -> set[str]:
    return {t.code for t in get_taxonomies().terms("issue") if t.extra.get("non_counselling")}
