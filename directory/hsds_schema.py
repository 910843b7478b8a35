"""The official HSDS 3.0 JSON schemas (bundled in ``data/hsds/`` with their licence).

- ``table_columns(table)`` / ``check_row(table, row)``: a tabular package's row (CSV text) against its
  table in ``compiled/tabular.json``; numbers and booleans are converted as the schema types them,
  empty cells left out.  Formats (``uuid``, ``email``, …) are not enforced: partners use their own ids.
- ``validator(name)``: a validator for one object schema (``service.json``, …) with the other tables
  it refers to resolved from the same folder; tests check the read API's JSON with it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HSDS_DIR = Path(__file__).parent / "data" / "hsds"


@lru_cache(maxsize=1)
def _registry() -> Registry:
    resources = []
    for path in HSDS_DIR.glob("*.json"):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((path.name, Resource.from_contents(contents, default_specification=DRAFT202012)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=32)
def validator(name: str) -> Draft202012Validator:
    path = HSDS_DIR / name
    schema = json.loads(path.read_text(encoding="utf-8"))
    return Draft202012Validator(schema, registry=_registry())


@lru_cache(maxsize=1)
def _tabular() -> dict[str, dict[str, Any]]:
    raw = json.loads((HSDS_DIR / "compiled" / "tabular.json").read_text(encoding="utf-8"))
    return {name: spec["items"] for name, spec in raw["properties"].items()}


def tables() -> dict[str, dict[str, Any]]:
    return _tabular()


def table_for(resource_name: str, path: str = "") -> str | None:
    """The HSDS table a package resource holds: by name (singular or plural) or by file name."""
    tabs = _tabular()
    for key in (resource_name, Path(path).stem):
        if not key:
            continue
        k = key.lower()
        if k in tabs:
            return k
        for name, spec in tabs.items():
            if k == Path(spec.get("path", "")).stem or k == name + "s":
                return name
    return None


def table_columns(table: str) -> set[str]:
    return {k for k, v in _tabular()[table]["properties"].items() if v.get("type") not in ("array", "object")
            and "$ref" not in v}


@lru_cache(maxsize=64)
def _row_validator(table: str) -> Draft202012Validator:
    spec = dict(_tabular()[table])
    props = {k: v for k, v in spec["properties"].items() if k in table_columns(table)}
    return Draft202012Validator({"type": "object", "properties": props, "required": spec.get("required", [])})


def _convert(value: str, kind: str | None) -> Any:
    if kind in ("number", "integer"):
        try:
            f = float(value)
        except ValueError:
            return value  # the schema names it
        return int(f) if kind == "integer" and f.is_integer() else f
    if kind == "boolean":
        v = value.strip().lower()
        return {"true": True, "false": False, "1": True, "0": False}.get(v, value)
    return value


@lru_cache(maxsize=64)
def _fast(table: str) -> tuple[frozenset[str], dict[str, tuple[str | None, tuple[Any, ...] | None]]]:
    """The keywords the tabular schemas use on a column: ``type`` and ``enum`` (``format`` is not
    enforced, the rest are annotations), and the required columns."""
    spec = _tabular()[table]
    props = {k: (v.get("type"), tuple(v["enum"]) if "enum" in v else None)
             for k, v in spec["properties"].items() if k in table_columns(table)}
    return frozenset(spec.get("required", [])), props


_PY = {"string": (str,), "number": (int, float), "integer": (int, float), "boolean": (bool,)}


def _fast_ok(table: str, data: dict[str, Any]) -> bool:
    """What the schema would say, without its machinery (about 30 times quicker); any doubt goes to
    ``jsonschema`` for the official message."""
    required, props = _fast(table)
    if not required <= data.keys():
        return False
    for k, v in data.items():
        kind, enum = props.get(k, (None, None))
        if kind is not None and (not isinstance(v, _PY.get(kind, (object,))) or isinstance(v, bool) != (kind == "boolean")
                                 or (kind == "integer" and isinstance(v, float) and not v.is_integer())):
            return False
        if enum is not None and v not in enum:
            return False
    return True


def check_row(table: str, row: dict[str, Any]) -> list[str]:
    """Problems of one row against the table's schema, as "column: message" lines."""
    props = _tabular()[table]["properties"]
    required = set(_tabular()[table].get("required", []))
    data: dict[str, Any] = {}
    for k, v in row.items():
        if k not in props or v is None:
            continue
        if isinstance(v, str):
            kind = props[k].get("type")
            if v == "" and (kind != "string" or k not in required):  # an empty cell is a missing value
                continue
            data[k] = _convert(v, kind) if kind else v
        else:
            data[k] = v
    if _fast_ok(table, data):
        return []
    out = []
    for err in sorted(_row_validator(table).iter_errors(data), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in err.path)
        out.append(f"{where}: {err.message}" if where else err.message)
    return out
