"""Checking one directory entry: field → text in (the CSV template's fields, or an HSDS service with
its locations, schedules and coverage), a ``Record`` out, or ``RecordError`` listing every problem
with what to do about it.  ``directory.service`` saves records; ``directory.importers`` reads files.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any

import phonenumbers

from directory import hours as hours_mod
from directory import schedules as sched_mod
from directory.places import UnknownPlace, places
from directory.schemas import FIELD_NAMES, LocationRecord, Record
from directory.service_types import resolve as resolve_type
from directory.service_types import service_types
from hotline.i18n import Text
from hotline.phone import normalize_number
from hotline.text import fold, nfc

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
                   "latitude", "longitude", "location_type", "phones")


def _phones(text: str, errors: list[Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in re.split(r"[;\n]", text))):
        norm, reason = _normalize_number(part)
        if norm is None:
            errors.append(Text("invalid phone number: %(reason)s", reason=reason))
        else:
            out.append((part, norm))
    return out


def _location(service_id: str, raw: dict[str, Any], errors: list[Any], warnings: list[Any]) -> LocationRecord:
    g = {k: _clean(raw.get(k)) for k in LOCATION_FIELDS}
    where = g["id"]
    n = len(errors)
    if not g["id"] or not _ID.match(g["id"]):
        errors.append(Text("invalid location id: letters, digits, . _ : - only, up to 64"))
    ltype = (g["location_type"] or "physical").lower()
    if ltype not in ("physical", "postal", "virtual"):
        errors.append(Text("location_type %(value)r: physical, postal or virtual", value=g["location_type"]))
    pcode, ccode = "", None
    if ltype != "virtual" or g["province"]:
        if g["province"]:
            pcode, ccode = _place(g["province"], g["commune"], errors, warnings, None)
        elif g["commune"]:
            errors.append(Text("commune %(commune)r without its province", commune=g["commune"]))
    lat = _float(g["latitude"], "latitude", 8.0, 23.5, errors)
    lon = _float(g["longitude"], "longitude", 102.0, 117.5, errors)
    confidential = _bool(g["confidential_address"], "confidential_address", errors)
    phones = _phones(g["phones"], errors)
    errors[n:] = [_at(where, e) for e in errors[n:]]
    return LocationRecord(id=g["id"], sal_id=g["sal_id"] or f"{service_id}@{g['id']}",
                          address_id=g["address_id"] or f"{g['id']}-addr", name=g["name"],
                          province_code=pcode, commune_code=ccode, address=g["address"],
                          confidential=confidential, latitude=lat, longitude=lon, location_type=ltype, phones=phones)


def _locations(service_id: str, raws: list[dict[str, Any]], errors: list[Any],
               warnings: list[Any]) -> list[LocationRecord]:
    """Every location of an HSDS service (``raw["__locations__"]``: LOCATION_FIELDS as text)."""
    out: list[LocationRecord] = []
    seen: set[str] = set()
    for raw in raws:
        lr = _location(service_id, raw, errors, warnings)
        if lr.id in seen:
            errors.append(_at(lr.id, Text("linked to the service twice")))
        seen.add(lr.id)
        out.append(lr)
    return out


def _rules(raws: list[dict[str, Any]], errors: list[Any], tz_errors: list[Any]) -> list[sched_mod.Rule]:
    """HSDS schedule rows (each with ``id`` and optional ``location_id``) → rules."""
    out = []
    for i, raw in enumerate(raws):
        try:
            rule = sched_mod.parse(raw, rule_id=_clean(raw.get("id")) or f"sc{i}",
                                   location_id=_clean(raw.get("location_id")))
        except sched_mod.RuleError as exc:
            errors.append(Text("schedule %(id)r: %(problem)s", id=_clean(raw.get("id")), problem=reason_of(exc)))
            continue
        if rule.timezone and not sched_mod.is_offset(rule.timezone):
            try:
                rule.timezone = _timezone(rule.timezone)
            except ValueError as exc:
                tz_errors.append(reason_of(exc))
        out.append(rule)
    return out


def _coverage(names: list[str], errors: list[Any], warnings: list[Any]) -> list[str]:
    """HSDS service_area names (or codes) → province codes; ["*"] for nationwide; unknown names warn."""
    out: list[str] = []
    for name in names:
        name = _clean(name)
        if not name:
            continue
        if _fold(name) in NATIONAL:
            return ["*"]
        try:
            code, _ = _province(name)
        except UnknownPlace:
            head = name.rsplit(",", 1)
            try:
                code, _ = _province(head[-1].strip()) if len(head) == 2 else ("", "")
            except UnknownPlace:
                code = ""
            if not code:
                warnings.append(Text("service area %(name)r is not a province: kept as text", name=name))
                continue
        if code not in out:
            out.append(code)
    return out


def default_location(rec: Record) -> LocationRecord:
    """The single location of an entry written from the flat fields (the CSV template)."""
    loc_id = f"{rec.id}-loc"
    return LocationRecord(id=loc_id, sal_id=f"{rec.id}@{loc_id}", address_id=f"{loc_id}-addr", name=rec.name,
                          province_code=rec.province_code, commune_code=rec.commune_code, address=rec.address,
                          confidential=rec.confidential_address, latitude=rec.latitude, longitude=rec.longitude)


def all_locations(rec: Record) -> list[LocationRecord]:
    return rec.locations or [default_location(rec)]


def _basics(g: dict[str, str], errors: list[Any]) -> str | None:
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
    if g["email"] and not _EMAIL.match(g["email"]):
        errors.append(Text("invalid email %(email)r", email=g["email"]))
    return stype


def _languages(g: dict[str, str], errors: list[Any]) -> list[str]:
    langs = [_fold(x) for x in re.split(r"[;,\s]+", g["languages"]) if x.strip()] or ["vi"]
    for lang in langs:
        if not re.match(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$", lang):
            errors.append(Text("invalid language %(lang)r: use ISO 639 codes like vi, en, hmn", lang=lang))
    return list(dict.fromkeys(langs))


def _webhook_scheme() -> str:
    """https:// only (#14): plain http:// only where a development set-up allows it explicitly."""
    from hotline.settings import get_settings

    s = get_settings()
    return r"^https?://\S+$" if s.referral_allow_http_webhooks and not s.is_production else r"^https://\S+$"


def _referral(g: dict[str, str], errors: list[Any]) -> tuple[str, str]:
    method_key = _fold(g["referral_method"])
    if method_key not in REFERRAL_METHODS:
        errors.append(Text("unknown referral method %(method)r: webhook, email, sms or empty",
                           method=g["referral_method"]))
    method = REFERRAL_METHODS.get(method_key, "")
    if method == "webhook" and not re.match(_webhook_scheme(), g["referral_webhook_url"]):
        errors.append(Text("webhook referrals need a referral_webhook_url starting with https://"))
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
    return method, referral_sms


def _beds(g: dict[str, str], errors: list[Any]) -> dict[str, int | None]:
    ints = {k: _int(g[k], k, errors) for k in ("beds_total", "beds_free", "beds_women", "beds_men", "beds_children")}
    if ints["beds_total"] is not None and ints["beds_free"] is not None and ints["beds_free"] > ints["beds_total"]:
        errors.append(Text("more free beds (%(free)s) than beds (%(total)s)", free=ints["beds_free"],
                           total=ints["beds_total"]))
    return ints


def _verified_at(value: str, errors: list[Any]) -> datetime | None:
    if not value:
        return None
    try:
        d = date.fromisoformat(value[:10])
    except ValueError:
        errors.append(Text("invalid verification date %(value)r: use YYYY-MM-DD", value=value))
        return None
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def _template_rules(h: hours_mod.Hours, service_id: str) -> list[sched_mod.Rule]:
    """The template's written hours as weekly rules, one per opening time."""
    groups: dict[tuple[str, str], list[str]] = {}
    for sl in h.slots:
        groups.setdefault((sl.opens_at, sl.closes_at), []).append(sl.byday)
    return [sched_mod.Rule(id=f"{service_id}-sc{i}", freq="WEEKLY", byday=",".join(days), opens_at=o, closes_at=c)
            for i, ((o, c), days) in enumerate(groups.items())]


def _hours_of(g: dict[str, str], raw: dict[str, Any], errors: list[Any]) -> tuple[hours_mod.Hours, list[sched_mod.Rule]]:
    if raw.get("__rules__") is not None:  # HSDS schedules
        always = _fold(g["hours"]) == "24/7"
        holidays = _fold(raw.get("__open_on_holidays__") or "") in _YES
        rules = [] if always else _rules(raw["__rules__"], errors, errors)
        return hours_mod.Hours(always, (), always or holidays), rules
    try:
        h = _hours(g["hours"])
    except hours_mod.HoursError as exc:
        errors.append(reason_of(exc))
        h = hours_mod.Hours(False, (), False)
    return h, _template_rules(h, g["id"])


def _where(g: dict[str, str], raw: dict[str, Any], locations: list[LocationRecord], coverage: list[str],
           errors: list[Any], warnings: list[Any]) -> tuple[str, str | None]:
    """The entry's own province and commune: the template's columns, or its first located place,
    or the one province it covers (HSDS); none = nationwide."""
    if not raw.get("__hsds__"):
        return _place(g["province"], g["commune"], errors, warnings)
    first = next((lr for lr in locations if lr.province_code), None)
    if first is not None:
        return first.province_code, first.commune_code
    if g["province"]:
        return _place(g["province"], g["commune"], errors, warnings)
    return (coverage[0], None) if len(coverage) == 1 and coverage[0] != "*" else ("", None)


def validate(raw: dict[str, Any]) -> tuple[Record, list[Any]]:
    """Check one entry given as field → text (CSV template fields; HSDS imports add ``__hsds__``,
    ``__locations__``, ``__rules__`` and ``__coverage__``). Returns the record and warnings; raises
    ``RecordError`` listing every problem."""
    g = {k: _clean(raw.get(k)) for k in FIELD_NAMES}
    errors: list[Text | str] = []
    warnings: list[Text | str] = []
    stype = _basics(g, errors)
    locations = _locations(g["id"], raw["__locations__"], errors, warnings) if raw.get("__locations__") else []
    coverage = _coverage(list(raw.get("__coverage__") or []), errors, warnings)
    province_code, commune_code = _where(g, raw, locations, coverage, errors, warnings)
    phones = _phones(g["phones"], errors)
    h, rules = _hours_of(g, raw, errors)
    tz = ""
    if g["timezone"]:
        try:
            tz = _timezone(g["timezone"])
        except ValueError as exc:
            errors.append(reason_of(exc))
    langs = _languages(g, errors)
    method, referral_sms = _referral(g, errors)
    ints = _beds(g, errors)
    first = locations[0] if locations else None
    lat = first.latitude if first else _float(g["latitude"], "latitude", 8.0, 23.5, errors)
    lon = first.longitude if first else _float(g["longitude"], "longitude", 102.0, 117.5, errors)
    verified_at = _verified_at(g["last_verified_at"], errors)
    accessible = _bool(g["accessible"], "accessible", errors)
    confidential = first.confidential if first else _bool(g["confidential_address"], "confidential_address", errors)
    verified = _bool(g["verified"], "verified", errors)
    if errors:
        raise RecordError(errors)
    sched = sched_mod.Schedules(rules)
    rec = Record(
        id=g["id"], organization_id=g["organization_id"] or g["id"], organization=g["organization"],
        name=g["name"], alternate_name=g["alternate_name"], service_type=stype or "other",
        description=g["description"], phones=phones, email=g["email"], url=g["url"],
        hours=g["hours"] if not raw.get("__hsds__") else (hours_mod.render(h) if h.always else ""), timezone=tz,
        open_24_7=h.always, open_on_holidays=h.open_on_holidays,
        slots=[s for r in rules for s in r.slots()], languages=langs,
        accessible=accessible, **ints, province_code=province_code, commune_code=commune_code,
        address=first.address if first else g["address"], confidential_address=confidential, latitude=lat,
        longitude=lon, referral_method=method, referral_webhook_url=g["referral_webhook_url"],
        referral_webhook_secret=g["referral_webhook_secret"], referral_email=g["referral_email"],
        referral_sms=referral_sms, verified=verified, last_verified_at=verified_at,
        last_verified_by=g["last_verified_by"], source_note=g["source_note"], locations=locations,
        schedules=rules, hours_note=sched.note, coverage=coverage if coverage != [province_code] else [],
        terms=list(raw.get("__terms__") or []),
    )
    if rec.locations and rec.locations == [default_location(rec)]:
        rec.locations = []  # one location under the default ids: the same entry as the template's
    return rec, warnings
