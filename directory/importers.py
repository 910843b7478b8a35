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
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from directory import hsds_import, validation
from directory import schedules as sched_mod
from directory import service as svc_mod
from directory.models import Location, Organization, Phone, Service, ServiceAtLocation, TaxonomyTerm
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


def _read_csv_text(text: str, where: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(Text("%(file)s: the file is empty", file=where)) from None
    rows: list[tuple[int, dict[str, Any]]] = []
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


def read_rows(session: Session, path: Path) -> tuple[str, list[tuple[str, dict[str, Any]]], Any]:
    fmt = detect(path)
    if fmt == "csv":
        return fmt, read_template(path), None
    try:
        rows, pkg = hsds_import.read(session, path)
    except hsds_import.PackageError as exc:
        raise ImportFileError(*exc.args) from None
    return fmt, rows, pkg


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
            rec, warnings = validation.validate(raw)
        except validation.RecordError as exc:
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
    fmt, rows, pkg = read_rows(session, path)
    report = ImportReport(format=fmt, total=len(rows))
    if pkg is not None:
        report.errors += [RowProblem(w, sid, r if isinstance(r, list) else [r]) for w, sid, r in pkg.problems]
        report.warnings += [RowProblem(w, sid, r if isinstance(r, list) else [r]) for w, sid, r in pkg.warnings]
        report.total = len(pkg.tables.get("service", []))
    valid = validate_rows(session, rows, report, progress)
    if report.errors and not skip_invalid:
        return report
    if pkg is not None:
        save_partner_terms(session, pkg.terms)
    write(session, records=[r for _, r in valid], report=report, actor=actor, progress=progress)
    return report


def save_partner_terms(session: Session, terms: dict[str, dict[str, Any]]) -> None:
    """Keep a partner's taxonomy terms (code and name); a term already mapped keeps its choice."""
    svc_mod.ensure_taxonomy(session)
    if not terms:
        return
    existing = {t.id: t for t in session.scalars(select(TaxonomyTerm).where(TaxonomyTerm.id.in_(list(terms))))}
    with session.no_autoflush:
        for tid, term in terms.items():
            taxonomy = str(term.get("taxonomy_id") or term.get("taxonomy") or "partner")[:64]
            code = str(term.get("code") or tid)[:64]
            clash = session.scalar(select(TaxonomyTerm.id).where(TaxonomyTerm.taxonomy == taxonomy,
                                                                 TaxonomyTerm.code == code, TaxonomyTerm.id != tid))
            name = str(term.get("name") or code)[:255]
            row = existing.get(tid)
            if row is None:
                row = TaxonomyTerm(id=tid[:80], maps_to=None)
                session.add(row)
            row.taxonomy, row.code = taxonomy, code if clash is None else tid[:64]
            row.name_en, row.name_vi = name, str(term.get("x_name_vi") or name)[:255]
            row.description = str(term.get("description") or "")
    session.flush()


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
        selectinload(Service.phones), selectinload(Service.schedules), selectinload(Service.attributes),
        selectinload(Service.locations).joinedload(ServiceAtLocation.location).selectinload(Location.addresses))
    yield from session.scalars(q)


_SECRET_FIELDS = ("referral_webhook_secret",)


def export_template(session: Session, *, out: IO[str], include_confidential: bool = False) -> int:
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


HSDS_TABLES = {  # HSDS 3.0 table: (file, columns); x_ columns are our extensions
    "organization": ("organizations.csv", ["id", "name", "description", "email", "website"]),
    "service": ("services.csv", [
        "id", "organization_id", "name", "alternate_name", "description", "url", "email", "status", "assured_date",
        "x_service_type", "x_timezone", "x_open_24_7", "x_open_on_holidays", "x_accessible", "x_beds_total",
        "x_beds_free", "x_beds_women", "x_beds_men", "x_beds_children", "x_referral_method", "x_referral_webhook_url",
        "x_referral_webhook_secret", "x_referral_email", "x_referral_sms", "x_verified", "x_last_verified_at",
        "x_last_verified_by", "x_source_note"]),
    "location": ("locations.csv", ["id", "location_type", "organization_id", "name", "latitude", "longitude",
                                   "x_province_code", "x_commune_code", "x_confidential"]),
    "address": ("addresses.csv", ["id", "location_id", "address_1", "city", "state_province", "postal_code", "country",
                                  "address_type"]),
    "service_at_location": ("service_at_location.csv", ["id", "service_id", "location_id"]),
    "phone": ("phones.csv", ["id", "service_id", "location_id", "number", "description"]),
    "schedule": ("schedules.csv", ["id", "service_id", "location_id", "valid_from", "valid_to", "dtstart", "timezone",
                                   "until", "freq", "interval", "byday", "bymonthday", "description", "opens_at",
                                   "closes_at", "x_timezone"]),
    "language": ("languages.csv", ["id", "service_id", "name", "code"]),
    "service_area": ("service_areas.csv", ["id", "service_id", "name", "description", "extent_type", "x_province_code"]),
    "taxonomy": ("taxonomies.csv", ["id", "name", "description"]),
    "taxonomy_term": ("taxonomy_terms.csv", ["id", "code", "name", "description", "taxonomy_id", "x_name_vi"]),
    "attribute": ("attributes.csv", ["id", "link_id", "taxonomy_term_id", "link_type", "link_entity"]),
}


def _taxonomy_rows(session: Session, t: dict[str, list[dict[str, Any]]]) -> None:
    t["taxonomy"].append({"id": TAXONOMY, "name": "Loại dịch vụ / Service type", "description": "hotline service types"})
    for st in service_types().values():
        t["taxonomy_term"].append({"id": f"{TAXONOMY}:{st.code}", "taxonomy_id": TAXONOMY, "code": st.code,
                                   "name": st.en, "description": st.vi, "x_name_vi": st.vi})
    partner = list(session.scalars(select(TaxonomyTerm).where(TaxonomyTerm.taxonomy != TAXONOMY).order_by(TaxonomyTerm.id)))
    for tx in sorted({x.taxonomy for x in partner}):
        t["taxonomy"].append({"id": tx, "name": tx, "description": "partner taxonomy"})
    for x in partner:
        t["taxonomy_term"].append({"id": x.id, "taxonomy_id": x.taxonomy, "code": x.code, "name": x.name_en,
                                   "description": x.description or x.name_en, "x_name_vi": x.name_vi})


def _service_row(s: Service, r: Record, include_confidential: bool) -> dict[str, Any]:
    secret = r.referral_webhook_secret if include_confidential else ""
    return {
        "id": r.id, "organization_id": r.organization_id, "name": r.name, "alternate_name": r.alternate_name,
        "description": r.description, "url": r.url, "email": r.email, "status": s.status,
        "assured_date": r.last_verified_at.date().isoformat() if r.last_verified_at else None,
        "x_service_type": r.service_type, "x_timezone": r.timezone, "x_open_24_7": r.open_24_7,
        "x_open_on_holidays": r.open_on_holidays, "x_accessible": r.accessible, "x_beds_total": r.beds_total,
        "x_beds_free": r.beds_free, "x_beds_women": r.beds_women, "x_beds_men": r.beds_men,
        "x_beds_children": r.beds_children, "x_referral_method": r.referral_method,
        "x_referral_webhook_url": r.referral_webhook_url, "x_referral_webhook_secret": secret,
        "x_referral_email": r.referral_email, "x_referral_sms": r.referral_sms, "x_verified": r.verified,
        "x_last_verified_at": r.last_verified_at.date().isoformat() if r.last_verified_at else None,
        "x_last_verified_by": r.last_verified_by, "x_source_note": r.source_note,
    }


def _location_rows(t: dict[str, list[dict[str, Any]]], r: Record, seen: set[str], include_confidential: bool) -> None:
    pl = places()
    for lr in svc_mod.all_locations(r):
        hidden = lr.confidential and not include_confidential
        if lr.id not in seen:
            seen.add(lr.id)
            t["location"].append({"id": lr.id, "location_type": lr.location_type, "organization_id": r.organization_id,
                                  "name": lr.name, "latitude": None if hidden else lr.latitude,
                                  "longitude": None if hidden else lr.longitude, "x_province_code": lr.province_code,
                                  "x_commune_code": None if hidden else lr.commune_code,
                                  "x_confidential": lr.confidential})
            if lr.location_type != "virtual":
                t["address"].append({"id": lr.address_id, "location_id": lr.id,
                                     "address_1": "" if hidden else lr.address,
                                     "city": "" if hidden else pl.commune_name(lr.commune_code),
                                     "state_province": pl.province_name(lr.province_code), "postal_code": "",
                                     "country": "VN", "address_type": "physical"})
            for i, (number, _) in enumerate(lr.phones):
                t["phone"].append({"id": f"{lr.id}-ph{i}", "service_id": r.id, "location_id": lr.id, "number": number,
                                   "description": ""})
        t["service_at_location"].append({"id": lr.sal_id, "service_id": r.id, "location_id": lr.id})


def _schedule_row(r: Record, rule: Any) -> dict[str, Any]:
    d = rule.as_dict()
    tz = d.pop("timezone", "")
    row = {"service_id": r.id, **d, "location_id": d.get("location_id") or None}
    if tz and sched_mod.is_offset(tz):
        row["timezone"] = tz
    elif tz:
        row["x_timezone"] = tz
    return row


def hsds_tables(session: Session, *, include_confidential: bool = False) -> dict[str, list[dict[str, Any]]]:
    pl = places()
    t: dict[str, list[dict[str, Any]]] = {k: [] for k in HSDS_TABLES}
    _taxonomy_rows(session, t)
    seen_orgs: set[str] = set()
    seen_locs: set[str] = set()
    for s in _services(session):
        r = svc_mod.to_record(s)
        if r.organization_id not in seen_orgs:
            seen_orgs.add(r.organization_id)
            o = s.organization
            t["organization"].append({"id": o.id, "name": o.name, "description": o.description or o.name,
                                      "email": o.email, "website": o.website})
        t["service"].append(_service_row(s, r, include_confidential))
        _location_rows(t, r, seen_locs, include_confidential)
        for i, (number, _) in enumerate(r.phones):
            t["phone"].append({"id": f"{r.id}-ph{i}", "service_id": r.id, "number": number, "description": ""})
        for rule in r.schedules:
            t["schedule"].append(_schedule_row(r, rule))
        for i, code in enumerate(r.languages):
            t["language"].append({"id": f"{r.id}-lang{i}", "service_id": r.id, "code": code, "name": code})
        for i, c in enumerate(r.coverage):
            t["service_area"].append({"id": f"{r.id}-area{i}", "service_id": r.id, "extent_type": "",
                                      "name": "Toàn quốc" if c == "*" else pl.province_name(c),
                                      "description": "", "x_province_code": "" if c == "*" else c})
        for i, term in enumerate(svc_mod.term_ids(r)):
            t["attribute"].append({"id": f"{r.id}-type" if i == 0 else f"{r.id}-term{i}", "link_id": r.id,
                                   "link_type": "service", "link_entity": "service", "taxonomy_term_id": term})
    return t


def _package(tables: dict[str, list[dict[str, Any]]], inline: bool) -> dict[str, Any]:
    resources = []
    for name, (file, cols) in HSDS_TABLES.items():
        res: dict[str, Any] = {"name": name, "profile": "tabular-data-resource", "format": "csv",
                               "schema": {"fields": [{"name": c, "type": "string"} for c in cols]}}
        if inline:
            res["data"] = [{k: v for k, v in row.items() if v is not None} for row in tables[name]]
        else:
            res["path"] = file
        resources.append(res)
    return {"name": "hotline-directory", "profile": "tabular-data-package", "version": "3.0.0",
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
    for name, (file, cols) in HSDS_TABLES.items():
        with (out_dir / file).open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for row in tables[name]:
                w.writerow([_cell(row.get(c)) for c in cols])
    (out_dir / "datapackage.json").write_text(json.dumps(_package(tables, False), ensure_ascii=False, indent=1), encoding="utf-8")
    return len(tables["service"])


def export_hsds_json(session: Session, *, out: IO[str], include_confidential: bool = False) -> int:
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
