"""Directory service layer: validate entries, save them (create or update by stable id), verify,
history, the not-verified list, and the summaries other domains read (``reference_for`` for the
live-call screen, ``referral_target`` for the referral hand-off).

Functions take keyword arguments over a session; nothing here commits.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import zoneinfo

import phonenumbers
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, selectinload

from directory import hours as hours_mod
from directory.models import (Address, Attribute, Change, Language, Location, Organization, Phone,
                              Schedule, Service, ServiceArea, ServiceAtLocation, TaxonomyTerm, Word)
from directory.places import UnknownPlace, places
from directory.schemas import FIELD_NAMES, LocationRecord, Record
from directory.service_types import TAXONOMY, resolve as resolve_type, service_types
from hotline.db import insert_ignore, utcnow
from hotline.i18n import Text
from hotline.phone import SHORT_CODES, display, normalize_number
from hotline.text import fold, fold_words, nfc

NATIONAL = {"toan quoc", "ca nuoc", "national", "nationwide"}
REFERRAL_METHODS = {"": "", "none": "", "khong": "", "webhook": "webhook", "email": "email", "sms": "sms"}
_YES = {"1", "true", "yes", "y", "x", "co", "dung", "c"}
_NO = {"", "0", "false", "no", "n", "khong", "k", "sai"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RecordError(ValueError):
    """Everything wrong with one entry (each reason says what to do), as ``Text``s: pages and import
    reports show them in the reader's language (``translated(lang)``), ``str()`` in the current one."""

    def __init__(self, reasons: list[Text | str]):
        self.reasons = reasons
        super().__init__(*reasons)

    def translated(self, lang: str) -> list[str]:
        return [r.translate(lang) if isinstance(r, Text) else str(r) for r in self.reasons]

    def __str__(self) -> str:
        return "; ".join(map(str, self.reasons))


def reason_of(exc: Exception) -> Text | str:
    """The ``Text`` an error was raised with (kept for later translation), else its message."""
    return exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], Text) else str(exc)


def _at(location: str | None, problem: Text | str) -> Text | str:
    """A problem about one location of the entry: "location 'x': …" (``None``: the entry itself)."""
    return problem if location is None else Text("location %(id)r: %(problem)s", id=location, problem=problem)


class NotFound(LookupError):
    pass


# ---------------------------------------------------------------------------- validation
# Imports repeat the same short values (yes/no, types, provinces, hours) thousands of times.
_fold = lru_cache(maxsize=65536)(fold)


def _clean(value: Any) -> str:
    if value is None or value == "":
        return ""
    text = str(value)
    return (text if text.isascii() else nfc(text)).strip()


@lru_cache(maxsize=4096)
def _province(value: str) -> tuple[str, str]:
    return places().province(value)


@lru_cache(maxsize=65536)
def _commune(value: str, province_code: str) -> str:
    return places().commune(value, province_code)


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


@lru_cache(maxsize=1024)
def _timezone(value: str) -> str:
    """The IANA name as the zone database spells it; ``ValueError`` naming the closest ones."""
    names = _zone_names()
    key = value.strip().replace(" ", "_")
    if key.lower() in names:
        return names[key.lower()]
    close = difflib.get_close_matches(key.lower(), list(names), n=3, cutoff=0.6)
    if close:
        raise ValueError(Text("unknown timezone %(value)r: use an IANA name such as Asia/Ho_Chi_Minh, or leave it "
                              "empty for the centre's timezone. Closest: %(close)s.",
                              value=value, close=", ".join(names[c] for c in close)))
    raise ValueError(Text("unknown timezone %(value)r: use an IANA name such as Asia/Ho_Chi_Minh, or leave it empty "
                          "for the centre's timezone.", value=value))


@lru_cache(maxsize=4096)
def _hours(value: str) -> hours_mod.Hours:
    return hours_mod.parse(value)


_DOMESTIC = re.compile(r"0[1-9][0-9]{8,9}")
_SEPARATORS = str.maketrans("", "", " .-()")


def _normalize_number(text: str) -> tuple[str | None, str]:
    """``hotline.phone.normalize_number`` with a shortcut for numbers written the domestic way
    ("0912 345 678"): parsing is most of its cost, and for these the parse result is known — country
    84, the digits after the trunk 0 — so only the numbering-plan check runs.  Anything else, or a
    number that check refuses, takes the full path (same answer, same reason)."""
    digits = text.translate(_SEPARATORS)
    if _DOMESTIC.fullmatch(digits):
        number = phonenumbers.PhoneNumber(country_code=84, national_number=int(digits[1:]))
        if phonenumbers.is_valid_number(number):
            return "+84" + digits[1:], ""
    return normalize_number(text)


def _bool(value: str, label: str, errors: list[Any]) -> bool:
    v = _fold(value)
    if v in _YES:
        return True
    if v in _NO:
        return False
    errors.append(Text("%(field)s: %(value)r is not yes/no", field=label, value=value))
    return False


def _int(value: str, label: str, errors: list[Any]) -> int | None:
    v = (value or "").strip()
    if not v:
        return None
    if not v.isdigit():
        errors.append(Text("%(field)s: %(value)r is not a whole number ≥ 0", field=label, value=value))
        return None
    return int(v)


def _float(value: str, label: str, lo: float, hi: float, errors: list[Any]) -> float | None:
    v = (value or "").strip().replace(",", ".")
    if not v:
        return None
    try:
        f = float(v)
    except ValueError:
        errors.append(Text("%(field)s: %(value)r is not a number", field=label, value=value))
        return None
    if not lo <= f <= hi:
        errors.append(Text("%(field)s: %(value)r is out of range %(low)s…%(high)s", field=label, value=value,
                           low=lo, high=hi))
        return None
    return f


def _place(province: str, commune: str, errors: list[Any], warnings: list[Any],
           where: str | None = None) -> tuple[str, str | None]:
    """Province and commune codes (province "" = nationwide)."""
    province_code, commune_code = "", None
    if not province:
        errors.append(_at(where, Text("missing province (write 'toàn quốc' or 'national' for a nationwide service)")))
    elif _fold(province) in NATIONAL:
        province_code = ""
    else:
        try:
            province_code, note = _province(province)
            if note:
                warnings.append(_at(where, Text("old province mapped: %(note)s", note=note)))
        except UnknownPlace as exc:
            errors.append(_at(where, reason_of(exc)))
    if commune and province_code:
        try:
            commune_code = _commune(commune, province_code)
        except UnknownPlace as exc:
            errors.append(_at(where, reason_of(exc)))
    return province_code, commune_code


LOCATION_FIELDS = ("id", "sal_id", "address_id", "name", "province", "commune", "address", "confidential_address",
                   "latitude", "longitude")


def _locations(service_id: str, raws: list[dict[str, Any]], errors: list[Any],
               warnings: list[Any]) -> list[LocationRecord]:
    """Every location of an HSDS service (``raw["__locations__"]``: LOCATION_FIELDS as text)."""
    out: list[LocationRecord] = []
    seen: set[str] = set()
    for raw in raws:
        g = {k: _clean(raw.get(k)) for k in LOCATION_FIELDS}
        where = g["id"]
        if not g["id"] or not _ID.match(g["id"]):
            errors.append(_at(where, Text("invalid location id: letters, digits, . _ : - only, up to 64")))
        if g["id"] in seen:
            errors.append(_at(where, Text("linked to the service twice")))
        seen.add(g["id"])
        pcode, ccode = _place(g["province"], g["commune"], errors, warnings, where)
        n = len(errors)
        lat = _float(g["latitude"], "latitude", 8.0, 23.5, errors)
        lon = _float(g["longitude"], "longitude", 102.0, 117.5, errors)
        confidential = _bool(g["confidential_address"], "confidential_address", errors)
        errors[n:] = [_at(where, e) for e in errors[n:]]
        out.append(LocationRecord(id=g["id"], sal_id=g["sal_id"] or f"{service_id}@{g['id']}",
                                  address_id=g["address_id"] or f"{g['id']}-addr", name=g["name"],
                                  province_code=pcode, commune_code=ccode, address=g["address"],
                                  confidential=confidential, latitude=lat, longitude=lon))
    return out


def default_location(rec: Record) -> LocationRecord:
    """The single location of an entry written from the flat fields (the CSV template)."""
    loc_id = f"{rec.id}-loc"
    return LocationRecord(id=loc_id, sal_id=f"{rec.id}@{loc_id}", address_id=f"{loc_id}-addr", name=rec.name,
                          province_code=rec.province_code, commune_code=rec.commune_code, address=rec.address,
                          confidential=rec.confidential_address, latitude=rec.latitude, longitude=rec.longitude)


def all_locations(rec: Record) -> list[LocationRecord]:
    return rec.locations or [default_location(rec)]


def validate(raw: dict[str, Any]) -> tuple[Record, list[Any]]:
    """Check one entry given as field → text (CSV template fields). Returns the record and
    warnings; raises ``RecordError`` listing every problem."""
    g = {k: _clean(raw.get(k)) for k in FIELD_NAMES}
    errors: list[Text | str] = []
    warnings: list[Text | str] = []
    if not g["id"]:
        errors.append(Text("missing id: give every row a stable id (e.g. qn-shelter-01)"))
    elif not _ID.match(g["id"]):
        errors.append(Text("invalid id %(id)r: letters, digits, . _ : - only, up to 64", id=g["id"]))
    if not g["name"]:
        errors.append(Text("missing service name"))
    if not g["organization"]:
        errors.append(Text("missing organization name"))
    stype = resolve_type(g["service_type"])
    if stype is None:
        known = ", ".join(service_types())
        errors.append(Text("unknown service type %(type)r (known: %(known)s)", type=g["service_type"], known=known))
    province_code, commune_code = _place(g["province"], g["commune"], errors, warnings)
    phones: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in re.split(r"[;\n]", g["phones"]))):
        norm, reason = _normalize_number(part)
        if norm is None:
            errors.append(Text("invalid phone number: %(reason)s", reason=reason))
        else:
            phones.append((part, norm))
    try:
        h = _hours(g["hours"])
    except hours_mod.HoursError as exc:
        errors.append(reason_of(exc))
        h = hours_mod.Hours(False, (), False)
    tz = ""
    if g["timezone"]:
        try:
            tz = _timezone(g["timezone"])
        except ValueError as exc:
            errors.append(reason_of(exc))
    langs = [_fold(x) for x in re.split(r"[;,\s]+", g["languages"]) if x.strip()] or ["vi"]
    for lang in langs:
        if not re.match(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$", lang):
            errors.append(Text("invalid language %(lang)r: use ISO 639 codes like vi, en, hmn", lang=lang))
    method_key = _fold(g["referral_method"])
    if method_key not in REFERRAL_METHODS:
        errors.append(Text("unknown referral method %(method)r: webhook, email, sms or empty",
                           method=g["referral_method"]))
    method = REFERRAL_METHODS.get(method_key, "")
    if method == "webhook" and not re.match(r"^https?://\S+$", g["referral_webhook_url"]):
        errors.append(Text("webhook referrals need a referral_webhook_url (http…)"))
    if method == "webhook" and len(g["referral_webhook_secret"]) < 16:
        errors.append(Text("webhook referrals need a secret of at least 16 characters"))
    if method == "email" and not _EMAIL.match(g["referral_email"]):
        errors.append(Text("invalid referral email %(email)r", email=g["referral_email"]))
    referral_sms = ""
    if method == "sms" or g["referral_sms"]:
        norm, reason = normalize_number(g["referral_sms"])
        if norm is None:
            errors.append(Text("invalid referral SMS number: %(reason)s", reason=reason))
        else:
            referral_sms = norm
    if g["email"] and not _EMAIL.match(g["email"]):
        errors.append(Text("invalid email %(email)r", email=g["email"]))
    ints = {k: _int(g[k], k, errors) for k in ("beds_total", "beds_free", "beds_women", "beds_men", "beds_children")}
    if ints["beds_total"] is not None and ints["beds_free"] is not None and ints["beds_free"] > ints["beds_total"]:
        errors.append(Text("more free beds (%(free)s) than beds (%(total)s)", free=ints["beds_free"],
                           total=ints["beds_total"]))
    lat = _float(g["latitude"], "latitude", 8.0, 23.5, errors)
    lon = _float(g["longitude"], "longitude", 102.0, 117.5, errors)
    verified_at = None
    if g["last_verified_at"]:
        try:
            d = date.fromisoformat(g["last_verified_at"][:10])
            verified_at = datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
        except ValueError:
            errors.append(Text("invalid verification date %(value)r: use YYYY-MM-DD", value=g["last_verified_at"]))
    accessible = _bool(g["accessible"], "accessible", errors)
    confidential = _bool(g["confidential_address"], "confidential_address", errors)
    verified = _bool(g["verified"], "verified", errors)
    locations = _locations(g["id"], raw["__locations__"], errors, warnings) if raw.get("__locations__") else []
    if errors:
        raise RecordError(errors)
    rec = Record(
        id=g["id"], organization_id=g["organization_id"] or g["id"], organization=g["organization"],
        name=g["name"], alternate_name=g["alternate_name"], service_type=stype or "other",
        description=g["description"], phones=phones, email=g["email"], url=g["url"], hours=g["hours"], timezone=tz,
        open_24_7=h.always, open_on_holidays=h.open_on_holidays,
        slots=[(s.byday, s.opens_at, s.closes_at) for s in h.slots], languages=langs,
        accessible=accessible, **ints, province_code=province_code, commune_code=commune_code,
        address=g["address"], confidential_address=confidential, latitude=lat, longitude=lon,
        referral_method=method, referral_webhook_url=g["referral_webhook_url"],
        referral_webhook_secret=g["referral_webhook_secret"], referral_email=g["referral_email"],
        referral_sms=referral_sms, verified=verified, last_verified_at=verified_at,
        last_verified_by=g["last_verified_by"], source_note=g["source_note"], locations=locations,
    )
    if rec.locations and rec.locations == [default_location(rec)]:
        rec.locations = []  # one location under the default ids: the same entry as the template's
    return rec, warnings


def record_hash(rec: Record) -> str:
    """Content fingerprint; the hours count by their meaning (slots), not how they were written."""
    data = dict(vars(rec))
    data.pop("hours")
    for k in ("timezone", "locations"):  # fingerprints from before these fields stay valid
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
    parts = [rec.name, rec.alternate_name, rec.organization, t.vi, t.en, pl.province_name(rec.province_code),
             *pl.old_names_for(rec.province_code), pl.commune_name(rec.commune_code), rec.description[:300]]
    if not rec.confidential_address:
        parts.append(rec.address)
    for loc in rec.locations[1:]:  # the other places it is offered (never a confidential street address)
        parts += [pl.province_name(loc.province_code), pl.commune_name(loc.commune_code)]
        if not loc.confidential:
            parts.append(loc.address)
    doc = _fold_text(" ".join(parts))
    forms = [f for _, e in rec.phones for f in _phone_forms(e)]
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
        "source_note": rec.source_note, "search_doc": doc, "phone_digits": digits, "content_hash": digest,
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
    addr = loc.addresses[0] if loc.addresses else None
    if addr is None:
        addr = Address(id=lr.address_id)
        loc.addresses.append(addr)
    addr.address_1, addr.city = lr.address, pl.commune_name(lr.commune_code)
    addr.state_province = pl.province_name(lr.province_code)


def _children(session: Session, svc: Service, org: Organization, rec: Record, is_new: bool) -> None:
    pl = places()
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
    svc.phones = [Phone(number=n, e164=e) for n, e in rec.phones]
    svc.schedules = [Schedule(byday=d, opens_at=o, closes_at=c) for d, o, c in rec.slots]
    svc.language_rows = [Language(code=c) for c in rec.languages]
    svc.areas = [ServiceArea(province_code=rec.province_code or None, commune_code=rec.commune_code,
                             name=pl.commune_name(rec.commune_code) or pl.province_name(rec.province_code)
                             or "Toàn quốc / nationwide")]
    svc.attributes = [Attribute(taxonomy_term_id=f"{TAXONOMY}:{rec.service_type}")]


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
                             "confidential": lr.confidential})
                addrs.append({"id": lr.address_id, "location_id": lr.id, "address_1": lr.address,
                              "city": pl.commune_name(lr.commune_code), "state_province": pl.province_name(lr.province_code),
                              "postal_code": "", "country": "VN", "address_type": "physical"})
            sals.append({"id": lr.sal_id, "service_pk": pk, "location_id": lr.id})
        commune, province = pl.commune_name(rec.commune_code), pl.province_name(rec.province_code)
        phones += [{"service_pk": pk, "number": n, "e164": e, "description": ""} for n, e in rec.phones]
        scheds += [{"service_pk": pk, "byday": d, "opens_at": o, "closes_at": c} for d, o, c in rec.slots]
        langs += [{"service_pk": pk, "code": c} for c in rec.languages]
        areas.append({"service_pk": pk, "province_code": rec.province_code or None, "commune_code": rec.commune_code,
                      "name": commune or province or "Toàn quốc / nationwide"})
        attrs.append({"service_pk": pk, "taxonomy_term_id": f"{TAXONOMY}:{rec.service_type}"})
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
        session.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]
        return
    table = model.__table__  # type: ignore[attr-defined]
    cols = list(rows[0])
    json_cols = {c for c in cols if isinstance(table.c[c].type, type(Change.__table__.c.detail.type))}
    from psycopg.types.json import Jsonb

    dbapi = session.connection().connection.driver_connection
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
        selectinload(Service.phones), selectinload(Service.schedules), selectinload(Service.locations)))
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
        slots=[(s.byday, s.opens_at, s.closes_at) for s in svc.schedules],
        languages=[x for x in svc.languages.split(",") if x], accessible=svc.accessible,
        beds_total=svc.beds_total, beds_free=svc.beds_free, beds_women=svc.beds_women, beds_men=svc.beds_men,
        beds_children=svc.beds_children, province_code=svc.province_code or "", commune_code=svc.commune_code,
        address=addr.address_1 if addr else "", confidential_address=bool(loc and loc.confidential),
        latitude=loc.latitude if loc else None, longitude=loc.longitude if loc else None,
        referral_method=svc.referral_method, referral_webhook_url=svc.referral_webhook_url,
        referral_webhook_secret=svc.referral_webhook_secret, referral_email=svc.referral_email,
        referral_sms=svc.referral_sms, verified=svc.verified, last_verified_at=svc.last_verified_at,
        last_verified_by=svc.last_verified_by, source_note=svc.source_note,
    )
    rec.locations = [LocationRecord(
        id=sal.location.id, sal_id=sal.id, address_id=sal.location.addresses[0].id if sal.location.addresses else
        f"{sal.location.id}-addr", name=sal.location.name, province_code=sal.location.province_code or "",
        commune_code=sal.location.commune_code,
        address=sal.location.addresses[0].address_1 if sal.location.addresses else "",
        confidential=sal.location.confidential, latitude=sal.location.latitude, longitude=sal.location.longitude)
        for sal in svc.locations]
    if rec.locations == [default_location(rec)]:
        rec.locations = []
    return rec




def to_raw(svc: Service) -> dict[str, str]:
    """The entry as CSV-template fields (what ``validate`` reads back)."""
    r = to_record(svc)
    pl = places()
    yn = {True: "yes", False: "no"}
    return {
        "id": r.id, "organization_id": r.organization_id, "organization": r.organization, "name": r.name,
        "alternate_name": r.alternate_name, "service_type": r.service_type, "description": r.description,
        "phones": "; ".join(n for n, _ in r.phones), "email": r.email, "url": r.url, "hours": r.hours, "timezone": r.timezone,
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


def not_verified_since(session: Session, *, days: int = 180, now: datetime | None = None) -> list[Service]:
    cutoff = (now or utcnow()) - timedelta(days=days)
    return list(session.scalars(
        select(Service).where((Service.last_verified_at.is_(None)) | (Service.last_verified_at < cutoff))
        .order_by(Service.last_verified_at.is_not(None), Service.last_verified_at, Service.name)))


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
