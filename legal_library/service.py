"""The legal library's operations: plain keyword-only functions over a session.

Other domains use ``reference_for`` (what a call record keeps when a counsellor gives an article
to a caller), ``search`` and ``suggest``.  Nothing here commits; callers own the transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from hotline.db import utcnow
from hotline.i18n import Text
from hotline.taxonomy import get_taxonomies
from hotline.text import fold, fold_words, nfc
from legal_library import importer
from legal_library.models import (
    LegalArticle,
    LegalDocument,
    LegalNote,
    LegalTag,
    LegalTerm,
    LegalVersion,
)
from legal_library.schemas import LIBRARY_FORMAT, ArticleIn, LibraryIn, dump

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "in_force": ("Còn hiệu lực", "In force"),
    "amended": ("Còn hiệu lực (đã được sửa đổi, bổ sung)", "In force, as amended"),
    "superseded": ("Hết hiệu lực, đã được thay thế", "Superseded"),
    "expired": ("Hết hiệu lực", "Expired"),
    "not_yet_in_force": ("Chưa có hiệu lực", "Not yet in force"),
    "to_be_superseded": ("Còn hiệu lực, sắp được thay thế", "In force, to be replaced"),
}
UNVERIFIED = ("chưa kiểm chứng", "unverified")
# Number suffix → document type, for documents first met in an import.
TYPE_BY_SUFFIX: tuple[tuple[str, str], ...] = (
    ("/qh", "law"), ("/nd-cp", "decree"), ("/tt-", "circular"), ("/nq-", "resolution"), ("/qd-", "decision"),
)
DOC_TYPE_LABELS: dict[str, tuple[str, str]] = {
    "law": ("Luật", "Law"), "code": ("Bộ luật", "Code"), "decree": ("Nghị định", "Decree"),
    "circular": ("Thông tư", "Circular"), "resolution": ("Nghị quyết", "Resolution"),
    "decision": ("Quyết định", "Decision"), "official_letter": ("Công văn", "Official letter"),
}
HEADING_WEIGHT = 3
TEXT_WEIGHT = 1
MAX_TERM = 48
HEADING_MARK = "#"  # legal_terms rows "#word": the word is in the article's heading


class LegalError(ValueError):
    """A user-facing error about the library (unknown document, unpublishable draft…), raised with a
    ``Text``: views show ``error_text(exc, lang)``."""


def report_reason(item: dict[str, Any]) -> Text:
    """An import report's reason (an English msgid and its values, kept in the stored report) as a
    ``Text`` to show in the reader's language; reports stored before that keep their own wording."""
    return Text(str(item.get("reason") or ""), **(item.get("values") or {}))


def translated_report(report: dict[str, Any] | None) -> dict[str, Any]:
    """The stored import report with each line's reason as a ``Text``."""
    out = dict(report or {})
    for key in ("unplaced", "warnings"):
        out[key] = [{**item, "reason": report_reason(item)} for item in out.get(key) or []]
    return out


def number_key(number: str) -> str:
    """Folded, without spaces or leading zeros: ``02/2007/QH12`` → ``2/2007/qh12``."""
    key = fold(number).replace(" ", "")
    head, sep, tail = key.partition("/")
    return (head.lstrip("0") or "0") + sep + tail if head.isdigit() else key


def vn_date(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


# ------------------------------------------------------------------ status
def effective_status(doc: LegalDocument, today: date | None = None) -> dict[str, Any]:
    """The status on ``today``: a supersession dated in the future means "still in force"."""
    today = today or date.today()
    code = doc.status
    if doc.in_force_on and doc.in_force_on > today and code in {"in_force", "amended"}:
        code = "not_yet_in_force"
    elif code == "superseded" and doc.superseded_from and doc.superseded_from > today:
        code = "to_be_superseded"
    elif code == "expired" and doc.expired_on and doc.expired_on > today:
        code = "in_force"
    vi, en = STATUS_LABELS[code]
    if doc.superseded_by and code in {"superseded", "to_be_superseded"}:
        when = vn_date(doc.superseded_from)
        vi += f": thay bằng {doc.superseded_by}" + (f" từ {when}" if when else "")
        en += f": replaced by {doc.superseded_by}" + (f" from {doc.superseded_from:%d %b %Y}" if doc.superseded_from else "")
    if code == "amended" and doc.amended_by:
        vi += f" bởi {', '.join(doc.amended_by)}"
        en += f" by {', '.join(doc.amended_by)}"
    return {"code": code, "label_vi": vi, "label_en": en, "current": code in {"in_force", "amended", "to_be_superseded"},
            "verified": bool(doc.verified.get("status", False))}


def supersession_chain(session: Session, doc: LegalDocument) -> list[LegalDocument]:
    """The replacements of ``doc`` in order (02/2007 → [13/2022]); stops on a loop or a gap."""
    chain: list[LegalDocument] = []
    seen = {doc.id}
    current = doc
    while current.superseded_by:
        nxt = session.scalar(select(LegalDocument).where(LegalDocument.number_key == number_key(current.superseded_by)))
        if nxt is None or nxt.id in seen:
            break
        chain.append(nxt)
        seen.add(nxt.id)
        current = nxt
    return chain


def document_summary(session: Session, doc: LegalDocument, today: date | None = None) -> dict[str, Any]:
    status = effective_status(doc, today)
    replacement = None
    if doc.superseded_by:
        chain = supersession_chain(session, doc)
        replacement = {"number": doc.superseded_by, "from": dump(doc.superseded_from),
                       "id": chain[0].id if chain else None,
                       "final": ({"id": chain[-1].id, "number": chain[-1].number} if chain else None)}
    facts = {
        "number": doc.number, "title_vi": doc.title_vi, "issuer": doc.issuer, "issued_on": dump(doc.issued_on),
        "in_force_on": dump(doc.in_force_on), "status": doc.status, "superseded_from": dump(doc.superseded_from),
        "source_url": doc.source_url,
    }
    return {
        "id": doc.id, "number": doc.number, "doc_type": doc.doc_type,
        "type_vi": DOC_TYPE_LABELS.get(doc.doc_type, (doc.doc_type, doc.doc_type))[0],
        "type_en": DOC_TYPE_LABELS.get(doc.doc_type, (doc.doc_type, doc.doc_type))[1],
        "title_vi": doc.title_vi, "title_en": doc.title_en, "issuer": doc.issuer,
        "issued_on": dump(doc.issued_on), "in_force_on": dump(doc.in_force_on),
        "status": status, "replacement": replacement, "amended_by": list(doc.amended_by or []),
        "source_url": doc.source_url, "last_checked_on": dump(doc.last_checked_on),
        "summary_vi": doc.summary_vi, "summary_en": doc.summary_en,
        "verified": {k: bool(doc.verified.get(k, False)) for k in facts if facts[k]},
        "label": f"{DOC_TYPE_LABELS.get(doc.doc_type, ('', ''))[0]} {doc.number}".strip(),
    }


# ------------------------------------------------------------------ articles
def article_label(doc: LegalDocument, article: LegalArticle) -> str:
    name = doc.title_vi if doc.doc_type == "code" else DOC_TYPE_LABELS.get(doc.doc_type, ("", ""))[0]
    return f"Điều {article.number} {name} {doc.number}".replace("  ", " ")


_LOOKUP: Any = object()  # "not given: look it up"


def article_view(session: Session, article: LegalArticle, doc: LegalDocument, *,
                 note: Any = _LOOKUP, tags: Sequence[Any] | None = None,
                 today: date | None = None, full: bool = False,
                 summary: dict[str, Any] | None = None) -> dict[str, Any]:
    if note is _LOOKUP:
        note = session.scalar(select(LegalNote).where(LegalNote.document_id == doc.id,
                                                      LegalNote.article_number == article.number))
    if tags is None:
        tags = session.scalars(select(LegalTag).where(LegalTag.document_id == doc.id,
                                                      LegalTag.article_number == article.number)).all()
    taxonomies = get_taxonomies()
    view: dict[str, Any] = {
        "id": article.id, "number": article.number, "heading": article.heading,
        "heading_verified": article.heading_verified, "text_verified": article.text_verified,
        "chapter": article.chapter, "chapter_title": article.chapter_title,
        "section": article.section, "section_title": article.section_title,
        "label": article_label(doc, article), "is_current": article.is_current,
        "note": None if note is None else {
            "meaning_vi": note.meaning_vi, "meaning_en": note.meaning_en,
            "next_step_vi": note.next_step_vi, "next_step_en": note.next_step_en, "verified": note.verified},
        "issues": [{"code": t.code, "vi": taxonomies.label("issue", t.code, "vi"), "en": taxonomies.label("issue", t.code, "en")}
                   for t in tags if t.scheme == "issue"],
        "services": [t.code for t in tags if t.scheme == "service"],
        "document": summary if summary is not None else document_summary(session, doc, today),
    }
    if full:
        view["body"] = article.body
        view["clauses"] = article.clauses
    return view


def get_article(session: Session, article_id: int) -> tuple[LegalArticle, LegalDocument]:
    article = session.get(LegalArticle, article_id)
    if article is None:
        raise LegalError(Text("no article with id %(id)s", id=article_id))
    doc = session.get(LegalDocument, article.document_id)
    assert doc is not None
    return article, doc


def article_detail(session: Session, *, article_id: int, today: date | None = None) -> dict[str, Any]:
    article, doc = get_article(session, article_id)
    return article_view(session, article, doc, today=today, full=True)


def reference_for(session: Session, article_id: int) -> dict[str, Any]:
    """What a call record keeps when the counsellor gives this article to the caller."""
    article, doc = get_article(session, article_id)
    status = effective_status(doc)
    label = f"{article_label(doc, article)}: {article.heading}".strip(": ")
    return {"kind": "legal", "ref_id": str(article.id), "label": label,
            "document_number": doc.number, "article_number": article.number,
            "status": status["code"], "url": f"/legal/articles/{article.id}/read"}


def document_detail(session: Session, *, document_id: int, today: date | None = None) -> dict[str, Any]:
    doc = session.get(LegalDocument, document_id)
    if doc is None:
        raise LegalError(Text("no document with id %(id)s", id=document_id))
    summary = document_summary(session, doc, today)
    articles = session.scalars(select(LegalArticle).where(LegalArticle.document_id == doc.id,
                                                          LegalArticle.is_current.is_(True))
                               .order_by(LegalArticle.sort)).all()
    notes = {n.article_number: n for n in session.scalars(select(LegalNote).where(LegalNote.document_id == doc.id))}
    tags: dict[str, list[LegalTag]] = {}
    for t in session.scalars(select(LegalTag).where(LegalTag.document_id == doc.id)):
        tags.setdefault(t.article_number, []).append(t)
    summary["articles"] = [article_view(session, a, doc, note=notes.get(a.number), tags=tags.get(a.number, []),
                                        today=today) for a in articles]
    summary["versions"] = [{"id": v.id, "version_no": v.version_no, "state": v.state, "source_kind": v.source_kind,
                            "created_at": v.created_at.isoformat(), "published_at": v.published_at.isoformat() if v.published_at else None}
                           for v in doc.versions]
    summary["chain"] = [{"id": d.id, "number": d.number} for d in supersession_chain(session, doc)]
    return summary


def list_documents(session: Session, *, today: date | None = None) -> list[dict[str, Any]]:
    docs = session.scalars(select(LegalDocument).order_by(LegalDocument.doc_type, LegalDocument.number)).all()
    return [document_summary(session, d, today) for d in docs]


# ------------------------------------------------------------------ indexing
def article_terms(doc_title_words: Iterable[str], article: LegalArticle, note_text: str = "") -> dict[str, int]:
    terms: dict[str, int] = {}

    def add(words: Iterable[str], weight: int) -> None:
        for w in words:
            w = w[:MAX_TERM]
            if terms.get(w, 0) < weight:
                terms[w] = weight

    texts = [article.body, note_text]
    for c in article.clauses or []:
        texts.append(c.get("text", ""))
        texts.extend(p.get("text", "") for p in c.get("points", []))
    heading = fold_words(article.heading)
    add(fold_words(" ".join(texts)), TEXT_WEIGHT)
    add(doc_title_words, TEXT_WEIGHT)
    add(heading, HEADING_WEIGHT)
    add((HEADING_MARK + w[:MAX_TERM - 1] for w in heading), HEADING_WEIGHT)
    return terms


def _index_articles(session: Session, doc: LegalDocument, articles: Sequence[LegalArticle]) -> None:
    """Index the articles' text, their document's titles and our notes (so a counsellor finds an
    article by the words of our note too)."""
    title_words = fold_words(f"{doc.title_vi} {doc.title_en}")
    notes = {n.article_number: f"{n.meaning_vi} {n.next_step_vi}" for n in session.execute(
        select(LegalNote.article_number, LegalNote.meaning_vi, LegalNote.next_step_vi)
        .where(LegalNote.document_id == doc.id))}
    rows = [{"article_id": a.id, "term": term, "weight": weight}
            for a in articles for term, weight in article_terms(title_words, a, notes.get(a.number, "")).items()]
    if rows:
        session.execute(insert(LegalTerm), rows)


def reindex_document(session: Session, doc: LegalDocument) -> None:
    """Rebuild the search rows of a document's current articles (after its notes or titles change)."""
    current = select(LegalArticle.id).where(LegalArticle.document_id == doc.id, LegalArticle.is_current.is_(True))
    session.execute(delete(LegalTerm).where(LegalTerm.article_id.in_(current)))
    articles = session.scalars(select(LegalArticle).where(LegalArticle.document_id == doc.id,
                                                          LegalArticle.is_current.is_(True))).all()
    _index_articles(session, doc, articles)


def _title_key(doc: LegalDocument) -> str:
    """Folded words of the titles and aliases, space-delimited at both ends for whole-word matches."""
    words = fold_words(f"{doc.title_vi} {doc.title_en}") + [w for a in doc.aliases or [] for w in fold_words(a)]
    return f" {' '.join(words)} "


# ------------------------------------------------------------------ versions
def _next_version_no(session: Session, doc: LegalDocument) -> int:
    return max((v.version_no for v in doc.versions), default=0) + 1


def _add_articles(session: Session, doc: LegalDocument, version: LegalVersion,
                  articles: Iterable[dict[str, Any]]) -> list[LegalArticle]:
    rows = []
    for sort, a in enumerate(articles):
        row = LegalArticle(version_id=version.id, document_id=doc.id, sort=sort, is_current=False, **a)
        rows.append(row)
    session.add_all(rows)
    session.flush()
    return rows


def publish(session: Session, *, version_id: int, actor: str = "") -> LegalVersion:
    """Make a draft the published text; the previous published version is archived, not deleted."""
    version = session.get(LegalVersion, version_id)
    if version is None:
        raise LegalError(Text("no version with id %(id)s", id=version_id))
    if version.state != "draft":
        raise LegalError(Text("version %(version)s is %(state)s, only a draft can be published",
                              version=version.version_no, state=version.state))
    duplicates = (version.report or {}).get("duplicates") or []
    if duplicates:
        numbers = ", ".join(d["number"] for d in duplicates)
        raise LegalError(Text("the draft has duplicated article numbers (%(numbers)s); correct the source text and "
                              "import it again", numbers=numbers))
    doc = session.get(LegalDocument, version.document_id)
    assert doc is not None
    old_ids = select(LegalArticle.id).where(LegalArticle.document_id == doc.id, LegalArticle.is_current.is_(True))
    session.execute(delete(LegalTerm).where(LegalTerm.article_id.in_(old_ids)))
    session.execute(update(LegalArticle).where(LegalArticle.document_id == doc.id, LegalArticle.is_current.is_(True))
                    .values(is_current=False))
    session.execute(update(LegalVersion).where(LegalVersion.document_id == doc.id, LegalVersion.state == "published")
                    .values(state="archived"))
    version.state = "published"
    version.published_at = utcnow()
    session.execute(update(LegalArticle).where(LegalArticle.version_id == version.id).values(is_current=True))
    session.flush()
    articles = session.scalars(select(LegalArticle).where(LegalArticle.version_id == version.id)).all()
    _index_articles(session, doc, articles)
    session.flush()
    return version


@dataclass
class ImportResult:
    version: LegalVersion
    document: LegalDocument
    created_document: bool
    report: dict[str, Any]


def _guess_type(number: str) -> str:
    key = number_key(number)
    for suffix, doc_type in TYPE_BY_SUFFIX:
        if suffix in key:
            return doc_type
    return "law"


def import_text(session: Session, *, data: bytes | str, filename: str = "", document_number: str | None = None,
                created_by: str = "", publish_now: bool = False) -> ImportResult:
    """Parse an official text into a new draft version of its document (published if asked)."""
    text = importer.decode(data) if isinstance(data, bytes) else data
    is_html = filename.lower().endswith((".html", ".htm")) or importer.looks_like_html(text)
    parsed = importer.parse(text, html=is_html)
    number = nfc(document_number or parsed.number or "").strip()
    if not number:
        raise importer.ImportRefused(Text(
            "the document number was not found in the text (a line like “Luật số: 13/2022/QH15”); "
            "give it with --document NUMBER or the Number field of the import page"))
    doc = session.scalar(select(LegalDocument).where(LegalDocument.number_key == number_key(number)))
    created = doc is None
    if doc is None:
        title = parsed.title or number
        doc = LegalDocument(number=number, number_key=number_key(number), doc_type=_guess_type(number),
                            title_vi=title.capitalize() if title.isupper() else title, title_en="",
                            status="in_force", verified={}, aliases=[], amended_by=[])
        doc.title_key = _title_key(doc)
        session.add(doc)
        session.flush()
    report = parsed.report()
    version = LegalVersion(document_id=doc.id, version_no=_next_version_no(session, doc), state="draft",
                           source_kind="html" if is_html else "text", source_name=filename[:255],
                           preamble=parsed.preamble, report=report, created_by=created_by)
    session.add(version)
    session.flush()
    _add_articles(session, doc, version, (
        {"number": a.number, "heading": a.heading, "chapter": a.chapter, "chapter_title": a.chapter_title,
         "section": a.section, "section_title": a.section_title, "body": a.body, "clauses": a.clauses_json(),
         "duplicate": a.duplicate} for a in parsed.articles))
    session.refresh(doc)
    if publish_now:
        publish(session, version_id=version.id, actor=created_by)
    return ImportResult(version=version, document=doc, created_document=created, report=report)


def version_review(session: Session, *, version_id: int) -> dict[str, Any]:
    version = session.get(LegalVersion, version_id)
    if version is None:
        raise LegalError(Text("no version with id %(id)s", id=version_id))
    doc = session.get(LegalDocument, version.document_id)
    assert doc is not None
    articles = session.scalars(select(LegalArticle).where(LegalArticle.version_id == version.id)
                               .order_by(LegalArticle.sort)).all()
    return {"id": version.id, "version_no": version.version_no, "state": version.state,
            "source_kind": version.source_kind, "source_name": version.source_name,
            "created_by": version.created_by, "created_at": version.created_at.isoformat(),
            "document": {"id": doc.id, "number": doc.number, "title_vi": doc.title_vi},
            "report": translated_report(version.report), "preamble": version.preamble,
            "articles": [{"id": a.id, "number": a.number, "heading": a.heading, "chapter": a.chapter,
                          "chapter_title": a.chapter_title, "section": a.section, "section_title": a.section_title,
                          "body": a.body, "clauses": a.clauses, "duplicate": a.duplicate} for a in articles]}


def list_versions(session: Session, *, state: str | None = None) -> list[dict[str, Any]]:
    stmt = select(LegalVersion, LegalDocument).join(LegalDocument, LegalDocument.id == LegalVersion.document_id)
    if state:
        stmt = stmt.where(LegalVersion.state == state)
    rows = session.execute(stmt.order_by(LegalVersion.created_at.desc(), LegalVersion.id.desc())).all()
    return [{"id": v.id, "version_no": v.version_no, "state": v.state, "document_number": d.number,
             "document_id": d.id, "articles": (v.report or {}).get("articles"),
             "unplaced": len((v.report or {}).get("unplaced") or []),
             "duplicates": len((v.report or {}).get("duplicates") or []),
             "created_at": v.created_at.isoformat()} for v, d in rows]


# ------------------------------------------------------------------ library file (seed, export)
def _articles_hash(articles: list[ArticleIn]) -> str:
    body = [a.model_dump(exclude={"note", "issues", "services"}) for a in articles]
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def load_library(session: Session, *, data: dict[str, Any]) -> dict[str, int]:
    """Create or update documents, their structure, notes and tags from a library file.

    Idempotent: loading the same file twice changes nothing; a changed structure becomes a new
    published version (the earlier one is archived).
    """
    library = LibraryIn.model_validate(data)
    counts = {"documents": 0, "created": 0, "versions": 0, "articles": 0, "notes": 0, "tags": 0}
    for d in library.documents:
        doc = _library_document(session, d, counts)
        counts["documents"] += 1
        if d.articles:
            _library_version(session, doc, d, counts)
        _library_notes(session, doc, d, counts)
        for a in d.articles:
            counts["tags"] += set_tags(session, document_id=doc.id, article_number=a.number,
                                       issues=a.issues, services=a.services)
        session.flush()
        reindex_document(session, doc)
    session.flush()
    return counts


def _library_document(session: Session, d: Any, counts: dict[str, int]) -> LegalDocument:
    """The document of a library entry, created or updated from it."""
    doc = session.scalar(select(LegalDocument).where(LegalDocument.number_key == number_key(d.number)))
    if doc is None:
        doc = LegalDocument(number=nfc(d.number), number_key=number_key(d.number))
        session.add(doc)
        counts["created"] += 1
    for name in ("doc_type", "title_vi", "title_en", "issuer", "issued_on", "in_force_on", "status",
                 "superseded_by", "superseded_from", "expired_on", "source_url", "last_checked_on",
                 "summary_vi", "summary_en"):
        value = getattr(d, name)
        setattr(doc, name, nfc(value) if isinstance(value, str) else value)
    doc.amended_by = list(d.amended_by)
    doc.aliases = list(d.aliases)
    doc.verified = dict(d.verified)
    doc.title_key = _title_key(doc)
    session.flush()
    return doc


def _library_version(session: Session, doc: LegalDocument, d: Any, counts: dict[str, int]) -> None:
    """A new published version when the entry's articles differ from the published ones."""
    digest = _articles_hash(d.articles)
    current = session.scalar(select(LegalVersion).where(LegalVersion.document_id == doc.id,
                                                        LegalVersion.state == "published"))
    if current is not None and (current.report or {}).get("library_hash") == digest:
        return
    session.refresh(doc)
    version = LegalVersion(document_id=doc.id, version_no=_next_version_no(session, doc), state="draft",
                           source_kind="library", source_name="library",
                           report={"library_hash": digest, "articles": len(d.articles),
                                   "unplaced": [], "duplicates": [], "warnings": []})
    session.add(version)
    session.flush()
    _add_articles(session, doc, version, (
        a.model_dump(exclude={"note", "issues", "services"}) for a in d.articles))
    publish(session, version_id=version.id)
    counts["versions"] += 1
    counts["articles"] += len(d.articles)


def _library_notes(session: Session, doc: LegalDocument, d: Any, counts: dict[str, int]) -> None:
    """Our plain-language notes on the document and its articles."""
    notes = [("", d.note)] + [(a.number, a.note) for a in d.articles]
    for article_number, note in notes:
        if note is None:
            continue
        row = session.scalar(select(LegalNote).where(LegalNote.document_id == doc.id,
                                                     LegalNote.article_number == article_number))
        if row is None:
            row = LegalNote(document_id=doc.id, article_number=article_number)
            session.add(row)
        for name, value in note.model_dump().items():
            setattr(row, name, nfc(value) if isinstance(value, str) else value)
        counts["notes"] += 1


def set_tags(session: Session, *, document_id: int, article_number: str, issues: Sequence[str],
             services: Sequence[str]) -> int:
    taxonomies = get_taxonomies()
    for code in issues:
        taxonomies.require("issue", code)
    session.execute(delete(LegalTag).where(LegalTag.document_id == document_id,
                                           LegalTag.article_number == article_number))
    rows = [{"document_id": document_id, "article_number": article_number, "scheme": scheme, "code": code}
            for scheme, codes in (("issue", issues), ("service", services)) for code in dict.fromkeys(codes)]
    if rows:
        session.execute(insert(LegalTag), rows)
    return len(rows)


def seed(session: Session) -> dict[str, int]:
    """Load the starter library shipped in ``legal_library/data/library.json``."""
    raw = resources.files("legal_library.data").joinpath("library.json").read_text("utf-8")
    return load_library(session, data=json.loads(raw))


def export_library(session: Session) -> dict[str, Any]:
    """Every document with its published structure, notes and tags, in the library-file format."""
    documents = []
    for doc in session.scalars(select(LegalDocument).order_by(LegalDocument.id)):
        notes = {n.article_number: n for n in session.scalars(select(LegalNote).where(LegalNote.document_id == doc.id))}
        tags: dict[str, dict[str, list[str]]] = {}
        for t in session.scalars(select(LegalTag).where(LegalTag.document_id == doc.id).order_by(LegalTag.id)):
            tags.setdefault(t.article_number, {"issue": [], "service": []})[t.scheme].append(t.code)

        def note_out(n: LegalNote | None) -> dict[str, Any] | None:
            if n is None:
                return None
            return {"meaning_vi": n.meaning_vi, "meaning_en": n.meaning_en, "next_step_vi": n.next_step_vi,
                    "next_step_en": n.next_step_en, "verified": n.verified}

        articles = []
        for a in session.scalars(select(LegalArticle).where(LegalArticle.document_id == doc.id,
                                                            LegalArticle.is_current.is_(True)).order_by(LegalArticle.sort)):
            entry: dict[str, Any] = {
                "number": a.number, "heading": a.heading, "heading_verified": a.heading_verified,
                "chapter": a.chapter, "chapter_title": a.chapter_title, "section": a.section,
                "section_title": a.section_title, "body": a.body, "clauses": a.clauses, "text_verified": a.text_verified,
                "issues": tags.get(a.number, {}).get("issue", []), "services": tags.get(a.number, {}).get("service", []),
            }
            if a.number in notes:
                entry["note"] = note_out(notes[a.number])
            articles.append(entry)
        documents.append({
            "number": doc.number, "doc_type": doc.doc_type, "title_vi": doc.title_vi, "title_en": doc.title_en,
            "issuer": doc.issuer, "issued_on": dump(doc.issued_on), "in_force_on": dump(doc.in_force_on),
            "status": doc.status, "amended_by": list(doc.amended_by or []), "superseded_by": doc.superseded_by,
            "superseded_from": dump(doc.superseded_from), "expired_on": dump(doc.expired_on),
            "aliases": list(doc.aliases or []), "source_url": doc.source_url,
            "last_checked_on": dump(doc.last_checked_on), "summary_vi": doc.summary_vi, "summary_en": doc.summary_en,
            "verified": dict(doc.verified or {}), "note": note_out(notes.get("")), "articles": articles,
        })
    return {"format": LIBRARY_FORMAT, "format_version": 1, "documents": documents}


