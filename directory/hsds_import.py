"""Reading an HSDS 3.0 package (CSV files + ``datapackage.json``, or one JSON data package with the
rows inline) into one entry per service for ``directory.validation.validate``.

Every table row is checked against the official schema (``directory.hsds_schema``); the package as a
whole for what a schema cannot see: files listed but missing or not UTF-8, columns HSDS does not
define (our own extensions start with ``x_``), ids used twice in a table, and references to rows
that are not there.  Each problem names its file and line; a bad row is left out (its service
keeps the rest), and the caller writes nothing while there is any problem unless told to skip.

Service types: the package's own taxonomy terms are matched to ours by code or label (Vietnamese or
English, diacritics ignored), or by the choice an administrator made for that term on the mapping
page (``dir_taxonomy_terms.maps_to``).  A term nobody has mapped yet is kept (code and name) and the
service is imported as ``other`` with a warning.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from directory import hsds_schema
from directory.models import TaxonomyTerm
from directory.schemas import FIELD_NAMES
from directory.service_types import TAXONOMY
from directory.service_types import resolve as resolve_type
from hotline.i18n import Text
from hotline.text import fold

Row = tuple[str, dict[str, Any]]  # (where, row)


class PackageError(ValueError):
    """The package cannot be read at all (no datapackage.json, invalid JSON, no services)."""


@dataclass
class Package:
    tables: dict[str, list[Row]] = field(default_factory=dict)
    problems: list[tuple[str, str, Any]] = field(default_factory=list)  # (where, entry id, reason)
    warnings: list[tuple[str, str, Any]] = field(default_factory=list)
    terms: dict[str, dict[str, Any]] = field(default_factory=dict)  # partner terms met, by id


# ---------------------------------------------------------------------------- files
def _csv_rows(file: Path, pkg: Package) -> tuple[list[str], list[Row]] | None:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        pkg.problems.append((file.name, "", Text("%(file)s is not UTF-8 (byte %(pos)d); save it as CSV UTF-8",
                                                 file=file.name, pos=exc.start)))
        return None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return [], []
    header = [h.strip() for h in header]
    rows: list[Row] = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        where = f"{file.name} line {reader.line_num}"
        if len(values) > len(header):
            pkg.problems.append((where, "", Text("%(columns)d columns but the header has %(header)d",
                                                 columns=len(values), header=len(header))))
            continue
        rows.append((where, dict(zip(header, values + [""] * (len(header) - len(values)), strict=True))))
    return header, rows


def _check_columns(table: str, header: list[str], where: str, pkg: Package) -> None:
    known = set(hsds_schema.tables()[table]["properties"])
    unknown = [h for h in header if h not in known and not h.startswith("x_")]
    if unknown:
        pkg.problems.append((where, "", Text("columns HSDS 3.0 does not define for %(table)s: %(columns)s (extensions "
                                             "start with x_)", table=table, columns=", ".join(map(repr, unknown)))))


def load(path: Path) -> Package:
    pkg_path = path / "datapackage.json" if path.is_dir() else path
    if not pkg_path.is_file():
        raise PackageError(Text("%(path)s is a folder without datapackage.json", path=str(path)))
    try:
        meta = json.loads(pkg_path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise PackageError(Text("%(file)s is not UTF-8; save the file as CSV UTF-8", file=pkg_path.name)) from None
    except json.JSONDecodeError as exc:
        raise PackageError(Text("%(file)s: invalid JSON at line %(line)d: %(problem)s", file=pkg_path.name,
                                line=exc.lineno, problem=exc.msg)) from None
    pkg = Package()
    resources = meta.get("resources") if isinstance(meta, dict) else None
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        raise PackageError(Text("%(file)s: 'resources' must be a list of tables", file=pkg_path.name))
    for res in resources:
        _load_resource(pkg_path.parent, res, pkg)
    if "service" not in pkg.tables:
        # Said first: why the service table could not be read, when that is the reason.
        raise PackageError(*(p[2] for p in pkg.problems[:1])) if pkg.problems else \
            PackageError(Text("the HSDS package has no service table"))
    return pkg


def _load_resource(folder: Path, res: dict[str, Any], pkg: Package) -> None:
    name, rel = str(res.get("name", "")), str(res.get("path", ""))
    table = hsds_schema.table_for(name, rel)
    if table is None:
        pkg.warnings.append((rel or name, "", Text("table %(name)r is not part of HSDS 3.0: left out", name=name)))
        return
    if "data" in res:
        data = res["data"] or []
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            pkg.problems.append((name, "", Text("resource %(name)r: data must be a list of rows (objects)", name=name)))
            return
        rows = [(f"{name}[{i}]", dict(r)) for i, r in enumerate(data)]
        header = sorted({k for _, r in rows for k in r})
        _check_columns(table, header, name, pkg)
    else:
        file = folder / (rel or f"{name}.csv")
        if not file.is_file():
            pkg.problems.append((file.name, "", Text("datapackage.json lists %(file)s but it is missing", file=file.name)))
            return
        got = _csv_rows(file, pkg)
        if got is None:
            return
        header, rows = got
        _check_columns(table, header, file.name, pkg)
    pkg.tables.setdefault(table, []).extend(rows)


# ---------------------------------------------------------------------------- rows
_REFS = {  # table: (column, table it points to)
    "service": [("organization_id", "organization")],
    "location": [("organization_id", "organization")],
    "address": [("location_id", "location")],
    "service_at_location": [("service_id", "service"), ("location_id", "location")],
    "phone": [("service_id", "service"), ("location_id", "location"), ("service_at_location_id", "service_at_location"),
              ("organization_id", "organization")],
    "schedule": [("service_id", "service"), ("location_id", "location"),
                 ("service_at_location_id", "service_at_location")],
    "service_area": [("service_id", "service")],
    "language": [("service_id", "service"), ("location_id", "location")],
    "attribute": [("taxonomy_term_id", "taxonomy_term")],
    "taxonomy_term": [("taxonomy_id", "taxonomy")],
}


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def check(pkg: Package) -> dict[str, list[dict[str, Any]]]:
    """Schema, duplicate ids and references; the rows that pass, per table."""
    ids = {t: {_s(r.get("id")) for _, r in rows} for t, rows in pkg.tables.items()}
    linkable = set().union(*(ids.get(t, set()) for t in ("service", "location", "organization", "service_at_location")))
    good: dict[str, list[dict[str, Any]]] = {}
    for table, rows in pkg.tables.items():
        seen: dict[str, str] = {}
        for where, row in rows:
            rid = _s(row.get("id"))
            reasons: list[Any] = [Text("HSDS %(table)s: %(problem)s", table=table, problem=p)
                                  for p in hsds_schema.check_row(table, row)]
            if rid and rid in seen:
                reasons.append(Text("duplicate id %(id)r, also on %(other)s", id=rid, other=seen[rid]))
            seen.setdefault(rid, where)
            for col, target in _REFS.get(table, []):
                ref = _s(row.get(col))
                if ref and ref not in ids.get(target, set()):
                    reasons.append(Text("%(column)s %(id)r: no such %(table)s in the package", column=col, id=ref,
                                        table=target))
            if table == "attribute" and _s(row.get("link_id")) and _s(row.get("link_id")) not in linkable:
                reasons.append(Text("link_id %(id)r: no such row in the package", id=_s(row.get("link_id"))))
            if reasons:
                pkg.problems.append((where, rid if table == "service" else "", reasons))
                continue
            row["__where__"] = where
            good.setdefault(table, []).append(row)
    return good


# ---------------------------------------------------------------------------- service types
def _label_keys(term: dict[str, Any]) -> list[str]:
    out = []
    for k in ("code", "name", "x_name_vi", "description"):
        v = _s(term.get(k))
        if v:
            out += [v, re.sub(r"[_\-./]+", " ", v)]
    return out


def type_of_term(session: Session, term: dict[str, Any], remembered: dict[str, str | None]) -> str | None:
    """Our type code for a term: ours by code, a remembered choice, or its code or label."""
    tid, taxonomy = _s(term.get("id")), _s(term.get("taxonomy_id") or term.get("taxonomy"))
    if taxonomy == TAXONOMY or tid.startswith(TAXONOMY + ":"):
        return resolve_type(_s(term.get("code")) or tid.split(":", 1)[-1])
    if remembered.get(tid):
        return remembered[tid]
    for key in _label_keys(term):
        code = resolve_type(key)
        if code and fold(key):
            return code
    return None


def _remembered(session: Session, term_ids: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for start in range(0, len(term_ids), 500):
        chunk = term_ids[start:start + 500]
        out.update({i: m for i, m in session.execute(
            select(TaxonomyTerm.id, TaxonomyTerm.maps_to).where(TaxonomyTerm.id.in_(chunk))).all()})
    return out


# ---------------------------------------------------------------------------- assembling services
def _by(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        k = _s(r.get(key))
        if k:
            out.setdefault(k, []).append(r)
    return out


_SCHED_KEYS = ("id", "freq", "interval", "byday", "bymonthday", "valid_from", "valid_to", "dtstart", "until",
               "opens_at", "closes_at", "timezone", "description")


def _rule_raw(row: dict[str, Any], location_id: str = "") -> dict[str, str]:
    out = {k: _s(row.get(k)) for k in _SCHED_KEYS}
    if _s(row.get("x_timezone")):
        out["timezone"] = _s(row.get("x_timezone"))
    out["location_id"] = location_id
    return out


class _Index:
    def __init__(self, t: dict[str, list[dict[str, Any]]]):
        self.orgs = {_s(r.get("id")): r for r in t.get("organization", [])}
        self.locs = {_s(r.get("id")): r for r in t.get("location", [])}
        self.sals = {_s(r.get("id")): r for r in t.get("service_at_location", [])}
        self.addrs = _by(t.get("address", []), "location_id")
        self.sal_by_service = _by(t.get("service_at_location", []), "service_id")
        self.terms = {_s(r.get("id")): r for r in t.get("taxonomy_term", [])}
        self.term_types: dict[str, str | None] = {}
        self.attrs = _by(t.get("attribute", []), "link_id")
        self.langs = _by(t.get("language", []), "service_id")
        self.areas = _by(t.get("service_area", []), "service_id")
        self.phones_by: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.scheds_by: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for key in ("service_id", "location_id", "service_at_location_id"):
            self.phones_by[key] = _by(t.get("phone", []), key)
            self.scheds_by[key] = _by(t.get("schedule", []), key)


def _location_raw(ix: _Index, sid: str, link: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    lid, sal_id = _s(link.get("location_id")), _s(link.get("id"))
    lo = ix.locs.get(lid, {})
    addrs = ix.addrs.get(lid, [])
    ad = next((a for a in addrs if _s(a.get("address_type")) == "physical"), addrs[0] if addrs else {})
    phones = [p for p in ix.phones_by["location_id"].get(lid, []) + ix.phones_by["service_at_location_id"].get(sal_id, [])
              if not _s(p.get("service_id")) or _s(p.get("service_id")) == sid]
    rows = [r for r in ix.scheds_by["location_id"].get(lid, []) + ix.scheds_by["service_at_location_id"].get(sal_id, [])
            if not _s(r.get("service_id")) or _s(r.get("service_id")) == sid]
    rules = [_rule_raw(r, lid) for r in rows]
    for rule, row in zip(rules, rows, strict=True):
        if not _s(row.get("service_id")):  # a place's hours, shared by its services: one row each on export
            rule["id"] = f"{rule['id']}@{sid}"
    address = ", ".join(x for x in (_s(ad.get("address_1")), _s(ad.get("address_2"))) if x)
    raw = {"id": lid, "sal_id": sal_id, "address_id": _s(ad.get("id")), "name": _s(lo.get("name")),
           "location_type": _s(lo.get("location_type")) or "physical",
           "province": _s(lo.get("x_province_code")) or _s(ad.get("state_province")),
           "commune": _s(lo.get("x_commune_code")) or _s(ad.get("city")),
           "address": address, "confidential_address": _s(lo.get("x_confidential")),
           "latitude": _s(lo.get("latitude")), "longitude": _s(lo.get("longitude")),
           "phones": "; ".join(_s(p.get("number")) for p in phones)}
    return raw, rules


def _type_and_terms(session: Session, ix: _Index, sid: str, s: dict[str, Any], pkg: Package,
                    remembered: dict[str, str | None]) -> tuple[str, list[tuple[str, str]], list[Any]]:
    stype, kept, warnings = "", [], []
    for a in ix.attrs.get(sid, []):
        term = ix.terms.get(_s(a.get("taxonomy_term_id")))
        if term is None:
            continue
        tid = _s(term.get("id"))
        if tid not in ix.term_types:  # a few terms, met by thousands of services
            ix.term_types[tid] = type_of_term(session, term, remembered)
        code = ix.term_types[tid]
        if not (_s(term.get("taxonomy_id")) == TAXONOMY or tid.startswith(TAXONOMY + ":")):
            pkg.terms[tid] = term
            kept.append((tid, _s(term.get("name"))))
        if code and not stype:
            stype = code
    stype = stype or _s(s.get("x_service_type"))
    if not stype and kept:
        names = ", ".join(f"{t} ({n})" for t, n in kept)
        warnings.append(Text("service type not known for %(terms)s: imported as 'other'; choose its type on the "
                             "taxonomy mapping page (Directory → Taxonomy mapping)", terms=names))
        stype = "other"
    return stype or "other", kept, warnings


def _coverage_names(ix: _Index, sid: str, loc_raws: list[dict[str, Any]]) -> list[str]:
    names = []
    for area in ix.areas.get(sid, []):
        names.append(_s(area.get("x_province_code")) or _s(area.get("name")))
    located = [lr for lr in loc_raws if lr["location_type"] != "virtual" and lr["province"]]
    if not names and loc_raws and not located:  # only virtual locations: it serves everyone
        names = ["toàn quốc"]
    return names


def _service_raw(session: Session, ix: _Index, s: dict[str, Any], pkg: Package,
                 remembered: dict[str, str | None]) -> tuple[dict[str, Any], list[Any]]:
    sid = _s(s.get("id"))
    org = ix.orgs.get(_s(s.get("organization_id")), {})
    loc_raws, rules = [], [_rule_raw(r) for r in ix.scheds_by["service_id"].get(sid, [])
                           if not _s(r.get("location_id")) and not _s(r.get("service_at_location_id"))]
    for link in ix.sal_by_service.get(sid, []):
        lr, lrules = _location_raw(ix, sid, link)
        loc_raws.append(lr)
        rules += lrules
    stype, kept, warnings = _type_and_terms(session, ix, sid, s, pkg, remembered)
    phones = [p for p in ix.phones_by["service_id"].get(sid, [])
              if not _s(p.get("location_id")) and not _s(p.get("service_at_location_id"))]
    raw: dict[str, Any] = {k: "" for k in FIELD_NAMES}
    raw.update({
        "id": sid, "organization_id": _s(s.get("organization_id")) or sid,
        "organization": _s(org.get("name")) or _s(s.get("name")), "name": _s(s.get("name")),
        "alternate_name": _s(s.get("alternate_name")), "service_type": stype, "description": _s(s.get("description")),
        "phones": "; ".join(_s(p.get("number")) for p in phones), "email": _s(s.get("email")), "url": _s(s.get("url")),
        "hours": "24/7" if _s(s.get("x_open_24_7")).lower() in {"true", "1", "yes"} else "",
        "languages": "; ".join(_s(x.get("code")) or _s(x.get("name")) for x in ix.langs.get(sid, [])),
        "timezone": _s(s.get("x_timezone")), "province": _s(s.get("x_province_code")),
    })
    for k in ("accessible", "beds_total", "beds_free", "beds_women", "beds_men", "beds_children",
              "referral_method", "referral_webhook_url", "referral_webhook_secret", "referral_email",
              "referral_sms", "verified", "last_verified_at", "last_verified_by", "source_note"):
        raw[k] = _s(s.get(f"x_{k}"))
    if not raw["last_verified_at"] and _s(s.get("assured_date")):
        raw["last_verified_at"] = _s(s.get("assured_date"))
    raw.update({"__hsds__": True, "__locations__": loc_raws, "__rules__": rules,
                "__coverage__": _coverage_names(ix, sid, loc_raws), "__terms__": kept,
                "__open_on_holidays__": _s(s.get("x_open_on_holidays"))})
    return raw, warnings


def read(session: Session, path: Path) -> tuple[list[tuple[str, dict[str, Any]]], Package]:
    """The package's services as entries to validate (with their warnings), and the package."""
    pkg = load(path)
    good = check(pkg)
    ix = _Index(good)
    remembered = _remembered(session, list(ix.terms))
    out = []
    bad_services = {sid for _, sid, _ in pkg.problems if sid}
    for s in good.get("service", []):
        if _s(s.get("id")) in bad_services:
            continue
        raw, warnings = _service_raw(session, ix, s, pkg, remembered)
        if warnings:
            pkg.warnings.append((s["__where__"], raw["id"], warnings))
        out.append((s["__where__"], raw))
    return out, pkg
