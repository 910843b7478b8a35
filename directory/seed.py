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


def starter_rows(name: str = "starter") -> list[dict[str, str]]:
    raw = json.loads((Path(__file__).parent / "data" / f"{name}.json").read_text(encoding="utf-8"))
    return raw["entries"]


def seed(session: Session, *, actor: str = "seed", demo: bool = False) -> importers.ImportReport:
    """The starter entries; with ``demo`` (``hotline demo``) also ``data/demo.json``: every type in the
    demo centre's province and a neighbour, fictional, so the record page's panel has real answers."""
    svc_mod.ensure_taxonomy(session)
    rows = [(f"starter[{i}]", r) for i, r in enumerate(starter_rows())]
    if demo:
        rows += [(f"demo[{i}]", r) for i, r in enumerate(starter_rows("demo"))]
    report = importers.ImportReport(format="starter", total=len(rows))
    valid = importers.validate_rows(session, rows, report)
    if report.errors:
        raise ValueError("; ".join(f"{p.where}: {', '.join(map(str, p.reasons))}" for p in report.errors))
    importers.write(session, records=[r for _, r in valid], report=report, actor=actor, action="seed")
    return report


def demo_seed(session: Session) -> importers.ImportReport:
    """``hotline demo``: the starter entries and the demo ones."""
    return seed(session, actor="demo", demo=True)


def place_counts() -> tuple[int, int]:
    pl = places()
    return len(pl.provinces), len(pl.communes)
