"""Directory service layer: validate entries, save them (create or update by stable id), verify,
history, the not-verified list, and the summaries other domains read (``reference_for`` for the
live-call screen, ``referral_target`` for the referral hand-off).

Functions take keyword arguments over a session; nothing here commits.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, object_session, selectinload

from directory import hours as hours_mod
from directory import schedules as sched_mod
from directory.models import (
    Address,
    Attribute,
    Change,
    Language,
    Location,
    Organization,
    Phone,
    Schedule,
    Service,
    ServiceArea,
    ServiceAtLocation,
    TaxonomyTerm,
    Word,
)
from directory.places import places
from directory.schemas import LocationRecord, Record
from directory.service_types import TAXONOMY, service_types
from directory.validation import NATIONAL, RecordError, all_locations, default_location, reason_of, validate  # noqa: F401  (other domains import these from here)
from hotline import errors
from hotline.db import insert_ignore, utcnow
from hotline.i18n import Text
from hotline.phone import SHORT_CODES, display
from hotline.text import fold_words


class NotFound(errors.NotFound):
    """No such directory entry (404 through ``hotline.errors``)."""


def record_hash(rec: Record) -> str:
    """Content fingerprint; the hours count by their meaning (slots), not how they were written."""
    data = dict(vars(rec))
    data.pop("hours")
    data["schedules"] = [r.as_dict() for r in rec.schedules]
    for k in ("timezone", "locations", "schedules", "hours_note", "coverage", "terms"):  # older fingerprints stay valid
        if not data[k]:
            data.pop(k)
    return hashlib.sha256(json.dumps(data, default=str, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------- search document
def _phone_forms(e164: str) -> list[str]:
    if e164 in SHORT_CODES:
        return [e164]
    digits = e164.lstrip("+")
    return [digits, "0" + digits[2:]] if digits.startswith("84") else [digits]


@lru_cache(maxsize=262144)
def _folded_token(token: str) -> str:
    return " ".join(fold_words(token))


def _fold_text(text: str) -> str:
    """``" ".join(fold_words(text))``, a whitespace-separated token at a time: the tokens of names
    and places repeat across thousands of entries, so an import folds each one once."""
    return " ".join(f for f in map(_folded_token, text.split()) if f)


def search_document(rec: Record) -> tuple[str, str]:
    """The folded text searched for this entry, and its phone digits (both space-padded)."""
    pl = places()
    t = service_types()[rec.service_type]
    # The name comes first and the type's labels last: searches rank entries whose first 160
    # characters hold the query's words (a type phrase such as "giám định pháp y" ranks the entries
    # that name it above every other entry of the type).
    parts = [rec.name, rec.alternate_name, rec.organization, pl.province_name(rec.province_code),
             *pl.old_names_for(rec.province_code), pl.commune_name(rec.commune_code), rec.description[:300]]
    if not rec.confidential_address:
        parts.append(rec.address)
    for loc in rec.locations[1:]:  # the other places it is offered (never a confidential street address)
        parts += [pl.province_name(loc.province_code), pl.commune_name(loc.commune_code)]
        if not loc.confidential:
            parts.append(loc.address)
    parts += [pl.province_name(c) for c in rec.coverage if c != "*"]
    parts += [name for _, name in rec.terms]
    parts += [t.vi, t.en]
    doc = _fold_text(" ".join(parts))
    forms = [f for _, e in [*rec.phones, *(p for lr in rec.locations for p in lr.phones)] for f in _phone_forms(e)]
    # Every suffix of every number as a "tel…" word: a digit fragment is then a word prefix.
    tel = " ".join(sorted({f"tel{f[i:]}" for f in forms for i in range(max(1, len(f) - 2))}))
    digits = " ".join(forms)
    return f" {doc} {tel} ", f" {digits} " if digits else ""


# ---------------------------------------------------------------------------- saving
def _service_values(rec: Record, doc: str, digits: str, digest: str) -> dict[str, Any]:
    """Column values of ``dir_services`` for a record (one source for the ORM and bulk paths)."""
    lat, lon = rec.latitude, rec.longitude
    if lat is None or lon is None:
        lat, lon = places().centroid(rec.province_code, rec.commune_code)
    return {
        "organization_id": rec.organization_id, "name": rec.name, "alternate_name": rec.alternate_name,
        "description": rec.description, "service_type": rec.service_type, "email": rec.email, "url": rec.url,
        "hours_text": rec.hours, "timezone": rec.timezone, "open_24_7": rec.open_24_7, "open_on_holidays": rec.open_on_holidays,
        "languages": "," + ",".join(rec.languages) + ",", "accessible": rec.accessible,
        "beds_total": rec.beds_total, "beds_free": rec.beds_free, "beds_women": rec.beds_women,
        "beds_men": rec.beds_men, "beds_children": rec.beds_children,
        "referral_accepts": bool(rec.referral_method), "referral_method": rec.referral_method,
        "referral_webhook_url": rec.referral_webhook_url, "referral_webhook_secret": rec.referral_webhook_secret,
        "referral_email": rec.referral_email, "referral_sms": rec.referral_sms,
        "province_code": rec.province_code or None, "commune_code": rec.commune_code, "lat": lat, "lon": lon,
        "verified": rec.verified, "last_verified_at": rec.last_verified_at, "last_verified_by": rec.last_verified_by,
        "source_note": rec.source_note, "coverage": "," + ",".join(rec.coverage) + "," if rec.coverage else "",
        "hours_complex": any(not r.is_simple for r in rec.schedules if not r.text_only), "hours_note": rec.hours_note,
        "search_doc": doc, "phone_digits": digits, "content_hash": digest,
        "updated_at": utcnow(),
    }


def _apply(svc: Service, org: Organization, rec: Record, doc: str, digits: str, digest: str) -> None:
    values = _service_values(rec, doc, digits, digest)
    values.pop("organization_id")
    svc.organization = org
    for k, v in values.items():
        setattr(svc, k, v)


def _fill_location(session: Session, loc: Location, org: Organization, lr: LocationRecord) -> None:
    pl = places()
    loc.organization = org
    loc.name = lr.name
    loc.latitude, loc.longitude = lr.latitude, lr.longitude
    loc.province_code, loc.commune_code = lr.province_code or None, lr.commune_code
    loc.confidential = lr.confidential
    loc.location_type = lr.location_type
    addr = loc.addresses[0] if loc.addresses else None
    if addr is None:
        addr = Address(id=lr.address_id)
        loc.addresses.append(addr)
    addr.address_1, addr.city = lr.address, pl.commune_name(lr.commune_code)
    addr.state_province = pl.province_name(lr.province_code)


def _children(session: Session, svc: Service, org: Organization, rec: Record, is_new: bool) -> None:
    if rec.locations:  # HSDS: every location, under its own ids; links not listed any more are removed
        linked = {sal.location_id: sal for sal in svc.locations}
        keep = []
        for lr in rec.locations:
            loc = session.get(Location, lr.id)
            if loc is None:
                loc = Location(id=lr.id)
                session.add(loc)
            _fill_location(session, loc, org, lr)
            sal = linked.get(lr.id)
            if sal is None:
                sal = ServiceAtLocation(id=lr.sal_id, location_id=lr.id)
            sal.id = lr.sal_id
            keep.append(sal)
        svc.locations = keep
    else:  # the CSV template describes the first location only; the others stay as they are
        lr = default_location(rec)
        loc = svc.locations[0].location if svc.locations else (None if is_new else session.get(Location, lr.id))
        if loc is None:
            loc = Location(id=lr.id)
            session.add(loc)
        lr.address_id = loc.addresses[0].id if loc.addresses else lr.address_id
        _fill_location(session, loc, org, lr)
        if not svc.locations:
            svc.locations = [ServiceAtLocation(id=lr.sal_id, location_id=lr.id)]
    svc.phones = [Phone(**row) for row in phone_rows(rec)]
    svc.schedules = [Schedule(**row) for row in schedule_rows(rec)]
    svc.language_rows = [Language(code=c) for c in rec.languages]
    svc.areas = [ServiceArea(**row) for row in area_rows(rec)]
    svc.attributes = [Attribute(taxonomy_term_id=t) for t in term_ids(rec)]


def phone_rows(rec: Record) -> list[dict[str, Any]]:
    rows = [{"number": n, "e164": e, "description": "", "location_id": None} for n, e in rec.phones]
    rows += [{"number": n, "e164": e, "description": "", "location_id": lr.id} for lr in rec.locations for n, e in lr.phones]
    return rows


def schedule_rows(rec: Record) -> list[dict[str, Any]]:
    """One row per weekday of each rule (the quick "open now" test reads these); a text-only rule
    keeps one row without a day."""
    rows = []
    for r in rec.schedules:
        base = {"schedule_id": r.id, "location_id": r.location_id or None, "rule": r.as_dict()}
        slots = sched_mod.stored_slots(r) or [("", "", "")]
        rows += [{"byday": d, "opens_at": o, "closes_at": c, **base} for d, o, c in slots]
    return rows


def area_rows(rec: Record) -> list[dict[str, Any]]:
    pl = places()
    if rec.coverage:
        return [{"province_code": None if c == "*" else c, "commune_code": None,
                 "name": "Toàn quốc / nationwide" if c == "*" else pl.province_name(c)} for c in rec.coverage]
    return [{"province_code": rec.province_code or None, "commune_code": rec.commune_code,
             "name": pl.commune_name(rec.commune_code) or pl.province_name(rec.province_code) or "Toàn quốc / nationwide"}]


def term_ids(rec: Record) -> list[str]:
    return [f"{TAXONOMY}:{rec.service_type}", *(t for t, _ in rec.terms)]


def _doc_words(doc: str) -> set[str]:
    return {w for w in doc.split() if 2 <= len(w) <= 40 and not w.isdigit() and not w.startswith("tel")}


def add_words(session: Session, words: set[str]) -> None:
    if words:
        session.execute(insert_ignore(session, Word.__table__),
                        [{"word": w, "first": w[0], "length": len(w)} for w in sorted(words)])


def _organization(session: Session, rec: Record, cache: dict[str, Organization] | None = None) -> Organization:
    if cache is not None:  # bulk writers pre-load the organisations that exist
        org = cache.get(rec.organization_id)
    else:
        org = session.get(Organization, rec.organization_id)
    if org is None:
        org = Organization(id=rec.organization_id, name=rec.organization)
        session.add(org)
    elif org.name != rec.organization:
        org.name, org.updated_at = rec.organization, utcnow()
    if cache is not None:
        cache[rec.organization_id] = org
    return org


def ensure_taxonomy(session: Session) -> None:
    rows = [{"id": f"{TAXONOMY}:{t.code}", "taxonomy": TAXONOMY, "code": t.code, "name_vi": t.vi, "name_en": t.en}
            for t in service_types().values()]
    session.execute(insert_ignore(session, TaxonomyTerm.__table__), rows)


def save(session: Session, *, record: Record, actor: str, action: str = "update",
         existing: Service | None = None, known_new: bool = False,
         org_cache: dict[str, Organization] | None = None, words: set[str] | None = None) -> str:
    """Create or update the entry with ``record.id``; "created", "updated" or "unchanged".

    Bulk callers pass the loaded ``existing`` entry, or ``known_new`` when there is none."""
    digest = record_hash(record)
    svc = existing
    if svc is None and not known_new:
        svc = session.scalar(select(Service).where(Service.id == record.id))
    if svc is not None and svc.content_hash == digest:
        return "unchanged"
    if svc is None and org_cache is None:
        ensure_taxonomy(session)
    org = _organization(session, record, org_cache)
    doc, digits = search_document(record)
    before = _snapshot(svc) if svc is not None else None
    created = svc is None
    if created:
        svc = Service(id=record.id)
        session.add(svc)
    assert svc is not None
    _apply(svc, org, record, doc, digits, digest)
    _children(session, svc, org, record, is_new=created and known_new)
    if words is None:
        add_words(session, _doc_words(doc))
    else:
        words.update(_doc_words(doc))
    after = _snapshot(svc)
    changed = {k: [before.get(k) if before else None, v] for k, v in after.items() if not before or before.get(k) != v}
    session.add(Change(service_id=record.id, actor=actor, action="create" if created else action,
                       detail={"fields": sorted(changed) if not created else [], "via": action}))
    return "created" if created else "updated"


def bulk_create(session: Session, *, records: list[Record], actor: str, action: str,
                known_orgs: set[str], words: set[str]) -> None:
    """Insert entries known to be new with multi-row INSERTs (imports of tens of thousands)."""
    if not records:
        return
    pl = places()
    now = utcnow()
    new_orgs: dict[str, str] = {}
    for rec in records:
        if rec.organization_id not in known_orgs:
            new_orgs.setdefault(rec.organization_id, rec.organization)
    if new_orgs:
        session.execute(insert(Organization), [{"id": k, "name": v, "description": "", "email": "", "website": "",
                                                "created_at": now, "updated_at": now} for k, v in new_orgs.items()])
        known_orgs.update(new_orgs)
    rows = []
    for rec in records:
        doc, digits = search_document(rec)
        words.update(_doc_words(doc))
        rows.append({"id": rec.id, "status": "active", "created_at": now,
                     **_service_values(rec, doc, digits, record_hash(rec))})
    for row, pk in zip(rows, _next_pks(session, len(rows)), strict=True):
        row["pk"] = pk
    _bulk_insert(session, Service, rows)
    pks = {row["id"]: row["pk"] for row in rows}
    locs, addrs, sals, phones, scheds, langs, areas, attrs, changes = ([] for _ in range(9))
    # A location may be shared by several services (HSDS): written once, by the first of them.
    wanted = {lr.id for rec in records for lr in all_locations(rec)}
    present: set[str] = set()
    if any(r.locations for r in records):
        present.update(session.scalars(select(Location.id).where(Location.id.in_(wanted))))
    for rec in records:
        pk = pks[rec.id]
        for lr in all_locations(rec):
            if lr.id not in present:
                present.add(lr.id)
                locs.append({"id": lr.id, "organization_id": rec.organization_id, "name": lr.name,
                             "latitude": lr.latitude, "longitude": lr.longitude,
                             "province_code": lr.province_code or None, "commune_code": lr.commune_code,
                             "confidential": lr.confidential, "location_type": lr.location_type})
                addrs.append({"id": lr.address_id, "location_id": lr.id, "address_1": lr.address,
                              "city": pl.commune_name(lr.commune_code), "state_province": pl.province_name(lr.province_code),
                              "postal_code": "", "country": "VN", "address_type": "physical"})
            sals.append({"id": lr.sal_id, "service_pk": pk, "location_id": lr.id})
        phones += [{"service_pk": pk, **row} for row in phone_rows(rec)]
        scheds += [{"service_pk": pk, **row} for row in schedule_rows(rec)]
        langs += [{"service_pk": pk, "code": c} for c in rec.languages]
        areas += [{"service_pk": pk, **row} for row in area_rows(rec)]
        attrs += [{"service_pk": pk, "taxonomy_term_id": t} for t in term_ids(rec)]
        changes.append({"service_id": rec.id, "at": now, "actor": actor, "action": "create",
                        "detail": {"fields": [], "via": action}})
    for model, values in ((Location, locs), (Address, addrs), (ServiceAtLocation, sals), (Phone, phones),
                          (Schedule, scheds), (Language, langs), (ServiceArea, areas), (Attribute, attrs),
                          (Change, changes)):
        _bulk_insert(session, model, values)


def _next_pks(session: Session, n: int) -> list[int]:
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(text(
            "SELECT nextval(pg_get_serial_sequence('dir_services', 'pk')) FROM generate_series(1, :n)"), {"n": n}))
    start = (session.scalar(select(func.max(Service.pk))) or 0) + 1  # SQLite: the write lock is ours
    return list(range(start, start + n))


def _bulk_insert(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Many rows at once: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]  # a mapped class: `type` does not say so
        return
    table = model.__table__  # type: ignore[attr-defined]  # a mapped class, as above
    cols = list(rows[0])
    json_cols = {c for c in cols if isinstance(table.c[c].type, type(Change.__table__.c.detail.type))}
    from psycopg.types.json import Jsonb

    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor() as cur:
        with cur.copy(f'COPY {table.name} ({", ".join(cols)}) FROM STDIN') as copy:
            if json_cols:
                for r in rows:
                    copy.write_row([Jsonb(r[c]) if c in json_cols else r[c] for c in cols])
            else:
                for r in rows:
                    copy.write_row(tuple(r.values()))


_SNAP = ("name", "organization_id", "service_type", "hours_text", "languages", "accessible", "beds_total",
         "beds_free", "province_code", "commune_code", "referral_method", "verified", "phone_digits", "email", "url")


def _snapshot(svc: Service) -> dict[str, Any]:
    return {k: getattr(svc, k) for k in _SNAP}


# ---------------------------------------------------------------------------- reading and upkeep
def get(session: Session, *, service_id: str) -> Service:
    svc = session.scalar(select(Service).where(Service.id == service_id).options(
        selectinload(Service.phones), selectinload(Service.schedules), selectinload(Service.locations),
        selectinload(Service.attributes)))
    if svc is None:
        raise NotFound(Text("no directory entry %(id)r", id=service_id))
    return svc


def to_record(svc: Service) -> Record:
    loc = svc.locations[0].location if svc.locations else None
    addr = loc.addresses[0] if loc and loc.addresses else None
    rec = Record(
        id=svc.id, organization_id=svc.organization_id, organization=svc.organization.name, name=svc.name,
        alternate_name=svc.alternate_name, service_type=svc.service_type, description=svc.description,
        phones=[(p.number, p.e164) for p in svc.phones], email=svc.email, url=svc.url, hours=svc.hours_text,
        timezone=svc.timezone,
        open_24_7=svc.open_24_7, open_on_holidays=svc.open_on_holidays,
        slots=[],
        languages=[x for x in svc.languages.split(",") if x], accessible=svc.accessible,
        beds_total=svc.beds_total, beds_free=svc.beds_free, beds_women=svc.beds_women, beds_men=svc.beds_men,
        beds_children=svc.beds_children, province_code=svc.province_code or "", commune_code=svc.commune_code,
        address=addr.address_1 if addr else "", confidential_address=bool(loc and loc.confidential),
        latitude=loc.latitude if loc else None, longitude=loc.longitude if loc else None,
        referral_method=svc.referral_method, referral_webhook_url=svc.referral_webhook_url,
        referral_webhook_secret=svc.referral_webhook_secret, referral_email=svc.referral_email,
        referral_sms=svc.referral_sms, verified=svc.verified, last_verified_at=svc.last_verified_at,
        last_verified_by=svc.last_verified_by, source_note=svc.source_note,
        schedules=(rules := rules_of(svc)), hours_note=svc.hours_note,
        coverage=[c for c in svc.coverage.split(",") if c], terms=_terms_of(svc),
    )
    rec.slots = [s for r in rules for s in r.slots()]
    rec.phones = [(p.number, p.e164) for p in svc.phones if not p.location_id]
    loc_phones: dict[str, list[tuple[str, str]]] = {}
    for p in svc.phones:
        if p.location_id:
            loc_phones.setdefault(p.location_id, []).append((p.number, p.e164))
    rec.locations = [LocationRecord(
        id=sal.location.id, sal_id=sal.id, address_id=sal.location.addresses[0].id if sal.location.addresses else
        f"{sal.location.id}-addr", name=sal.location.name, province_code=sal.location.province_code or "",
        commune_code=sal.location.commune_code,
        address=sal.location.addresses[0].address_1 if sal.location.addresses else "",
        confidential=sal.location.confidential, latitude=sal.location.latitude, longitude=sal.location.longitude,
        location_type=sal.location.location_type or "physical", phones=loc_phones.get(sal.location.id, []))
        for sal in svc.locations]
    if rec.locations == [default_location(rec)]:
        rec.locations = []
    return rec




def rules_of(svc: Service) -> list[sched_mod.Rule]:
    """The HSDS schedules back from their per-day rows (rows from before revision 0003 carry no
    rule: they become one weekly rule per opening time)."""
    rules: dict[str, sched_mod.Rule] = {}
    legacy: dict[tuple[str, str], list[str]] = {}
    for row in svc.schedules:
        if row.rule:
            rules.setdefault(row.schedule_id or f"{svc.id}-sc{len(rules)}", sched_mod.Rule.from_dict(row.rule))
        elif row.byday:
            legacy.setdefault((row.opens_at, row.closes_at), []).append(row.byday)
    out = list(rules.values())
    out += [sched_mod.Rule(id=f"{svc.id}-sc{i}", freq="WEEKLY", byday=",".join(days), opens_at=o, closes_at=c)
            for i, ((o, c), days) in enumerate(legacy.items(), start=len(out))]
    return out


def _terms_of(svc: Service) -> list[tuple[str, str]]:
    ids = [a.taxonomy_term_id for a in svc.attributes if not a.taxonomy_term_id.startswith(TAXONOMY + ":")]
    if not ids:
        return []
    session = object_session(svc)
    names = {i: n for i, n in session.execute(select(TaxonomyTerm.id, TaxonomyTerm.name_en).where(
        TaxonomyTerm.id.in_(ids))).all()} if session else {}
    return [(i, names.get(i, "")) for i in ids]


def hours_text(rec: Record) -> str:
    """The template's written form of the hours, when the rules can be written so (weekly, no dates)."""
    if rec.open_24_7:
        return "24/7"
    if rec.schedules and all(r.is_simple and not r.location_id for r in rec.schedules):
        return hours_mod.render(hours_mod.Hours(False, tuple(hours_mod.Slot(*x) for x in rec.slots), rec.open_on_holidays))
    return rec.hours


def to_raw(svc: Service) -> dict[str, str]:
    """The entry as CSV-template fields (what ``validate`` reads back)."""
    r = to_record(svc)
    pl = places()
    yn = {True: "yes", False: "no"}
    return {
        "id": r.id, "organization_id": r.organization_id, "organization": r.organization, "name": r.name,
        "alternate_name": r.alternate_name, "service_type": r.service_type, "description": r.description,
        "phones": "; ".join(n for n, _ in r.phones), "email": r.email, "url": r.url, "hours": hours_text(r),
        "timezone": r.timezone,
        "languages": "; ".join(r.languages), "accessible": yn[r.accessible],
        **{k: "" if getattr(r, k) is None else str(getattr(r, k))
           for k in ("beds_total", "beds_free", "beds_women", "beds_men", "beds_children", "latitude", "longitude")},
        "province": pl.province_name(r.province_code) or "toàn quốc", "commune": pl.commune_name(r.commune_code),
        "address": r.address, "confidential_address": yn[r.confidential_address],
        "referral_method": r.referral_method, "referral_webhook_url": r.referral_webhook_url,
        "referral_webhook_secret": r.referral_webhook_secret, "referral_email": r.referral_email,
        "referral_sms": r.referral_sms, "verified": yn[r.verified],
        "last_verified_at": r.last_verified_at.date().isoformat() if r.last_verified_at else "",
        "last_verified_by": r.last_verified_by, "source_note": r.source_note,
    }


def duplicate_phones(session: Session, *, record: Record) -> list[Text]:
    """Warnings for numbers another entry already lists (short codes excepted)."""
    out = []
    for number, e164 in record.phones:
        if e164 in SHORT_CODES:
            continue
        other = session.scalar(select(Service.id).join(Phone).where(Phone.e164 == e164, Service.id != record.id).limit(1))
        if other:
            out.append(Text("number %(number)s already listed by entry %(other)s", number=number, other=other))
    return out


def mark_verified(session: Session, *, service_id: str, by: str, at: datetime | None = None) -> Service:
    svc = get(session, service_id=service_id)
    svc.verified, svc.last_verified_at, svc.last_verified_by = True, at or utcnow(), by
    rec = to_record(svc)
    svc.content_hash = record_hash(rec)
    svc.updated_at = utcnow()
    session.add(Change(service_id=service_id, actor=by, action="verify", detail={"fields": ["verified"], "via": "verify"}))
    return svc


def not_verified_since(session: Session, *, days: int = 180, now: datetime | None = None,
                       limit: int | None = None) -> list[Service]:
    """Services not verified within ``days``, never-verified first, then the oldest; at most ``limit``."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    return list(session.scalars(
        select(Service).where(_stale(cutoff))
        .order_by(Service.last_verified_at.is_not(None), Service.last_verified_at, Service.name).limit(limit)))


def count_not_verified_since(session: Session, *, days: int = 180, now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - timedelta(days=days)
    return session.scalar(select(func.count()).select_from(Service).where(_stale(cutoff))) or 0


def _stale(cutoff: datetime) -> Any:
    return (Service.last_verified_at.is_(None)) | (Service.last_verified_at < cutoff)


def history(session: Session, *, service_id: str | None = None, limit: int = 200) -> list[Change]:
    q = select(Change).order_by(Change.at.desc(), Change.pk.desc()).limit(limit)
    if service_id:
        q = q.where(Change.service_id == service_id)
    return list(session.scalars(q))


def _address_line(svc: Service) -> tuple[str, bool]:
    loc = svc.locations[0].location if svc.locations else None
    if loc is None:
        return "", False
    addr = loc.addresses[0].address_1 if loc.addresses else ""
    pl = places()
    place = ", ".join(x for x in (pl.commune_name(loc.commune_code), pl.province_name(loc.province_code)) if x)
    return ", ".join(x for x in (addr, place) if x), loc.confidential


def public_address(svc: Service) -> str:
    """The address anyone may see: a confidential location shows only its province."""
    line, confidential = _address_line(svc)
    if confidential:
        return f"Địa chỉ bảo mật / confidential address ({places().province_name(svc.province_code)})"
    return line


def staff_address(svc: Service) -> str:
    return _address_line(svc)[0]


def reference_for(session: Session, service_id: str) -> dict[str, Any]:
    """What the live-call screen records as "given to the caller": label, number, public address."""
    svc = get(session, service_id=service_id)
    phone = svc.phones[0].e164 if svc.phones else ""
    return {
        "kind": "directory", "ref_id": svc.id,
        "label": f"{svc.name} ({svc.organization.name})" if svc.organization.name != svc.name else svc.name,
        "phone": display(phone) if phone and phone not in SHORT_CODES else phone,
        "address": public_address(svc),
        "service_type": svc.service_type,
    }


def referral_target(session: Session, service_id: str) -> dict[str, Any]:
    """How this service accepts referrals (read by the referral hand-off)."""
    svc = get(session, service_id=service_id)
    return {
        "service_id": svc.id, "name": svc.name, "accepts": svc.referral_accepts, "method": svc.referral_method,
        "webhook_url": svc.referral_webhook_url, "webhook_secret": svc.referral_webhook_secret,
        "email": svc.referral_email, "sms": svc.referral_sms,
    }


# ---------------------------------------------------------------------------- partner taxonomies
def partner_terms(session: Session) -> list[dict[str, Any]]:
    """A partner's terms met in imports, unmapped first, with how many entries carry each."""
    counts = dict(session.execute(select(Attribute.taxonomy_term_id, func.count()).group_by(Attribute.taxonomy_term_id)).all())
    terms = session.scalars(select(TaxonomyTerm).where(TaxonomyTerm.taxonomy != TAXONOMY)
                            .order_by(TaxonomyTerm.maps_to.is_not(None), TaxonomyTerm.name_vi))
    return [{"id": t.id, "taxonomy": t.taxonomy, "code": t.code, "name": t.name_vi, "description": t.description,
             "maps_to": t.maps_to, "services": counts.get(t.id, 0)} for t in terms]


def map_term(session: Session, *, term_id: str, service_type: str, actor: str) -> int:
    """Remember which of our types a partner's term stands for (the next import reads it), and give
    that type to the entries imported as "other" because of it.  Returns how many changed."""
    term = session.get(TaxonomyTerm, term_id)
    if term is None or term.taxonomy == TAXONOMY:
        raise NotFound(Text("no partner term %(id)r", id=term_id))
    term.maps_to = service_type
    pks = list(session.scalars(select(Attribute.service_pk).where(Attribute.taxonomy_term_id == term_id)))
    changed = 0
    for svc in session.scalars(select(Service).where(Service.pk.in_(pks), Service.service_type == "other").options(
            selectinload(Service.phones), selectinload(Service.schedules), selectinload(Service.attributes),
            selectinload(Service.language_rows), selectinload(Service.areas), selectinload(Service.locations))):
        rec = to_record(svc)
        rec.service_type = service_type
        save(session, record=rec, actor=actor, action="map_term", existing=svc)
        changed += 1
    return changed
