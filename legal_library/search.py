"""Search the library the way counsellors type: numbers, articles, abbreviations, words, issue codes.

``13/2022``, ``nđ 76``, ``76/2023`` find documents by number; ``điều 185``, ``art. 3``,
``185 blhs`` find articles; ``bạo lực`` and ``bao luc`` find the same words (hotline.text.fold);
``dv.physical`` or ``issue:child_abuse`` find the articles tagged for an issue.  Word search uses
the ``legal_terms`` inverted index (exact folded words, the last word as a prefix) so it is fast on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, defer

from hotline.i18n import N_, Text, translator
from hotline.taxonomy import get_taxonomies
from hotline.text import fold, fold_words
from legal_library.models import LegalArticle, LegalDocument, LegalNote, LegalTag, LegalTerm
from legal_library.service import HEADING_MARK, MAX_TERM, article_view, document_summary, supersession_chain

# Common abbreviations counsellors type → the words they stand for (folded).
ABBREVIATIONS: dict[str, str] = {
    "blhs": "bo luat hinh su",
    "blds": "bo luat dan su",
    "bllđ": "bo luat lao dong",
    "blld": "bo luat lao dong",
    "bltths": "bo luat to tung hinh su",
    "pcblgd": "phong chong bao luc gia dinh",
    "blgd": "bao luc gia dinh",
    "hngd": "hon nhan va gia dinh",
    "bdg": "binh dang gioi",
    "tgpl": "tro giup phap ly",
    "pcmbn": "phong chong mua ban nguoi",
    "mbn": "mua ban nguoi",
    "lte": "luat tre em",
    "bvte": "bao ve tre em",
    "bvdlcn": "bao ve du lieu ca nhan",
    "ctxh": "cong tac xa hoi",
    "xlvphc": "xu ly vi pham hanh chinh",
}
# Words that name a document type before a number: "nđ 76", "luật 13", "tt 01".
TYPE_WORDS: dict[str, str] = {
    "nd": "decree", "nghi dinh": "decree", "decree": "decree",
    "luat": "law", "law": "law", "bo luat": "code", "code": "code",
    "tt": "circular", "thong tu": "circular", "circular": "circular",
    "nq": "resolution", "nghi quyet": "resolution", "resolution": "resolution",
    "qd": "decision", "quyet dinh": "decision", "decision": "decision",
}
_TYPE_ALT = "|".join(sorted((re.escape(k) for k in TYPE_WORDS), key=len, reverse=True))
DOC_NUMBER = re.compile(r"(?<![\w/])(\d{1,4})\s*/\s*(\d{4})(?:\s*/\s*([a-z0-9]+(?:\s*-\s*[a-z0-9]+)*))?(?![\w/])")
TYPE_NUMBER = re.compile(rf"(?<!\w)({_TYPE_ALT})\s*\.?\s*(?:so\s+)?(\d{{1,4}})(?![\w/])")
ARTICLE = re.compile(r"(?<!\w)(?:dieu|art(?:icle)?|d)\s*\.?\s*(\d{1,4}[a-z]?)(?!\w)")
ISSUE_PREFIX = re.compile(r"(?<!\w)issue:([a-z0-9_.]+)")
BARE_NUMBER = re.compile(r"(?<![\w/.])(\d{1,4}[a-z]?)(?![\w/])")
LIMIT = 20
DOC_LIMIT = 8  # documents listed for a query made of words


@dataclass
class ParsedQuery:
    text: str
    numbers: list[str] = field(default_factory=list)  # number-key prefixes: "13/2022", "13/2022/qh15"
    typed_numbers: list[tuple[str, str]] = field(default_factory=list)  # ("decree", "76")
    articles: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)  # document references by abbreviation / alias
    issues: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)

    def has_document_ref(self) -> bool:
        return bool(self.numbers or self.typed_numbers or self.phrases)


def parse_query(query: str, issues: Sequence[str] = ()) -> ParsedQuery:
    q = fold(query)
    parsed = ParsedQuery(text=query, issues=list(issues))
    taxonomies = get_taxonomies()

    def take(pattern: re.Pattern[str], handler: Any) -> None:
        nonlocal q
        q = pattern.sub(lambda m: (handler(m), " ")[1], q)

    def on_issue(m: re.Match[str]) -> None:
        parsed.issues.append(m.group(1))
    take(ISSUE_PREFIX, on_issue)
    # A token that is exactly an issue code with a dot or an underscore ("dv.physical", "child_abuse").
    for token in re.findall(r"[a-z0-9_.]+", q):
        if ("." in token or "_" in token) and taxonomies.is_valid("issue", token):
            parsed.issues.append(token)
            q = re.sub(rf"(?<![\w.]){re.escape(token)}(?![\w.])", " ", q)

    def on_number(m: re.Match[str]) -> None:
        key = f"{int(m.group(1))}/{m.group(2)}"
        if m.group(3):
            key += "/" + re.sub(r"\s+", "", m.group(3))
        parsed.numbers.append(key)
    take(DOC_NUMBER, on_number)

    def on_article(m: re.Match[str]) -> None:
        parsed.articles.append(m.group(1))
    take(ARTICLE, on_article)

    def on_typed(m: re.Match[str]) -> None:
        parsed.typed_numbers.append((TYPE_WORDS[re.sub(r"\s+", " ", m.group(1))], m.group(2)))
    take(TYPE_NUMBER, on_typed)

    words = fold_words(q)
    rest: list[str] = []
    for w in words:
        if w in ABBREVIATIONS or fold(w) in ABBREVIATIONS:
            parsed.phrases.append(w)
        else:
            rest.append(w)
    # "185 blhs": a bare number beside a document reference is an article number.
    if parsed.has_document_ref() and not parsed.articles:
        numbers = [w for w in rest if BARE_NUMBER.fullmatch(w)]
        if numbers:
            parsed.articles.extend(numbers)
            rest = [w for w in rest if w not in numbers]
    parsed.words = rest
    return parsed


def _documents_for(session: Session, parsed: ParsedQuery) -> tuple[list[LegalDocument], list[str]]:
    """Documents the query names, and the words that turned out to be part of a document alias."""
    docs: dict[int, LegalDocument] = {}
    alias_words: list[str] = []
    for key in parsed.numbers:
        stmt = select(LegalDocument).where(or_(LegalDocument.number_key == key,
                                               LegalDocument.number_key.startswith(key + "/", autoescape=True)))
        for d in session.scalars(stmt):
            docs[d.id] = d
    for doc_type, num in parsed.typed_numbers:
        types = ("law", "code") if doc_type in {"law", "code"} else (doc_type,)
        stmt = select(LegalDocument).where(LegalDocument.number_key.startswith(f"{int(num)}/", autoescape=True),
                                           LegalDocument.doc_type.in_(types))
        for d in session.scalars(stmt):
            docs[d.id] = d
    for phrase in list(parsed.phrases):
        expansion = ABBREVIATIONS.get(phrase, phrase)
        stmt = select(LegalDocument).where(LegalDocument.title_key.contains(f" {expansion} ", autoescape=True))
        found = list(session.scalars(stmt))
        if not found:
            # The abbreviation names no document we hold: search its words in the text instead.
            parsed.phrases.remove(phrase)
            parsed.words.extend(expansion.split())
        for d in found:
            docs[d.id] = d
    # Aliases held by documents ("penal code", "children law", "nd 76") made of the remaining words.
    if parsed.words and not docs:
        phrase = " ".join(parsed.words)
        for doc_id, alias in _aliases(session):
            if phrase == alias or (len(alias) > 3 and re.search(rf"(?<!\w){re.escape(alias)}(?!\w)", phrase)):
                aliased = session.get(LegalDocument, doc_id)
                if aliased is not None:
                    docs[aliased.id] = aliased
                    alias_words.extend(alias.split())
    return list(docs.values()), alias_words


_ALIAS_CACHE: dict[str, tuple[Any, list[tuple[int, str]]]] = {}


def _aliases(session: Session) -> list[tuple[int, str]]:
    """Every document alias, folded; cached until a document changes."""
    stamp = tuple(session.execute(select(func.count(LegalDocument.id), func.max(LegalDocument.updated_at))).one())
    bind: Any = session.get_bind()  # an Engine (a Connection in some tests): both know their URL
    key = str(bind.url) if hasattr(bind, "url") else str(bind.engine.url)
    cached = _ALIAS_CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    pairs = [(doc_id, " ".join(fold_words(a)))
             for doc_id, aliases in session.execute(select(LegalDocument.id, LegalDocument.aliases))
             for a in aliases or [] if fold_words(a)]
    _ALIAS_CACHE[key] = (stamp, pairs)
    return pairs


def _order_docs(docs: list[LegalDocument], today: date) -> list[LegalDocument]:
    from legal_library.service import effective_status

    return sorted(docs, key=lambda d: (not effective_status(d, today)["current"], d.number))


# Built once: fresh aliases per query would defeat SQLAlchemy's statement cache.
MAX_WORDS = 8  # words after the eighth narrow nothing useful and are ignored
_TERM_ALIASES = [[LegalTerm.__table__.alias(f"t{r}_{i}") for i in range(MAX_WORDS)] for r in range(2)]


def _term_condition(table: Any, word: str, prefix: bool) -> Any:
    word = word[:MAX_TERM]
    if not prefix:
        return table.term == word
    upper = word[:-1] + chr(ord(word[-1]) + 1)
    return and_(table.term >= word, table.term < upper)


def _all_words(words: list[str], *, mark: str, allowed: Any, limit: int, rank: int) -> Any:
    """A statement for the current articles holding every word (the last one as a prefix), in
    article order, with a constant ``rank`` column.

    The longest exact word drives the scan through ``(term, article_id)`` in article order, so
    ``LIMIT`` stops it early; every other word is a probe on ``(article_id, term)``.
    """
    words = words[:MAX_WORDS]
    last = len(words) - 1
    items = [(mark + w[:MAX_TERM - len(mark)], i == last) for i, w in enumerate(words)]
    exact = [i for i, (_, prefix) in enumerate(items) if not prefix]
    lead = max(exact, key=lambda i: len(items[i][0])) if exact else last
    terms = _TERM_ALIASES[rank]
    driver, probes = terms[0], iter(terms[1:])
    stmt = select(driver.c.article_id, literal(rank).label("rank")).where(_term_condition(driver.c, *items[lead]))
    for i, (word, prefix) in enumerate(items):
        if i == lead:
            continue
        probe = next(probes)
        stmt = stmt.where(select(probe.c.id).where(probe.c.article_id == driver.c.article_id,
                                                   _term_condition(probe.c, word, prefix)).exists())
    if allowed is not None:
        stmt = stmt.where(driver.c.article_id.in_(allowed))
    return stmt.order_by(driver.c.article_id).limit(limit)


def _word_hits(session: Session, words: list[str], *, doc_ids: list[int] | None,
               issue_codes: list[str] | None, limit: int) -> list[int]:
    """Articles with every word in the heading first, then those with the words anywhere (one
    round trip: both look-ups in one UNION ALL)."""
    allowed = None
    if doc_ids is not None or issue_codes is not None:
        allowed = select(LegalArticle.id).where(LegalArticle.is_current.is_(True))
        if doc_ids is not None:
            allowed = allowed.where(LegalArticle.document_id.in_(doc_ids))
        if issue_codes is not None:
            allowed = allowed.join(LegalTag, and_(LegalTag.document_id == LegalArticle.document_id,
                                                  LegalTag.article_number == LegalArticle.number)).where(
                LegalTag.scheme == "issue", LegalTag.code.in_(issue_codes))
    heading = _all_words(words, mark=HEADING_MARK, allowed=allowed, limit=limit, rank=0).subquery()
    anywhere = _all_words(words, mark="", allowed=allowed, limit=limit, rank=1).subquery()
    both = union_all(select(heading.c.article_id, heading.c.rank), select(anywhere.c.article_id, anywhere.c.rank))
    rows = sorted(session.execute(both).all(), key=lambda r: (r[1], r[0]))
    return list(dict.fromkeys(r[0] for r in rows))[:limit]


def expand_issues(codes: Sequence[str]) -> list[str]:
    """An issue code with its children ("dv" → dv, dv.physical, …); unknown codes are an error."""
    taxonomies = get_taxonomies()
    out: list[str] = []
    for code in codes:
        if not taxonomies.is_valid("issue", code):
            known = ", ".join(t.code for t in taxonomies.terms("issue") if t.parent is None)
            raise ValueError(Text("unknown issue code %(code)r; use a code of the issue list, e.g. %(known)s",
                                  code=code, known=known))
        out.append(code)
        out.extend(t.code for t in taxonomies.terms("issue") if t.parent == code)
    return list(dict.fromkeys(out))


def _tagged(session: Session, codes: list[str], *, doc_ids: list[int] | None, limit: int,
            exact: Sequence[str] = ()) -> list[int]:
    """Current articles tagged with any of ``codes``: those tagged with an ``exact`` code first,
    then those with our note, then by how many of the codes they carry."""
    # (document, article number, scheme, code) is unique, so count(*) counts distinct codes.
    exact_hits = func.sum(case((LegalTag.code.in_(list(exact) or [""]), 1), else_=0))
    has_note = func.max(case((LegalNote.id.is_not(None), 1), else_=0))
    stmt = (select(LegalArticle.id)
            .select_from(LegalTag)
            .join(LegalArticle, and_(LegalArticle.document_id == LegalTag.document_id,
                                     LegalArticle.number == LegalTag.article_number))
            .outerjoin(LegalNote, and_(LegalNote.document_id == LegalTag.document_id,
                                       LegalNote.article_number == LegalTag.article_number))
            .where(LegalArticle.is_current.is_(True), LegalTag.scheme == "issue", LegalTag.code.in_(codes))
            .group_by(LegalArticle.id, LegalArticle.document_id, LegalArticle.sort))
    if doc_ids is not None:
        stmt = stmt.where(LegalArticle.document_id.in_(doc_ids))
    stmt = stmt.order_by(exact_hits.desc(), has_note.desc(), func.count().desc(),
                         LegalArticle.document_id, LegalArticle.sort).limit(limit)
    return list(session.scalars(stmt))


def search(session: Session, query: str, *, issues: Sequence[str] = (), limit: int = LIMIT,
           today: date | None = None) -> dict[str, Any]:
    """Documents and articles for a query; each article comes with our note and its document's status."""
    today = today or date.today()
    parsed = parse_query(query, issues)
    issue_codes = expand_issues(parsed.issues) if parsed.issues else None
    docs, alias_words = _documents_for(session, parsed)
    doc_ref = parsed.has_document_ref() or bool(alias_words)
    if alias_words:
        parsed.words = [w for w in parsed.words if w not in set(alias_words)]
        if not parsed.articles:
            numbers = [w for w in parsed.words if BARE_NUMBER.fullmatch(w)]
            parsed.articles.extend(numbers)
            parsed.words = [w for w in parsed.words if w not in numbers]
    # A superseded document brings its replacement along, right after the documents asked for.
    docs = _order_docs(docs, today)
    for d in list(docs):
        for nxt in supersession_chain(session, d):
            if nxt.id not in {x.id for x in docs}:
                docs.append(nxt)
    doc_ids = [d.id for d in docs] if doc_ref else None
    if doc_ids is not None and not doc_ids:
        return _answer(session, parsed, [], [], today, message=N_("No document with this number or abbreviation."))

    article_ids: list[int] = []
    if parsed.articles:
        stmt = select(LegalArticle.id).where(LegalArticle.is_current.is_(True),
                                             LegalArticle.number.in_(parsed.articles))
        if doc_ids is not None:
            stmt = stmt.where(LegalArticle.document_id.in_(doc_ids))
        stmt = stmt.order_by(LegalArticle.document_id, LegalArticle.sort).limit(limit)
        article_ids = list(session.scalars(stmt))
    elif parsed.words:
        article_ids = _word_hits(session, parsed.words, doc_ids=doc_ids, issue_codes=issue_codes, limit=limit)
    elif issue_codes:
        article_ids = _tagged(session, issue_codes, doc_ids=doc_ids, limit=limit, exact=parsed.issues)
    elif doc_ids:
        has_note = select(func.count(LegalNote.id)).where(
            LegalNote.document_id == LegalArticle.document_id,
            LegalNote.article_number == LegalArticle.number).scalar_subquery()
        stmt = (select(LegalArticle.id).where(LegalArticle.is_current.is_(True), LegalArticle.document_id.in_(doc_ids))
                .order_by(has_note.desc(), LegalArticle.document_id, LegalArticle.sort).limit(limit))
        article_ids = list(session.scalars(stmt))
    if not doc_ref and parsed.words and not docs:
        # Documents whose title holds every word (diacritics ignored).
        stmt = select(LegalDocument)
        for i, w in enumerate(parsed.words):
            needle = f" {w}" if i == len(parsed.words) - 1 else f" {w} "  # whole words, the last a prefix
            stmt = stmt.where(LegalDocument.title_key.contains(needle, autoescape=True))
        docs = _order_docs(list(session.scalars(stmt.order_by(LegalDocument.id).limit(DOC_LIMIT))), today)
    return _answer(session, parsed, docs, article_ids, today)


def _answer(session: Session, parsed: ParsedQuery, docs: list[LegalDocument], article_ids: list[int],
            today: date, message: str | None = None) -> dict[str, Any]:
    articles = []
    if article_ids:
        rows: dict[int, LegalArticle] = {}
        doc_rows: dict[int, LegalDocument] = {}
        for a, d in session.execute(
                select(LegalArticle, LegalDocument).join(LegalDocument, LegalDocument.id == LegalArticle.document_id)
                .options(defer(LegalArticle.clauses), defer(LegalArticle.body))
                .where(LegalArticle.id.in_(article_ids))):
            rows[a.id] = a
            doc_rows[d.id] = d
        doc_ids = set(doc_rows)
        numbers = {a.number for a in rows.values()}
        # Plain rows (attribute access like the models), not ORM objects: this runs on every keystroke.
        notes = {(n.document_id, n.article_number): n for n in session.execute(
            select(LegalNote.document_id, LegalNote.article_number, LegalNote.meaning_vi, LegalNote.meaning_en,
                   LegalNote.next_step_vi, LegalNote.next_step_en, LegalNote.verified)
            .where(LegalNote.document_id.in_(doc_ids), LegalNote.article_number.in_(numbers)))}
        tags: dict[tuple[int, str], list[Any]] = {}
        for t in session.execute(select(LegalTag.document_id, LegalTag.article_number, LegalTag.scheme, LegalTag.code)
                                 .where(LegalTag.document_id.in_(doc_ids), LegalTag.article_number.in_(numbers))
                                 .order_by(LegalTag.id)):
            tags.setdefault((t.document_id, t.article_number), []).append(t)
        summaries: dict[int, dict[str, Any]] = {}
        for aid in article_ids:
            a = rows[aid]
            key = (a.document_id, a.number)
            if a.document_id not in summaries:
                summaries[a.document_id] = document_summary(session, doc_rows[a.document_id], today)
            articles.append(article_view(session, a, doc_rows[a.document_id], note=notes.get(key),
                                         tags=tags.get(key, []), today=today, summary=summaries[a.document_id]))
    if message is None and not docs and not articles:
        message = N_("Nothing found. Try a number (13/2022), an article (điều 185 blhs) or other words.")
    return {
        "query": parsed.text,
        "understood": {"numbers": parsed.numbers, "typed_numbers": [f"{t} {n}" for t, n in parsed.typed_numbers],
                       "articles": parsed.articles, "abbreviations": parsed.phrases, "issues": parsed.issues,
                       "words": parsed.words},
        "documents": [document_summary(session, d, today) for d in docs],
        "articles": articles,
        # Both languages (the JSON API's readers choose); the wording lives in the catalogue.
        "message": None if message is None else {"vi": translator("vi")(message), "en": message},
    }


def suggest(session: Session, *, issues: Sequence[str], q: str = "", limit: int = 8,
            today: date | None = None) -> dict[str, Any]:
    """Articles tagged for the issue codes the counsellor picked (optionally narrowed by a query)."""
    if q.strip():
        return search(session, q, issues=issues, limit=limit, today=today)
    today = today or date.today()
    # Each picked issue gets its share: the lists per issue are interleaved.
    per_issue = [_tagged(session, expand_issues([code]), doc_ids=None, limit=limit, exact=[code])
                 for code in dict.fromkeys(issues)]
    ids: list[int] = []
    for rank in range(limit):
        for found in per_issue:
            if rank < len(found) and found[rank] not in ids:
                ids.append(found[rank])
    ids = ids[:limit]
    codes = list(issues)
    return _answer(session, ParsedQuery(text="", issues=list(issues)), [], ids, today,
                   message=None if ids or not codes else N_("No article is tagged for these issues yet."))
