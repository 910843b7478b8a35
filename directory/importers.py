"""Import and export: the CSV template and HSDS 3.0 (CSV tables with ``datapackage.json``, or a
JSON data package with the rows inline).

An import reads the whole file, validates every row and reports each bad one with its line
number and reason.  Nothing is written unless every row is valid, or the caller asked to skip
invalid rows; then all valid rows are written in one transaction.  Rows are matched to existing
entries by their stable id; an unchanged row changes nothing (not even ``updated_at``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from directory import hours as hours_mod
from directory import service as svc_mod
from directory.models import Location, Organization, Phone, Service, ServiceAtLocation
from directory.places import places
from directory.schemas import FIELD_NAMES, FIELDS, HEADER_TO_FIELD, Record
from directory.service_types import TAXONOMY, service_types
from hotline.i18n import Text
from hotline.phone import SHORT_CODES
from hotline.text import fold

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class ImportFileError(ValueError):
    """The file as a whole cannot be read (format, columns, encoding)."""


@dataclass
class RowProblem:
    where: str  # "line 7" or "service.csv line 3"
    entry_id: str
    reasons: list[Any]  # Text (shown in the reader's language) or str


@dataclass
class ImportReport:
    format: str
    total: int = 0
    valid: int = 0
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    written: bool = False


# ---------------------------------------------------------------------------- reading
def detect(path: Path) -> str:
    if path.is_dir():
        if (path / "datapackage.json").is_file():
            return "hsds-csv"
        raise ImportFileError(Text("%(path)s is a folder without datapackage.json", path=str(path)))
    if not path.is_file():
        raise ImportFileError(Text("file not found: %(path)s", path=str(path)))
    if path.name == "datapackage.json":
        pkg = json.loads(path.read_text(encoding="utf-8-sig"))
        return "hsds-json" if all("data" in r for r in pkg.get("resources", [])) else "hsds-csv"
    if path.suffix.lower() == ".json":
        return "hsds-json"
    return "csv"


def _read_csv_text(text: str, where: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(Text("%(file)s: the file is empty", file=where)) from None
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        line = reader.line_num
        if len(values) > len(header):
            rows.append((line, {"__error__": Text("%(columns)d columns but the header has %(header)d",
                                                  columns=len(values), header=len(header))}))
            continue
        rows.append((line, dict(zip(header, values + [""] * (len(header) - len(values)), strict=True))))
    return header, rows


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(Text("%(file)s is not UTF-8; save the file as CSV UTF-8", file=path.name)) from None


def read_template(path: Path) -> list[tuple[str, dict[str, str]]]:
    header, rows = _read_csv_text(_read(path), path.name)
    mapping: dict[str, str] = {}
    unknown = []
    for h in header:
        f = HEADER_TO_FIELD.get(fold(h))
        if f is None:
            unknown.append(h)
        elif f in mapping.values():
            raise ImportFileError(Text("column %(column)r repeats field %(field)s", column=h, field=f))
        else:
            mapping[h] = f
    if unknown:
        raise ImportFileError(Text(
            "columns not in the template: %(columns)s. Use the template's Vietnamese or English headers "
            "(hotline directory template)", columns=", ".join(map(repr, unknown))))
    if "id" not in mapping.values():
        raise ImportFileError(Text("ID column missing"))
    out = []
    for line, row in rows:
        if "__error__" in row:
            out.append((f"line {line}", {"__error__": row["__error__"]}))
        else:
            out.append((f"line {line}", {mapping[h]: v for h, v in row.items() if h in mapping}))
    return out


def _hsds_tables(path: Path, fmt: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    pkg_path = path / "datapackage.json" if path.is_dir() else path
    try:
        pkg = json.loads(pkg_path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ImportFileError(Text("%(file)s: invalid JSON at line %(line)d: %(problem)s", file=pkg_path.name,
                                   line=exc.lineno, problem=exc.msg)) from None
    tables: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for res in pkg.get("resources", []):
        name = res.get("name", "")
        if "data" in res:
            tables[name] = [(f"{name}[{i}]", dict(r)) for i, r in enumerate(res["data"])]
        else:
            file = pkg_path.parent / res.get("path", f"{name}.csv")
            if not file.is_file():
                raise ImportFileError(Text("datapackage.json lists %(file)s but it is missing", file=file.name))
            _, rows = _read_csv_text(_read(file), file.name)
            tables[name] = [(f"{file.name} line {line}", row) for line, row in rows]
    if "service" not in tables:
        raise ImportFileError(Text("the HSDS package has no service table"))
    return tables


def read_hsds(path: Path, fmt: str) -> list[tuple[str, dict[str, str]]]:
    """HSDS tables → CSV-template rows (one per service)."""
    t = _hsds_tables(path, fmt)

    def by(table: str, key: str) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for _, r in t.get(table, []):
            out.setdefault(str(r.get(key) or ""), []).append(r)
        return out

    orgs = {str(r.get("id")): r for _, r in t.get("organization", [])}
    locs = {str(r.get("id")): r for _, r in t.get("location", [])}
    addrs = by("address", "location_id")
    phones, scheds, langs = by("phone", "service_id"), by("schedule", "service_id"), by("language", "service_id")
    sal, attrs = by("service_at_location", "service_id"), by("attribute", "link_id")
    terms = {str(r.get("id")): r for _, r in t.get("taxonomy_term", [])}
    out = []
    for where, s in t["service"]:
        sid = str(s.get("id") or "")
        org = orgs.get(str(s.get("organization_id") or ""), {})
        links = sal.get(sid, [])
        loc_ids = [str(x.get("location_id")) for x in links]
        loc = locs.get(loc_ids[0], {}) if loc_ids else {}
        addr = (addrs.get(str(loc.get("id") or ""), []) or [{}])[0]
        places_ = []
        for link in links:
            lid = str(link.get("location_id") or "")
            lo = locs.get(lid, {})
            ad = (addrs.get(lid, []) or [{}])[0]
            places_.append({
                "id": lid, "sal_id": str(link.get("id") or ""), "address_id": str(ad.get("id") or ""),
                "name": str(lo.get("name") or ""),
                "province": str(lo.get("x_province_code") or ad.get("state_province") or ""),
                "commune": str(lo.get("x_commune_code") or ad.get("city") or ""),
                "address": str(ad.get("address_1") or ""), "confidential_address": str(lo.get("x_confidential") or ""),
                "latitude": str(lo.get("latitude") or ""), "longitude": str(lo.get("longitude") or "")})
        stype = ""
        for a in attrs.get(sid, []):
            term = terms.get(str(a.get("taxonomy_term_id") or ""), {})
            if str(term.get("taxonomy_id") or term.get("taxonomy") or TAXONOMY) == TAXONOMY or not stype:
                stype = str(term.get("code") or term.get("name") or "")
        stype = stype or str(s.get("x_service_type") or "")
        if str(s.get("x_open_24_7") or "").lower() in {"true", "1", "yes"}:
            hours = "24/7"
        else:
            slots = tuple(hours_mod.Slot(str(x.get("byday") or "").upper()[:2], str(x.get("opens_at") or "")[:5],
                                         str(x.get("closes_at") or "")[:5]) for x in scheds.get(sid, []))
            bad = [sl for sl in slots if sl.byday not in hours_mod.DAYS]
            hours = ("invalid byday " + ",".join(sl.byday for sl in bad)) if bad else hours_mod.render(
                hours_mod.Hours(False, slots, str(s.get("x_open_on_holidays") or "").lower() in {"true", "1", "yes"}))
        raw = {k: "" for k in FIELD_NAMES}
        raw.update({
            "id": sid, "organization_id": str(s.get("organization_id") or ""), "organization": str(org.get("name") or ""),
            "name": str(s.get("name") or ""), "alternate_name": str(s.get("alternate_name") or ""),
            "service_type": stype, "description": str(s.get("description") or ""),
            "phones": "; ".join(str(p.get("number") or "") for p in phones.get(sid, [])),
            "email": str(s.get("email") or ""), "url": str(s.get("url") or ""), "hours": hours,
            "languages": "; ".join(str(x.get("code") or x.get("name") or "") for x in langs.get(sid, [])),
            "province": str(addr.get("state_province") or loc.get("x_province_code") or ""),
            "commune": str(loc.get("x_commune_code") or addr.get("city") or ""),
            "address": str(addr.get("address_1") or ""),
            "confidential_address": str(loc.get("x_confidential") or ""),
            "latitude": str(loc.get("latitude") or ""), "longitude": str(loc.get("longitude") or ""),
        })
        if loc.get("x_province_code"):
            raw["province"] = str(loc["x_province_code"])
        raw["timezone"] = str(s.get("x_timezone") or "")
        raw["__locations__"] = places_  # type: ignore[assignment]
        for k in ("accessible", "beds_total", "beds_free", "beds_women", "beds_men", "beds_children",
                  "referral_method", "referral_webhook_url", "referral_webhook_secret", "referral_email",
                  "referral_sms", "verified", "last_verified_at", "last_verified_by", "source_note"):
            v = s.get(f"x_{k}")
            raw[k] = "" if v is None else str(v)
        out.append((where, raw))
    return out


def read_rows(path: Path) -> tuple[str, list[tuple[str, dict[str, str]]]]:
    fmt = detect(path)
    rows = read_template(path) if fmt == "csv" else read_hsds(path, fmt)
    return fmt, rows


# ---------------------------------------------------------------------------- importing
def validate_rows(session: Session, rows: list[tuple[str, dict[str, str]]], report: ImportReport,
                  progress: Progress | None = None) -> list[tuple[str, Record]]:
    valid: list[tuple[str, Record]] = []
    seen_ids: dict[str, str] = {}
    seen_phones: dict[str, tuple[str, str]] = {}
    total = len(rows)
    for i, (where, raw) in enumerate(rows, 1):
        if "__error__" in raw:
            report.errors.append(RowProblem(where, "", [raw["__error__"]]))
            continue
        try:
            rec, warnings = svc_mod.validate(raw)
        except svc_mod.RecordError as exc:
            report.errors.append(RowProblem(where, str(raw.get("id") or ""), exc.reasons))
            continue
        if rec.id in seen_ids:
            report.errors.append(RowProblem(where, rec.id, [Text("duplicate id %(id)r, also on %(other)s", id=rec.id,
                                                                 other=seen_ids[rec.id])]))
            continue
        seen_ids[rec.id] = where
        for number, e164 in rec.phones:
            if e164 in SHORT_CODES:
                continue
            prev = seen_phones.get(e164)
            if prev and prev[1] != rec.id:
                warnings.append(Text("duplicate phone %(number)s, also on %(other)s (%(id)s)", number=number,
                                     other=prev[0], id=prev[1]))
            seen_phones.setdefault(e164, (where, rec.id))
        if warnings:
            report.warnings.append(RowProblem(where, rec.id, warnings))
        valid.append((where, rec))
        if progress and (i % 1000 == 0 or i == total):
            progress("validate", i, total)
    # Numbers already listed by other entries in the database.
    numbers = list(seen_phones)
    for start in range(0, len(numbers), 1000):
        chunk = numbers[start:start + 1000]
        for e164, sid in session.execute(select(Phone.e164, Service.id).join(Service).where(Phone.e164.in_(chunk))):
            where, rid = seen_phones[e164]
            if sid != rid and sid not in seen_ids:
                report.warnings.append(RowProblem(where, rid, [Text("number %(number)s already listed by entry %(other)s",
                                                                    number=e164, other=sid)]))
    report.valid = len(valid)
    return valid


def import_path(session: Session, *, path: Path, skip_invalid: bool = False, actor: str = "import",
                progress: Progress | None = None) -> ImportReport:
    """Validate the whole file, then (all valid, or ``skip_invalid``) write it. Caller commits."""
    fmt, rows = read_rows(path)
    report = ImportReport(format=fmt, total=len(rows))
    valid = validate_rows(session, rows, report, progress)
    if report.errors and not skip_invalid:
        return report
    write(session, records=[r for _, r in valid], report=report, actor=actor, progress=progress)
    return report


def write(session: Session, *, records: list[Record], report: ImportReport, actor: str,
          progress: Progress | None = None, action: str = "import") -> None:
    svc_mod.ensure_taxonomy(session)
    orgs: dict[str, Organization] = {}
    total = len(records)
    words: set[str] = set()
    written_words: set[str] = set()  # already in dir_words: names and places repeat across chunks
    known_orgs: set[str] = set()  # organisations present in the database (loaded or inserted here)
    step = 2000  # one COPY per table per 2,000 entries
    for start in range(0, total, step):
        chunk = records[start:start + step]
        ids = [r.id for r in chunk]
        existing = {s.id: s for s in session.scalars(
            select(Service).where(Service.id.in_(ids)).options(
                selectinload(Service.phones), selectinload(Service.schedules), selectinload(Service.language_rows),
                selectinload(Service.areas), selectinload(Service.attributes),
                selectinload(Service.locations).joinedload(ServiceAtLocation.location)))}
        org_ids = {r.organization_id for r in chunk if r.id in existing} - set(orgs)
        for o in session.scalars(select(Organization).where(Organization.id.in_(org_ids))):
            orgs[o.id] = o
        new = [rec for rec in chunk if rec.id not in existing]
        unknown = {r.organization_id for r in new} - known_orgs - set(orgs)
        known_orgs.update(session.scalars(select(Organization.id).where(Organization.id.in_(unknown))))
        with session.no_autoflush:
            statuses = [svc_mod.save(session, record=rec, actor=actor, action=action, existing=existing[rec.id],
                                     org_cache=orgs, words=words) for rec in chunk if rec.id in existing]
        for status in statuses:
            setattr(report, status, getattr(report, status) + 1)
        session.flush()
        known_orgs.update(orgs)
        svc_mod.bulk_create(session, records=new, actor=actor, action=action, known_orgs=known_orgs, words=words)
        report.created += len(new)
        svc_mod.add_words(session, words - written_words)
        written_words |= words
        words.clear()
        if progress:
            progress("write", min(start + step, total), total)
    report.written = True


# ---------------------------------------------------------------------------- exporting
def _services(session: Session) -> Iterable[Service]:
    q = select(Service).order_by(Service.id).options(
        selectinload(Service.phones), selectinload(Service.schedules),
        selectinload(Service.locations).joinedload(ServiceAtLocation.location).selectinload(Location.addresses))
    yield from session.scalars(q)


_SECRET_FIELDS = ("referral_webhook_secret",)


def export_template(session: Session, *, out: io.TextIOBase, include_confidential: bool = False) -> int:
    """The CSV template (Vietnamese headers). Public by default: confidential addresses and
    coordinates and the referral secrets are left out."""
    writer = csv.writer(out)
    writer.writerow([vi for _, vi, _, _ in FIELDS])
    n = 0
    for s in _services(session):
        raw = svc_mod.to_raw(s)
        if not include_confidential:
            _redact(raw)
        writer.writerow([raw[f] for f in FIELD_NAMES])
        n += 1
    return n


def _redact(raw: dict[str, str]) -> None:
    for k in _SECRET_FIELDS:
        raw[k] = ""
    if raw["confidential_address"] == "yes":
        raw["address"] = ""
        raw["commune"] = ""
        raw["latitude"] = raw["longitude"] = ""


HSDS_TABLES = {
    "organization": ["id", "name", "description", "email", "website"],
    "service": ["id", "organization_id", "name", "alternate_name", "description", "url", "email", "status",
                "x_service_type", "x_timezone", "x_open_24_7", "x_open_on_holidays", "x_accessible", "x_beds_total", "x_beds_free",
                "x_beds_women", "x_beds_men", "x_beds_children", "x_referral_method", "x_referral_webhook_url",
                "x_referral_webhook_secret", "x_referral_email", "x_referral_sms", "x_verified",
                "x_last_verified_at", "x_last_verified_by", "x_source_note"],
    "location": ["id", "organization_id", "name", "latitude", "longitude", "x_province_code", "x_commune_code", "x_confidential"],
    "address": ["id", "location_id", "address_1", "city", "state_province", "postal_code", "country", "address_type"],
    "service_at_location": ["id", "service_id", "location_id"],
    "phone": ["id", "service_id", "number", "description"],
    "schedule": ["id", "service_id", "byday", "opens_at", "closes_at", "freq"],
    "language": ["id", "service_id", "code", "name"],
    "service_area": ["id", "service_id", "name", "extent_type", "x_province_code", "x_commune_code"],
    "taxonomy": ["id", "name", "description"],
    "taxonomy_term": ["id", "taxonomy_id", "code", "name", "description", "x_name_vi"],
    "attribute": ["id", "link_id", "link_type", "link_entity", "taxonomy_term_id"],
}


def hsds_tables(session: Session, *, include_confidential: bool = False) -> dict[str, list[dict[str, Any]]]:
    pl = places()
    t: dict[str, list[dict[str, Any]]] = {k: [] for k in HSDS_TABLES}
    t["taxonomy"].append({"id": TAXONOMY, "name": "Loại dịch vụ / Service type", "description": "hotline service types"})
    for st in service_types().values():
        t["taxonomy_term"].append({"id": f"{TAXONOMY}:{st.code}", "taxonomy_id": TAXONOMY, "code": st.code,
                                   "name": st.en, "description": st.vi, "x_name_vi": st.vi})
    seen_orgs: set[str] = set()
    seen_locs: set[str] = set()
    for s in _services(session):
        r = svc_mod.to_record(s)
        if r.organization_id not in seen_orgs:
            seen_orgs.add(r.organization_id)
            o = s.organization
            t["organization"].append({"id": o.id, "name": o.name, "description": o.description, "email": o.email, "website": o.website})
        secret = r.referral_webhook_secret if include_confidential else ""
        t["service"].append({
            "id": r.id, "organization_id": r.organization_id, "name": r.name, "alternate_name": r.alternate_name,
            "description": r.description, "url": r.url, "email": r.email, "status": s.status,
            "x_service_type": r.service_type, "x_timezone": r.timezone, "x_open_24_7": r.open_24_7, "x_open_on_holidays": r.open_on_holidays,
            "x_accessible": r.accessible, "x_beds_total": r.beds_total, "x_beds_free": r.beds_free,
            "x_beds_women": r.beds_women, "x_beds_men": r.beds_men, "x_beds_children": r.beds_children,
            "x_referral_method": r.referral_method, "x_referral_webhook_url": r.referral_webhook_url,
            "x_referral_webhook_secret": secret, "x_referral_email": r.referral_email, "x_referral_sms": r.referral_sms,
            "x_verified": r.verified, "x_last_verified_at": r.last_verified_at.date().isoformat() if r.last_verified_at else None,
            "x_last_verified_by": r.last_verified_by, "x_source_note": r.source_note,
        })
        for lr in svc_mod.all_locations(r):
            hidden = lr.confidential and not include_confidential
            if lr.id not in seen_locs:
                seen_locs.add(lr.id)
                t["location"].append({"id": lr.id, "organization_id": r.organization_id, "name": lr.name,
                                      "latitude": None if hidden else lr.latitude,
                                      "longitude": None if hidden else lr.longitude,
                                      "x_province_code": lr.province_code, "x_commune_code": None if hidden else lr.commune_code,
                                      "x_confidential": lr.confidential})
                t["address"].append({"id": lr.address_id, "location_id": lr.id, "address_1": "" if hidden else lr.address,
                                     "city": "" if hidden else pl.commune_name(lr.commune_code),
                                     "state_province": pl.province_name(lr.province_code), "postal_code": "",
                                     "country": "VN", "address_type": "physical"})
            t["service_at_location"].append({"id": lr.sal_id, "service_id": r.id, "location_id": lr.id})
        hidden = r.confidential_address and not include_confidential
        for i, (number, _) in enumerate(r.phones):
            t["phone"].append({"id": f"{r.id}-ph{i}", "service_id": r.id, "number": number, "description": ""})
        for i, (d, o, c) in enumerate(r.slots):
            t["schedule"].append({"id": f"{r.id}-sc{i}", "service_id": r.id, "byday": d, "opens_at": o, "closes_at": c, "freq": "WEEKLY"})
        for i, code in enumerate(r.languages):
            t["language"].append({"id": f"{r.id}-lang{i}", "service_id": r.id, "code": code, "name": code})
        t["service_area"].append({"id": f"{r.id}-area", "service_id": r.id, "extent_type": "",
                                  "name": pl.province_name(r.province_code), "x_province_code": r.province_code,
                                  "x_commune_code": None if hidden else r.commune_code})
        t["attribute"].append({"id": f"{r.id}-type", "link_id": r.id, "link_type": "service", "link_entity": "service",
                               "taxonomy_term_id": f"{TAXONOMY}:{r.service_type}"})
    return t


def _package(tables: dict[str, list[dict[str, Any]]], inline: bool) -> dict[str, Any]:
    resources = []
    for name, cols in HSDS_TABLES.items():
        res: dict[str, Any] = {"name": name, "profile": "tabular-data-resource",
                               "schema": {"fields": [{"name": c, "type": "string"} for c in cols]}}
        if inline:
            res["data"] = tables[name]
        else:
            res["path"] = f"{name}.csv"
        resources.append(res)
    return {"name": "hotline-directory", "profile": "tabular-data-package",
            "description": "Open Referral HSDS 3.0 with x_ extensions (2025 province/commune codes, capacity, referrals)",
            "resources": resources}


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def export_hsds_csv(session: Session, *, out_dir: Path, include_confidential: bool = False) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = hsds_tables(session, include_confidential=include_confidential)
    for name, cols in HSDS_TABLES.items():
        with (out_dir / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for row in tables[name]:
                w.writerow([_cell(row.get(c)) for c in cols])
    (out_dir / "datapackage.json").write_text(json.dumps(_package(tables, False), ensure_ascii=False, indent=1), encoding="utf-8")
    return len(tables["service"])


def export_hsds_json(session: Session, *, out: io.TextIOBase, include_confidential: bool = False) -> int:
    tables = hsds_tables(session, include_confidential=include_confidential)
    json.dump(_package(tables, True), out, ensure_ascii=False, default=str)
    return len(tables["service"])


def template_text() -> str:
    """An empty template with the documented headers and one example row."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([vi for _, vi, _, _ in FIELDS])
    example = {"id": "vd-tam-lanh-01", "organization": "Trung tâm Công tác xã hội tỉnh (ví dụ)",
               "name": "Nhà tạm lánh (ví dụ)", "service_type": "shelter", "phones": "0912 345 678",
               "hours": "24/7", "languages": "vi", "accessible": "có", "beds_total": "10", "beds_free": "3",
               "province": "Quảng Ngãi", "confidential_address": "có", "referral_method": "",
               "verified": "không", "source_note": "ví dụ / example"}
    w.writerow([example.get(f, "") for f in FIELD_NAMES])
    return buf.getvalue()
