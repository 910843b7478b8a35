"""Starter data: service types (taxonomy), the national numbers and a few real services.

The 34 provinces and their communes are not copied into the database: they come from the
``vietnam-provinces`` package (``directory.places``).  Seeding is idempotent: entries already
present and unchanged are left alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from directory import importers
from directory import service as svc_mod
from directory.places import places


def starter_rows() -> list[dict[str, str]]:
    raw = json.loads((Path(__file__).parent / "data" / "starter.json").read_text(encoding="utf-8"))
    return raw["entries"]


def seed(session: Session, *, actor: str = "seed") -> importers.ImportReport:
    svc_mod.ensure_taxonomy(session)
    rows = [(f"starter[{i}]", r) for i, r in enumerate(starter_rows())]
    report = importers.ImportReport(format="starter", total=len(rows))
    valid = importers.validate_rows(session, rows, report)
    if report.errors:
        raise ValueError("; ".join(f"{p.where}: {', '.join(map(str, p.reasons))}" for p in report.errors))
    importers.write(session, records=[r for _, r in valid], report=report, actor=actor, action="seed")
    return report


def place_counts() -> tuple[int, int]:
    pl = places()
    return len(pl.provinces), len(pl.communes)
