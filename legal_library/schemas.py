"""Shapes exchanged with the outside: the library file (seed/export) and API answers."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field, field_validator

from legal_library.models import DOC_STATUSES, DOC_TYPES, SERVICE_TYPES

LIBRARY_FORMAT = "hotline-legal-library"


class PointIn(BaseModel):
    letter: str
    text: str


class ClauseIn(BaseModel):
    number: str = ""
    text: str = ""
    points: list[PointIn] = Field(default_factory=list)


class NoteIn(BaseModel):
    meaning_vi: str = ""
    meaning_en: str = ""
    next_step_vi: str = ""
    next_step_en: str = ""
    verified: bool = False


class ArticleIn(BaseModel):
    number: str
    heading: str = ""
    heading_verified: bool = False
    chapter: str = ""
    chapter_title: str = ""
    section: str = ""
    section_title: str = ""
    body: str = ""
    clauses: list[ClauseIn] = Field(default_factory=list)
    text_verified: bool = False
    note: NoteIn | None = None
    issues: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)

    @field_validator("services")
    @classmethod
    def _services(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in SERVICE_TYPES]
        if bad:
            raise ValueError(f"unknown service type(s) {bad}; use one of {', '.join(SERVICE_TYPES)}")
        return v


class DocumentIn(BaseModel):
    number: str
    doc_type: str
    title_vi: str
    title_en: str = ""
    issuer: str = ""
    issued_on: date | None = None
    in_force_on: date | None = None
    status: str = "in_force"
    amended_by: list[str] = Field(default_factory=list)
    superseded_by: str | None = None
    superseded_from: date | None = None
    expired_on: date | None = None
    aliases: list[str] = Field(default_factory=list)
    source_url: str = ""
    last_checked_on: date | None = None
    summary_vi: str = ""
    summary_en: str = ""
    verified: dict[str, bool] = Field(default_factory=dict)
    note: NoteIn | None = None
    articles: list[ArticleIn] = Field(default_factory=list)

    @field_validator("doc_type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in DOC_TYPES:
            raise ValueError(f"unknown document type {v!r}; use one of {', '.join(DOC_TYPES)}")
        return v

    @field_validator("status")
    @classmethod
    def _status(cls, v: str) -> str:
        if v not in DOC_STATUSES:
            raise ValueError(f"unknown status {v!r}; use one of {', '.join(DOC_STATUSES)}")
        return v


class LibraryIn(BaseModel):
    format: str
    format_version: int = 1
    documents: list[DocumentIn]

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v != LIBRARY_FORMAT:
            raise ValueError(f"not a legal library file (format {v!r}, expected {LIBRARY_FORMAT!r})")
        return v


def dump(value: Any) -> Any:
    """JSON-ready: dates as ISO strings."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value
