"""Directory search: one box plus filters.

The query is folded (diacritics ignored both ways, đ included).  Words that name a service
type ("tạm lánh", "công an") become the preferred type; a place name (2025 province, old
province, old district) becomes the place to rank by; digit runs are phone fragments; the other
words are matched as word prefixes against the pre-folded search document, and a word that
matches nothing is replaced by its closest vocabulary words (typos).  SQLite uses FTS5; PostgreSQL
uses the trigram-indexed ``search_doc``.  Ranking: right type, right place (commune, then
province), then distance, then verified entries and the name.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.orm import Session

from directory import hours as hours_mod
from directory.models import (Address, Location, Organization, Phone, Schedule, Service, ServiceAtLocation,
                              Word)
from directory.places import UnknownPlace, distance_km, places
from directory.service_types import find_in_words, phrases as type_phrases, resolve as resolve_type, service_types
from hotline.db import utcnow
from hotline.phone import SHORT_CODES, display
from hotline.text import fold


class SearchError(ValueError):
    pass


@dataclass
class Query:
    q: str = ""
    service_type: str | None = None
    province: str | None = None
    commune: str | None = None
    open_now: bool = False
    free_bed: bool = False
    accessible: bool = False
    language: str | None = None
    limit: int = 20


@dataclass
class Interpretation:
    terms: list[list[str]] = field(default_factory=list)  # each term: alternatives (typo expansions)
    phone: str | None = None
    type_code: str | None = None
    type_from_text: bool = False
    province_code: str | None = None
    commune_code: str | None = None
    place_label: str = ""
    lat: float | None = None
    lon: float | None = None
    corrections: dict[str, list[str]] = field(default_factory=dict)
    phrase: str = ""  # the whole query, folded and corrected: entries containing it rank first

    def as_dict(self) -> dict[str, Any]:
        return {"terms": self.terms, "phone": self.phone, "type": self.type_code, "province": self.province_code,
                "commune": self.commune_code, "place": self.place_label, "corrections": self.corrections}


_TOKEN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1)
def _static_words() -> frozenset[str]:
    """Words of place names and type names: known even when no entry uses them yet."""
    pl = places()
    words = {w for k in pl.all_place_keys for w in k.split()}
    words |= {w for phrase, _ in type_phrases() for w in phrase}
    return frozenset(w for w in words if len(w) >= 2)


def _known_prefixes(session: Session, words: list[str]) -> set[str]:
    """Which words begin some vocabulary word: one round trip for the whole query."""
    words = [w for w in dict.fromkeys(words) if len(w) >= 2 and not w.isdigit() and w not in _static_words()]
    if not words:
        return set()
    checks = [select(Word.word).where(Word.word >= w, Word.word < w + "\uffff").limit(1).exists().label(f"k{i}")
              for i, w in enumerate(words)]
    row = session.execute(select(*checks)).one()
    return {w for w, hit in zip(words, row, strict=True) if hit}


def _expand(session: Session, word: str, interp: Interpretation, known: set[str]) -> list[str]:
    """The word itself if it is known (a place or type word, or some entry has a word starting
    with it), else its closest known words (typos)."""
    if word.isdigit() or len(word) < 2 or word in _static_words() or word in known:
        return [word]
    n = len(word)
    if session.get_bind().dialect.name == "postgresql":  # trigram similarity, GIN-indexed
        cands = list(session.scalars(select(Word.word).where(Word.word.op("%")(word))
                                     .order_by(func.similarity(Word.word, word).desc()).limit(30)))
    else:  # candidates share the first two letters (most typos), or the 2nd-3rd (a wrong first letter)
        cands = list(session.scalars(select(Word.word).where(
            Word.word >= word[:2], Word.word < word[:2] + "\uffff", Word.length.between(n - 2, n + 2)).limit(3000)))
        if n >= 4:
            cands += list(session.scalars(select(Word.word).where(
                Word.word >= word[1:3], Word.word < word[1:3] + "\uffff",
                Word.length.between(n - 2, n + 2)).limit(1000)))
    cands += [w for w in _static_words() if w[0] == word[0] and abs(len(w) - n) <= 2]
    best = difflib.get_close_matches(word, cands, n=3, cutoff=0.72 if n > 3 else 0.66)
    if best:
        interp.corrections[word] = best
        return best
    return [word]


def interpret(session: Session, query: Query) -> Interpretation:
    interp = Interpretation()
    words = _TOKEN.findall(fold(query.q).replace("+84", " 0"))
    # Phone fragments: runs of digit tokens ("0912 345 678") joined.
    digits, rest = [], []
    for w in words:
        (digits if w.isdigit() else rest).append(w)
    joined = "".join(digits)
    if joined:
        if joined.startswith("84") and len(joined) > 9:
            joined = "0" + joined[2:]
        if len(joined) >= 3:
            interp.phone = joined
    known = _known_prefixes(session, rest)
    expanded = [(_expand(session, w, interp, known) if len(w) >= 2 else [w]) for w in rest]
    words = [alts[0] for alts in expanded]
    alternatives = {alts[0]: alts for alts in expanded}
    interp.phrase = " ".join(words)
    pl = places()
    if query.service_type:
        code = resolve_type(query.service_type)
        if code is None:
            raise SearchError(f"loại dịch vụ {query.service_type!r} không có / unknown service type "
                              f"(known: {', '.join(service_types())})")
        interp.type_code = code
    else:
        code, remaining = find_in_words(words)
        if code:
            interp.type_code, interp.type_from_text, words = code, True, remaining
    try:
        if query.province:
            interp.province_code, _ = pl.province(query.province)
            interp.place_label = pl.province_name(interp.province_code)
        if query.commune:
            interp.commune_code = pl.commune(query.commune, interp.province_code)
            interp.province_code = pl.communes[interp.commune_code].province_code
            interp.place_label = pl.commune_name(interp.commune_code)
    except UnknownPlace as exc:
        raise SearchError(str(exc)) from None
    if interp.province_code:
        interp.lat, interp.lon = pl.centroid(interp.province_code, interp.commune_code)
    else:
        match, remaining = pl.find_in_text(words)
        if match:
            words = remaining
            interp.province_code, interp.lat, interp.lon = match.province_code, match.lat, match.lon
            interp.place_label = match.label
    interp.terms = [alternatives.get(w, [w]) for w in words if len(w) >= 2]
    return interp


def _fts_expr(terms: list[list[str]]) -> str:
    return " AND ".join("(" + " OR ".join(f'"{w}"*' for w in alts) + ")" for alts in terms)


def _text_terms(interp: Interpretation) -> list[list[str]]:
    """Words to match, with the phone fragment as a prefix of the indexed "tel…" suffix words."""
    return interp.terms + ([[f"tel{interp.phone}"]] if interp.phone else [])


def _tsquery(terms: list[list[str]]) -> str:
    return " & ".join("(" + " | ".join(f"{w}:*" for w in alts) + ")" for alts in terms)


def _conditions(session: Session, query: Query, interp: Interpretation, hard_type: bool) -> list[Any]:
    conds: list[Any] = [Service.status == "active"]
    dialect = session.get_bind().dialect.name
    if interp.terms or interp.phone:
        if dialect == "sqlite":
            conds.append(Service.pk.in_(select(text("rowid")).select_from(text("dir_service_fts"))
                                        .where(text("dir_service_fts MATCH :fts"))))
        else:
            conds.append(text("to_tsvector('simple'::regconfig, dir_services.search_doc) @@ "
                              "to_tsquery('simple'::regconfig, :tsq)"))
    if interp.type_code and hard_type:
        conds.append(Service.service_type == interp.type_code)
    if query.province and interp.province_code:
        conds.append(Service.province_code == interp.province_code)
    if query.commune and interp.commune_code:
        conds.append(Service.commune_code == interp.commune_code)
    if query.free_bed:
        conds.append(Service.beds_free > 0)
    if query.accessible:
        conds.append(Service.accessible.is_(True))
    if query.language:
        conds.append(Service.languages.like(f"%,{fold(query.language)},%"))
    return conds


def _order(interp: Interpretation, *, phrase: bool, hard_type: bool) -> list[Any]:
    order: list[Any] = []
    if interp.type_code and not hard_type:
        order.append(case((Service.service_type == interp.type_code, 0), else_=1))
    if interp.commune_code:
        order.append(case((Service.commune_code == interp.commune_code, 0), else_=1))
    if phrase and len(interp.phrase) >= 4:
        order.append(case((func.substr(Service.search_doc, 1, 160).like(f"% {interp.phrase}%"), 0), else_=1))
    if interp.lat is not None and interp.lon is not None:
        k = math.cos(math.radians(interp.lat))
        dist = (Service.lat - interp.lat) * (Service.lat - interp.lat) + \
            (Service.lon - interp.lon) * (Service.lon - interp.lon) * (k * k)
        order.append(func.coalesce(dist, 1e9))
    if interp.terms:
        first = interp.terms[0][0]
        order.append(case((Service.search_doc.like(f" {first}%"), 0), else_=1))
    order += [Service.verified.desc(), Service.name, Service.pk]
    return order


def _tiers(query: Query, interp: Interpretation) -> list[tuple[list[Any], bool]]:
    """Where to look, nearest first: the place's province, then widening boxes around it, then
    everywhere else.  Each tier is small enough to rank quickly; (conditions, rank by phrase)."""
    p = interp.province_code
    if not p:
        return [([], bool(interp.terms))]
    tiers: list[tuple[list[Any], bool]] = [([Service.province_code == p], True)]
    if query.province or query.commune:
        return tiers
    elsewhere = or_(Service.province_code != p, Service.province_code.is_(None))
    if interp.lat is not None and interp.lon is not None:
        for d in (1.0, 3.0):
            tiers.append(([elsewhere, Service.lat.between(interp.lat - d, interp.lat + d),
                           Service.lon.between(interp.lon - d, interp.lon + d)], False))
    tiers.append(([elsewhere], False))
    return tiers


def search(session: Session, query: Query, *, now: datetime | None = None, staff: bool = False) -> tuple[Interpretation, list[dict[str, Any]]]:
    """Run a search; results are dicts ready for JSON/HTML (see ``SearchResultOut``)."""
    interp = interpret(session, query)
    now = now or utcnow()
    limit = max(1, min(query.limit, 100))
    words = _text_terms(interp)
    params = {"fts": _fts_expr(words), "tsq": _tsquery(words)} if words else {}
    hard_type = bool(query.service_type) or interp.type_from_text
    rows = _run(session, query, interp, hard_type, limit, params, now)
    if not rows and interp.type_from_text and not query.service_type:
        # The type words may have been part of a name: search them as text instead.
        hard_type = False
        rows = _run(session, query, interp, hard_type, limit, params, now)
    return interp, _page(session, rows, interp, now, staff)


def _run(session: Session, query: Query, interp: Interpretation, hard_type: bool, limit: int,
         params: dict[str, str], now: datetime) -> list[int]:
    """Rank on the bare table (primary keys only), tier by tier, then load the few entries shown."""
    base = _conditions(session, query, interp, hard_type)
    pks: list[int] = []
    for extra, phrase in _tiers(query, interp):
        conds = [*base, *extra]
        if pks:
            conds.append(Service.pk.not_in(pks))
        ranked = select(Service.pk).where(and_(*conds)).order_by(*_order(interp, phrase=phrase, hard_type=hard_type))
        want = limit - len(pks)
        if query.open_now:
            pks += _open_pks(session, ranked, params, want, now)
        else:
            pks += list(session.scalars(ranked.limit(want), params))
        if len(pks) >= limit:
            break
    return pks[:limit]


def _open_pks(session: Session, ranked: Any, params: dict[str, str], limit: int, now: datetime) -> list[int]:
    """Walk the ranking in order, checking schedules a hundred entries at a time."""
    out: list[int] = []
    offset = 0
    while len(out) < limit and offset < 20000:
        chunk = list(session.execute(ranked.add_columns(Service.open_24_7, Service.open_on_holidays,
                                                        Service.timezone).limit(200).offset(offset), params))
        offset += 200
        need = [pk for pk, always, _, _ in chunk if not always]
        slots: dict[int, list[hours_mod.Slot]] = {}
        if need:
            for pk, d, o, c in session.execute(select(Schedule.service_pk, Schedule.byday, Schedule.opens_at,
                                                      Schedule.closes_at).where(Schedule.service_pk.in_(need))):
                slots.setdefault(pk, []).append(hours_mod.Slot(d, o, c))
        for pk, always, holidays_open, tz in chunk:
            if hours_mod.is_open(always=always, slots=slots.get(pk, ()), open_on_holidays=holidays_open,
                                 now=now, timezone=tz):
                out.append(pk)
                if len(out) == limit:
                    return out
        if len(chunk) < 200:
            break
    return out


def is_open(svc: Service, now: datetime) -> bool:
    return hours_mod.is_open(always=svc.open_24_7, open_on_holidays=svc.open_on_holidays, now=now,
                             slots=[hours_mod.Slot(s.byday, s.opens_at, s.closes_at) for s in svc.schedules],
                             timezone=svc.timezone)


def _page(session: Session, pks: list[int], interp: Interpretation, now: datetime, staff: bool) -> list[dict[str, Any]]:
    """The results shown, read as plain rows (four small queries, no ORM objects)."""
    if not pks:
        return []
    pl = places()
    types = service_types()
    rows = {r.pk: r for r in session.execute(
        select(Service.pk, Service.id, Service.name, Service.service_type, Service.open_24_7, Service.open_on_holidays,
               Service.timezone, Service.hours_text, Service.beds_free, Service.beds_total, Service.accessible,
               Service.languages, Service.province_code, Service.commune_code, Service.verified,
               Service.last_verified_at, Service.lat, Service.lon, Service.referral_accepts,
               Organization.name.label("organization"))
        .join(Organization, Organization.id == Service.organization_id).where(Service.pk.in_(pks)))}
    phones: dict[int, list[dict[str, str]]] = {}
    for pk, number, e164 in session.execute(select(Phone.service_pk, Phone.number, Phone.e164)
                                            .where(Phone.service_pk.in_(pks)).order_by(Phone.pk)):
        phones.setdefault(pk, []).append({"number": number, "e164": e164})
    slots: dict[int, list[hours_mod.Slot]] = {}
    for pk, d, o, c in session.execute(select(Schedule.service_pk, Schedule.byday, Schedule.opens_at,
                                              Schedule.closes_at).where(Schedule.service_pk.in_(pks))):
        slots.setdefault(pk, []).append(hours_mod.Slot(d, o, c))
    places_of: dict[int, tuple[bool, str | None, str | None, str]] = {}
    for pk, confidential, pcode, ccode, line in session.execute(
            select(ServiceAtLocation.service_pk, Location.confidential, Location.province_code, Location.commune_code,
                   Address.address_1)
            .join(Location, Location.id == ServiceAtLocation.location_id)
            .outerjoin(Address, Address.location_id == Location.id)
            .where(ServiceAtLocation.service_pk.in_(pks)).order_by(ServiceAtLocation.pk, Address.pk)):
        places_of.setdefault(pk, (bool(confidential), pcode, ccode, line or ""))
    out = []
    for pk in pks:
        r = rows.get(pk)
        if r is None:
            continue
        t = types[r.service_type]
        ph = phones.get(pk, [])
        first = ph[0]["e164"] if ph else ""
        dist = None
        if interp.lat is not None and interp.lon is not None and r.lat is not None and r.lon is not None:
            dist = round(distance_km(interp.lat, interp.lon, r.lat, r.lon), 1)
        confidential, pcode, ccode, line = places_of.get(pk, (False, None, None, ""))
        full = ", ".join(x for x in (line, pl.commune_name(ccode), pl.province_name(pcode)) if x)
        if confidential and not staff:
            address = f"Địa chỉ bảo mật / confidential address ({pl.province_name(r.province_code)})"
        else:
            address = full
        out.append({
            "id": r.id, "name": r.name, "organization": r.organization, "service_type": r.service_type,
            "service_type_vi": t.vi, "service_type_en": t.en,
            "call_number": first if first in SHORT_CODES else (display(first) if first else ""),
            "phones": ph,
            "open_now": hours_mod.is_open(always=r.open_24_7, slots=slots.get(pk, ()), now=now,
                                          open_on_holidays=r.open_on_holidays, timezone=r.timezone),
            "open_24_7": r.open_24_7, "hours": r.hours_text, "beds_free": r.beds_free, "beds_total": r.beds_total,
            "accessible": r.accessible, "languages": [x for x in r.languages.split(",") if x],
            "province": pl.province_name(r.province_code), "commune": pl.commune_name(r.commune_code),
            "address": address, "confidential_address": confidential, "verified": r.verified,
            "last_verified_at": r.last_verified_at, "distance_km": dist, "accepts_referrals": r.referral_accepts,
        })
    return out
