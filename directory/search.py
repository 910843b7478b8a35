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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from directory import hours as hours_mod
from directory import schedules as sched_mod
from directory.models import Schedule, Service, Word
from directory.places import UnknownPlace, distance_km, places
from directory.service_types import find_in_words, service_types
from directory.service_types import phrases as type_phrases
from directory.service_types import resolve as resolve_type
from hotline import errors
from hotline.db import UTCDateTime, utcnow
from hotline.i18n import Text
from hotline.phone import SHORT_CODES, display
from hotline.settings import get_settings
from hotline.text import fold


class SearchError(errors.Invalid):
    """A query that cannot be run (unknown type or place, a bad "open at"): 422."""


@dataclass
class Query:
    q: str = ""
    service_type: str | None = None
    province: str | None = None
    commune: str | None = None
    open_now: bool = False
    open_at: datetime | None = None  # open at that moment (aware); implies the open filter
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
    whole: set[str] = field(default_factory=set)  # words matched as whole words, not as prefixes
    typing: set[str] = field(default_factory=set)  # the last word of the query (or its corrections): prefixes
    type_phrase: str = ""  # the words that named the type ("giam dinh phap y"): they still rank
    place_asked: bool = False  # a place was asked for (filter or words), so "none there" is worth saying
    notices: list[Text] = field(default_factory=list)  # what the search did, said before the results

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


# Words known to begin some vocabulary word, per database.  The vocabulary only grows (entries add
# words, nothing removes them), so a word once known stays known: only unknown words (typos, or words
# new since the last look) cost a round trip.
_KNOWN: dict[str, set[str]] = {}
_WHOLE: dict[str, set[str]] = {}  # words that are vocabulary words themselves


def clear_caches() -> None:
    """Forget the known words (tests that empty the tables)."""
    _KNOWN.clear()
    _WHOLE.clear()


_PG_VOCAB = (
    "SELECT w, EXISTS (SELECT 1 FROM dir_words WHERE word >= w AND word < w || :top), "
    "EXISTS (SELECT 1 FROM dir_words WHERE word = w), "
    "ARRAY(SELECT word FROM dir_words WHERE word % w ORDER BY similarity(word, w) DESC LIMIT 30) "
    "FROM unnest(CAST(:ws AS text[])) AS w")


def _known_prefixes(session: Session, words: list[str]) -> tuple[set[str], set[str], dict[str, list[str]]]:
    """Which words begin some vocabulary word, and which are whole vocabulary words; at most one
    round trip for the whole query.  On PostgreSQL the same trip brings the typo candidates
    (trigram similarity, GIN-indexed) of the words that begin none."""
    words = [w for w in dict.fromkeys(words) if len(w) >= 2 and not w.isdigit() and w not in _static_words()]
    if not words:
        return set(), set(), {}
    db = session.get_bind().engine.url.render_as_string(hide_password=True)
    known, whole = _KNOWN.setdefault(db, set()), _WHOLE.setdefault(db, set())
    ask = [w for w in words if w not in whole]  # whole words are known prefixes too
    cands: dict[str, list[str]] = {}
    if ask and session.get_bind().dialect.name == "postgresql":
        for row in session.execute(_stmt(_PG_VOCAB, False), {"ws": ask, "top": "\uffff"}).all():
            w, hit, exact, similar = str(row[0]), row[1], row[2], row[3]
            if hit:
                known.add(w)
            else:
                cands[w] = list(similar)
            if exact:
                whole.add(w)
    elif ask:
        checks = " , ".join(f"EXISTS (SELECT 1 FROM dir_words WHERE word >= :w{i} AND word < :u{i}), "
                            f"EXISTS (SELECT 1 FROM dir_words WHERE word = :w{i})" for i in range(len(ask)))
        params = {**{f"w{i}": w for i, w in enumerate(ask)}, **{f"u{i}": w + "\uffff" for i, w in enumerate(ask)}}
        row = session.execute(_stmt(f"SELECT {checks}", False), params).one()
        for i, w in enumerate(ask):
            if row[2 * i]:
                known.add(w)
            if row[2 * i + 1]:
                whole.add(w)
    return {w for w in words if w in known or w in whole}, {w for w in words if w in whole}, cands


def _expand(session: Session, word: str, interp: Interpretation, known: set[str],
            prefetched: dict[str, list[str]]) -> list[str]:
    """The word itself if it is known (a place or type word, or some entry has a word starting
    with it), else its closest known words (typos)."""
    if word.isdigit() or len(word) < 2 or word in _static_words() or word in known:
        return [word]
    n = len(word)
    if word in prefetched:
        cands = list(prefetched[word])
    elif session.get_bind().dialect.name == "postgresql":  # trigram similarity, GIN-indexed
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


def _phone_fragment(words: list[str], interp: Interpretation) -> list[str]:
    """Runs of digit tokens ("0912 345 678") joined into the phone fragment; the other words back."""
    digits = [w for w in words if w.isdigit()]
    joined = "".join(digits)
    if joined.startswith("84") and len(joined) > 9:
        joined = "0" + joined[2:]
    if len(joined) >= 3:
        interp.phone = joined
    return [w for w in words if not w.isdigit()]


def _words(session: Session, rest: list[str], interp: Interpretation) -> tuple[list[str], dict[str, list[str]]]:
    """Typos replaced by their closest known words; which words are matched whole.

    Words matched whole: place and type words, typo corrections and vocabulary words, except the
    last one typed (it may be unfinished).  A short whole word ("phu", "nu") as a prefix matches
    "phuong", "nuoc", … in most entries: slower, and it ranks the wrong entries in."""
    known, whole, prefetched = _known_prefixes(session, rest)
    expanded = [(_expand(session, w, interp, known, prefetched) if len(w) >= 2 else [w]) for w in rest]
    static = _static_words()
    interp.whole = {w for alts in expanded for w in alts if w in whole or w in static}
    for alts in interp.corrections.values():
        interp.whole.update(alts)
    if expanded:
        interp.typing = set(expanded[-1])
    return [alts[0] for alts in expanded], {alts[0]: alts for alts in expanded}


def _service_type(query: Query, words: list[str], interp: Interpretation) -> list[str]:
    """The type asked for (filter, or words naming it: removed from the words, kept for ranking)."""
    if query.service_type:
        code = resolve_type(query.service_type)
        if code is None:
            raise SearchError(Text("unknown service type %(type)r (known: %(known)s)", type=query.service_type,
                                   known=", ".join(service_types())))
        interp.type_code = code
        return words
    code, remaining = find_in_words(words)
    if not code:
        return words
    left = list(remaining)
    named = []
    for w in words:
        if left and left[0] == w:
            left.pop(0)
        else:
            named.append(w)
    interp.type_phrase = " ".join(named)
    interp.type_code, interp.type_from_text = code, True
    return remaining


def _place(query: Query, words: list[str], interp: Interpretation) -> list[str]:
    """The place asked for (filters, or a place named in the words: removed from them)."""
    pl = places()
    try:
        if query.province:
            interp.province_code, _ = pl.province(query.province)
            interp.place_label = pl.province_name(interp.province_code)
        if query.commune:
            interp.commune_code = pl.commune(query.commune, interp.province_code)
            interp.province_code = pl.communes[interp.commune_code].province_code
            interp.place_label = pl.commune_name(interp.commune_code)
    except UnknownPlace as exc:
        raise SearchError(*exc.args) from None
    if interp.province_code:
        interp.place_asked = True
        interp.lat, interp.lon = pl.centroid(interp.province_code, interp.commune_code)
        return words
    match, remaining = pl.find_in_text(words)
    if not match:
        return words
    interp.province_code, interp.lat, interp.lon = match.province_code, match.lat, match.lon
    interp.place_label, interp.place_asked = match.label, True
    return remaining


def interpret(session: Session, query: Query) -> Interpretation:
    interp = Interpretation()
    rest = _phone_fragment(_TOKEN.findall(fold(query.q).replace("+84", " 0")), interp)
    words, alternatives = _words(session, rest, interp)
    interp.phrase = " ".join(words)
    words = _service_type(query, words, interp)
    words = _place(query, words, interp)
    interp.terms = [alternatives.get(w, [w]) for w in words if len(w) >= 2]
    return interp


def _as_prefix(w: str, interp: Interpretation | None) -> bool:
    return interp is None or w not in interp.whole or w in interp.typing


def _fts_expr(terms: list[list[str]], interp: Interpretation | None = None) -> str:
    return " AND ".join("(" + " OR ".join(f'"{w}"' + ("*" if _as_prefix(w, interp) else "") for w in alts) + ")"
                        for alts in terms)


def _text_terms(interp: Interpretation) -> list[list[str]]:
    """Words to match, with the phone fragment as a prefix of the indexed "tel…" suffix words."""
    return interp.terms + ([[f"tel{interp.phone}"]] if interp.phone else [])


def _tsquery(terms: list[list[str]], interp: Interpretation | None = None) -> str:
    return " & ".join("(" + " | ".join(w + (":*" if _as_prefix(w, interp) else "") for w in alts) + ")"
                      for alts in terms)


# ---------------------------------------------------------------------------- one SQL statement per tier
# Every tier is one statement that ranks on the bare table (a CTE with LIMIT) and then reads the
# rows shown, with their phones, schedules and first location, in the same round trip.  The SQL is
# built from a few fixed pieces, so each shape's text (and SQLAlchemy's compiled form) is reused.

@lru_cache(maxsize=512)
def _stmt(sql: str, typed: bool = True) -> Any:
    return text(sql).columns(last_verified_at=UTCDateTime()) if typed else text(sql)


_US, _RS = "\x1f", "\x1e"  # unit / record separators inside aggregated columns
_display = lru_cache(maxsize=65536)(display)  # formatting a number costs ~0.2 ms; pages repeat them


def _page_sql(dialect: str, ranked: str, keys: int, count: str = "") -> str:
    pg = dialect == "postgresql"
    agg = "string_agg" if pg else "group_concat"
    ch = "chr" if pg else "char"
    order = ", ".join(f"r.k{i}" for i in range(keys)) + (", " if keys else "") + "r.verified DESC, r.name, r.pk"
    return (
        f"{ranked} "
        "SELECT s.pk, s.id, s.name, s.service_type, s.open_24_7, s.open_on_holidays, s.timezone, s.hours_text, "
        "s.beds_free, s.beds_total, s.accessible, s.languages, s.province_code, s.commune_code, s.verified, "
        "s.last_verified_at, s.lat, s.lon, s.referral_accepts, s.coverage, s.hours_complex, s.hours_note, "
        "o.name AS organization, "
        f"(SELECT {agg}(x, {ch}(30)) FROM (SELECT p.number || {ch}(31) || p.e164 AS x FROM dir_phones p "
        "WHERE p.service_pk = s.pk ORDER BY p.pk) ph) AS phones, "
        f"(SELECT {agg}(sc.byday || sc.opens_at || sc.closes_at, ',') FROM dir_schedules sc "
        "WHERE sc.service_pk = s.pk) AS slots, "
        "l.confidential, l.province_code AS loc_province, l.commune_code AS loc_commune, "
        "(SELECT a.address_1 FROM dir_addresses a WHERE a.location_id = l.id ORDER BY a.pk LIMIT 1) AS address_1, "
        f"(SELECT {agg}(l2.province_code, ',') FROM dir_service_at_location s2 "
        "JOIN dir_locations l2 ON l2.id = s2.location_id WHERE s2.service_pk = s.pk) AS loc_provinces"
        + (f", (SELECT count(*) FROM {count}) AS n_cand " if count else " ") +
        "FROM r JOIN dir_services s ON s.pk = r.pk "
        "JOIN dir_organizations o ON o.id = s.organization_id "
        "LEFT JOIN dir_service_at_location sal ON sal.pk = "
        "(SELECT min(x.pk) FROM dir_service_at_location x WHERE x.service_pk = s.pk) "
        "LEFT JOIN dir_locations l ON l.id = sal.location_id "
        f"ORDER BY {order}")


def _open_sql(t: str) -> str:
    """Open now, for entries read in the centre's timezone (empty ``timezone``); entries with a
    timezone of their own pass here and are checked exactly in Python, and so are entries whose rules
    the stored rows only bound (monthly, fortnightly, dated: ``hours_complex``).  ``t``: the row's alias."""
    overnight = "sc.closes_at <= sc.opens_at"
    return (
        f"({t}.open_24_7 = :true OR {t}.timezone <> '' OR EXISTS (SELECT 1 FROM dir_schedules sc "
        f"WHERE sc.service_pk = {t}.pk AND ("
        f"(sc.byday = :o_today AND ({t}.open_on_holidays = :true OR :o_today_ok = :true) AND sc.opens_at <= :o_hm "
        f"AND (sc.closes_at > :o_hm OR {overnight})) OR "
        f"(sc.byday = :o_yday AND {overnight} AND sc.closes_at > :o_hm "
        f"AND ({t}.open_on_holidays = :true OR :o_yday_ok = :true)))))")


def _open_params(now: datetime, tz: str) -> dict[str, Any]:
    local = now.astimezone(ZoneInfo(tz))
    today = local.date()
    yday = today - timedelta(days=1)
    hol = hours_mod.holidays()
    return {"o_today": hours_mod.DAYS[today.weekday()], "o_yday": hours_mod.DAYS[yday.weekday()],
            "o_hm": f"{local.hour:02d}:{local.minute:02d}", "o_today_ok": today not in hol, "o_yday_ok": yday not in hol}


def _where(dialect: str, query: Query, interp: Interpretation, hard_type: bool, params: dict[str, Any]) -> list[str]:
    conds = ["status = 'active'"]
    if interp.terms or interp.phone:
        if dialect == "sqlite":
            conds.append("pk IN (SELECT rowid FROM dir_service_fts WHERE dir_service_fts MATCH :fts)")
        else:
            conds.append("search_tsv @@ to_tsquery('simple'::regconfig, :tsq)")
    if interp.type_code and hard_type:
        conds.append("service_type = :type")
    if query.commune and interp.commune_code:
        conds.append("commune_code = :commune")
    if query.free_bed:
        conds.append("beds_free > 0")
    if query.accessible:
        conds.append("accessible = :true")
    if query.language:
        conds.append("languages LIKE :lang")
        params["lang"] = f"%,{fold(query.language)},%"
    return conds


def _keys(interp: Interpretation, phrase: bool, hard_type: bool, params: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    if interp.type_code and not hard_type:
        keys.append("CASE WHEN service_type = :type THEN 0 ELSE 1 END")
    if interp.commune_code:
        keys.append("CASE WHEN commune_code = :commune THEN 0 ELSE 1 END")
    if interp.type_phrase and len(interp.type_phrase) >= 4:
        # In the name (the document begins with the folded name, of about the same length).
        keys.append("CASE WHEN substr(search_doc, 1, length(name) + 2) LIKE :tphrase THEN 0 ELSE 1 END")
        params["tphrase"] = f"% {interp.type_phrase}%"
    if phrase and len(interp.phrase) >= 4 and interp.phrase != interp.type_phrase:
        keys.append("CASE WHEN substr(search_doc, 1, 160) LIKE :phrase THEN 0 ELSE 1 END")
        params["phrase"] = f"% {interp.phrase}%"
    if interp.lat is not None and interp.lon is not None:
        keys.append("COALESCE((lat - :lat) * (lat - :lat) + (lon - :lon) * (lon - :lon) * :k2, 1e9)")
        params.update(lat=interp.lat, lon=interp.lon, k2=math.cos(math.radians(interp.lat)) ** 2)
    if interp.terms:
        keys.append("CASE WHEN search_doc LIKE :first THEN 0 ELSE 1 END")
        params["first"] = f" {interp.terms[0][0]}%"
    return keys


# Services with a location in the place asked (a service offered at several places is "there"
# wherever one of its locations is, not only where its main place is).
_AT_PLACE = ("SELECT sal_p.service_pk FROM dir_service_at_location sal_p "
             "JOIN dir_locations l_p ON l_p.id = sal_p.location_id WHERE l_p.province_code = :tier_p")


def _tiers(query: Query, interp: Interpretation) -> list[tuple[str, bool, str]]:
    """Where to look, nearest first: the place's province (small, so quick to rank, and it usually
    fills the page), the entries whose service areas cover it, then everywhere else in one statement ranked by boxes of ±1° and ±3° around the
    place before the other keys.  (condition, rank by phrase, leading rank key)."""
    if not interp.province_code:
        return [("", bool(interp.terms), "")]
    # In the province (its main place or any other location), then the entries serving it from
    # elsewhere (few: a partial index holds them).
    tiers = [(f"(province_code = :tier_p OR pk IN ({_AT_PLACE}))", True, ""),
             ("pk IN (SELECT pk FROM dir_services WHERE coverage <> '' AND coverage LIKE :tier_cov)", True, "")]
    if query.province or query.commune:
        return tiers
    elsewhere = (f"((province_code <> :tier_p OR province_code IS NULL) AND coverage NOT LIKE :tier_cov "
                 f"AND pk NOT IN ({_AT_PLACE}))")
    box = ""
    if interp.lat is not None and interp.lon is not None:
        box = ("CASE " + " ".join(f"WHEN lat BETWEEN :lat - {d} AND :lat + {d} AND lon BETWEEN :lon - {d} AND :lon + {d} "
                                  f"THEN {i}" for i, d in enumerate((1, 3))) + " ELSE 2 END")
    tiers.append((elsewhere, False, box))
    return tiers


def search(session: Session, query: Query, *, now: datetime | None = None, staff: bool = False,
           timezone: str | None = None) -> tuple[Interpretation, list[dict[str, Any]]]:
    """Run a search; results are dicts ready for JSON/HTML (see ``SearchResultOut``).

    Opening hours are read in each entry's own timezone, or ``timezone`` (the centre's; default
    the installation's) for entries without one.  ``query.open_at`` asks "open at that moment"
    instead of now.  ``interp.notices`` says what was not found before any fallback, and each
    result's ``fallback`` tells whether it is one (another type, or outside the place asked)."""
    interp = interpret(session, query)
    if query.open_at is not None:
        now, query = query.open_at, replace(query, open_now=True)
    now = now or utcnow()
    tz = timezone or get_settings().default_timezone
    limit = max(1, min(query.limit, 100))
    words = _text_terms(interp)
    params: dict[str, Any] = {"fts": _fts_expr(words, interp), "tsq": _tsquery(words, interp)} if words else {}
    hard_type = bool(query.service_type) or interp.type_from_text
    rules = _Rules(session)
    rows = _run(session, query, interp, hard_type, limit, params, now, tz, rules)
    if not rows and interp.type_from_text and not query.service_type:
        # Nothing of that type: the type words may have been part of a name; search them as text.
        rows = _run(session, query, interp, False, limit, params, now, tz, rules)
    results = _results(rows, interp, now, staff, tz, rules)
    _explain(interp, results)
    return interp, results


def _label(code: str) -> dict[str, str]:
    """A type's label inside a sentence, in both languages ("trợ giúp pháp lý", "legal aid")."""
    t = service_types()[code]
    return {"vi": t.vi[:1].lower() + t.vi[1:], "en": t.en[:1].lower() + t.en[1:]}


def _explain(interp: Interpretation, results: list[dict[str, Any]]) -> None:
    """Mark fallbacks and say, before them, what was asked for and not found."""
    code = interp.type_code
    place = interp.province_code if interp.place_asked else None

    def here(r: dict[str, Any]) -> bool:
        return (not place or r["province_code"] == place or place in r["coverage_codes"]
                or place in r["location_codes"])

    for r in results:
        r["fallback"] = bool((code and r["service_type"] != code) or not here(r))
    if code and place and not any(not r["fallback"] for r in results):
        interp.notices.append(Text("No %(type)s service in %(place)s.", type=_label(code), place=interp.place_label))
    elif code and not any(r["service_type"] == code for r in results):
        interp.notices.append(Text("No %(type)s service found.", type=_label(code)))
    elif place and results and not any(here(r) for r in results):
        interp.notices.append(Text("Nothing found in %(place)s.", place=interp.place_label))
    if interp.notices and results:
        interp.notices.append(Text("Other suggestions, each with its type and distance:"))


class _Rules:
    """Full HSDS schedules of entries whose hours the quick SQL test cannot decide, loaded once."""

    def __init__(self, session: Session):
        self.session = session
        self.by_pk: dict[int, list[sched_mod.Rule]] = {}

    def load(self, pks: list[int]) -> None:
        want = [pk for pk in pks if pk not in self.by_pk]
        if not want:
            return
        for pk in want:
            self.by_pk[pk] = []
        seen: set[tuple[int, str]] = set()
        for row in self.session.execute(select(Schedule.service_pk, Schedule.schedule_id, Schedule.rule)
                                        .where(Schedule.service_pk.in_(want)).order_by(Schedule.pk)).all():
            pk, sid, rule = int(row[0]), str(row[1]), row[2]
            if (pk, sid) not in seen and rule:
                seen.add((pk, sid))
                self.by_pk[pk].append(sched_mod.Rule.from_dict(rule))

    def open(self, r: Any, now: datetime, tz: str) -> bool:
        if r.open_24_7:
            return True
        if r.hours_complex:
            self.load([int(r.pk)])
            return sched_mod.any_open(self.by_pk[int(r.pk)], now, r.timezone or tz, bool(r.open_on_holidays))
        return _open(r, now, tz)


def _slots(packed: str | None) -> list[hours_mod.Slot]:
    return [hours_mod.Slot(x[:2], x[2:7], x[7:12]) for x in packed.split(",") if len(x) >= 12] if packed else []


def _open(r: Any, now: datetime, tz: str) -> bool:
    return hours_mod.is_open(always=bool(r.open_24_7), slots=_slots(r.slots), now=now,
                             open_on_holidays=bool(r.open_on_holidays), timezone=r.timezone or tz)


def _run(session: Session, query: Query, interp: Interpretation, hard_type: bool, limit: int,
         params: dict[str, Any], now: datetime, tz: str, rules: _Rules) -> list[Any]:
    """Tier by tier until the page is full; open-now is decided in SQL for entries on the centre's
    timezone and re-checked exactly in Python (entries on another timezone)."""
    dialect = session.get_bind().dialect.name
    p = {**params, "true": True, "type": interp.type_code, "province": interp.province_code,
         "commune": interp.commune_code, "tier_p": interp.province_code, "tier_cov": f"%,{interp.province_code},%"}
    base = _where(dialect, query, interp, hard_type, p)
    if query.open_now:
        p.update(_open_params(now, tz))
    out: list[Any] = []
    for extra, phrase, lead in _tiers(query, interp):
        keys = ([lead] if lead else []) + _keys(interp, phrase, hard_type, p)
        conds = [*base, extra] if extra else list(base)
        if out:
            conds.append(f"pk NOT IN ({', '.join(str(int(r.pk)) for r in out)})")
        cols = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys))
        order = ", ".join([*(f"k{i}" for i in range(len(keys))), "verified DESC", "name", "pk"])
        offset = 0
        while True:
            want = limit - len(out)
            if not query.open_now:
                ranked = (f"SELECT pk, verified, name{', ' if cols else ''}{cols} FROM dir_services "
                          f"WHERE {' AND '.join(conds)} ORDER BY {order} LIMIT {want}")
                rows = list(session.execute(_stmt(_page_sql(dialect, f"WITH r AS ({ranked})", len(keys))), p))
                out += rows
                break
            # Open now: rank a few hundred candidates, keep the open ones (a per-row schedule look-up
            # on the candidates only), walk on while the page is not full.  Entries on a timezone of
            # their own pass the SQL test and are decided here; if some were closed, the same chunk is
            # read again with room for that many more.
            chunk, more = max(200, 10 * want), 0
            cand = (f"SELECT pk, verified, name, open_24_7, open_on_holidays, timezone, hours_complex"
                    f"{', ' if cols else ''}{cols} FROM dir_services WHERE {' AND '.join(conds)} "
                    f"ORDER BY {order} LIMIT {chunk} OFFSET {offset}")
            while True:
                ranked = (f"WITH c AS ({cand}), "
                          f"r AS (SELECT * FROM c WHERE {_open_sql('c')} ORDER BY {order} LIMIT {want + more})")
                rows = list(session.execute(_stmt(_page_sql(dialect, ranked, len(keys), count="c")), p))
                rules.load([int(r.pk) for r in rows if r.hours_complex])
                kept = [r for r in rows if rules.open(r, now, tz)]
                if len(rows) < want + more or len(kept) >= want:
                    break
                more += want - len(kept)
            out += kept[:want]
            if rows:
                n_cand = rows[0].n_cand
            else:
                n_cand = session.execute(_stmt(f"SELECT count(*) FROM ({cand}) c", False), p).scalar_one()
            if len(out) >= limit or n_cand < chunk or offset > 20000:
                break
            offset += chunk
        if len(out) >= limit:
            break
    return out[:limit]


def is_open(svc: Service, now: datetime, timezone: str | None = None) -> bool:
    return hours_mod.is_open(always=svc.open_24_7, open_on_holidays=svc.open_on_holidays, now=now,
                             slots=[hours_mod.Slot(s.byday, s.opens_at, s.closes_at) for s in svc.schedules],
                             timezone=svc.timezone or timezone or get_settings().default_timezone)


def _results(rows: list[Any], interp: Interpretation, now: datetime, staff: bool, tz: str,
             rules: _Rules) -> list[dict[str, Any]]:
    pl = places()
    types = service_types()
    out = []
    rules.load([int(r.pk) for r in rows if r.hours_complex])
    for r in rows:
        t = types[r.service_type]
        coverage = [c for c in (r.coverage or "").split(",") if c]
        located = [c for c in dict.fromkeys((r.loc_provinces or "").split(",")) if c]
        ph = [dict(zip(("number", "e164"), x.split(_US), strict=True)) for x in r.phones.split(_RS)] if r.phones else []
        first = ph[0]["e164"] if ph else ""
        dist = None
        if interp.lat is not None and interp.lon is not None and r.lat is not None and r.lon is not None:
            dist = round(distance_km(interp.lat, interp.lon, r.lat, r.lon), 1)
        confidential = bool(r.confidential)
        full = ", ".join(x for x in (r.address_1 or "", pl.commune_name(r.loc_commune), pl.province_name(r.loc_province)) if x)
        if confidential and not staff:
            address = f"Địa chỉ bảo mật / confidential address ({pl.province_name(r.province_code)})"
        else:
            address = full
        out.append({
            "id": r.id, "name": r.name, "organization": r.organization, "service_type": r.service_type,
            "service_type_vi": t.vi, "service_type_en": t.en,
            "call_number": first if first in SHORT_CODES else (_display(first) if first else ""),
            "phones": ph, "open_now": rules.open(r, now, tz), "hours_note": r.hours_note or "",
            "hours_see_text": bool(r.hours_note) and not r.slots and not r.open_24_7,
            "open_24_7": bool(r.open_24_7), "hours": r.hours_text, "beds_free": r.beds_free, "beds_total": r.beds_total,
            "accessible": bool(r.accessible), "languages": [x for x in r.languages.split(",") if x],
            "timezone": r.timezone or tz,
            "province": pl.province_name(r.province_code), "commune": pl.commune_name(r.commune_code),
            "province_code": r.province_code or "", "coverage_codes": coverage, "location_codes": located,
            "other_places": [pl.province_name(c) for c in located if c != r.province_code],
            "coverage": ["*"] if coverage == ["*"] else [pl.province_name(c) for c in coverage],
            "address": address, "confidential_address": confidential, "verified": bool(r.verified),
            "last_verified_at": r.last_verified_at, "distance_km": dist, "accepts_referrals": bool(r.referral_accepts),
        })
    return out


_HM = re.compile(r"^(\d{1,2})(?::|h)(\d{2})?$")


def parse_open_at(value: str, timezone: str, *, now: datetime | None = None) -> datetime:
    """"2026-12-24 22:00", "2026-12-24T22:00+07:00" or "22:00" (today, in ``timezone``) → an aware moment;
    ``SearchError`` with the value and the forms accepted otherwise."""
    text_ = (value or "").strip()
    zone = ZoneInfo(timezone)
    m = _HM.match(text_.lower())
    if m and int(m.group(1)) <= 23 and int(m.group(2) or 0) <= 59:
        today = (now or utcnow()).astimezone(zone).date()
        return datetime(today.year, today.month, today.day, int(m.group(1)), int(m.group(2) or 0), tzinfo=zone)
    try:
        moment = datetime.fromisoformat(text_.replace(" ", "T", 1) if " " in text_ else text_)
    except ValueError:
        raise SearchError(Text("open at %(value)r: write a date and time such as 2026-12-24 22:00, or a time "
                               "such as 22:00 for today", value=value)) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)
