"""Split the full text of an official legal document into its structure.

Input is plain text or HTML saved from an official site.  The layout of Vietnamese legal texts:

    Chương I              (chapter; its title on the same or the next line)
    QUY ĐỊNH CHUNG
    Mục 1. …              (section inside a chapter)
    Điều 3. Hành vi …     (article and its heading)
    1. …                  (clause)
    a) …                  (point; Vietnamese letters a b c d đ e g h i k l m n o p q r s t u v x y)

Nothing is dropped: a line that cannot be placed is kept on the nearest element and reported;
duplicated article numbers are kept as separate articles and reported, never merged.  A text
without any ``Điều N.`` is refused with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from hotline.i18n import N_, Text
from hotline.text import nfc

POINT_LETTERS = "a b c d đ e g h i k l m n o p q r s t u v x y".split()
_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


class ImportRefused(ValueError):
    """The input does not look like a legal text; the message says why and what to do."""


@dataclass
class Point:
    letter: str
    text: str


@dataclass
class Clause:
    number: str
    text: str
    points: list[Point] = field(default_factory=list)


@dataclass
class Article:
    number: str
    heading: str
    line: int
    chapter: str = ""
    chapter_title: str = ""
    section: str = ""
    section_title: str = ""
    body: str = ""
    clauses: list[Clause] = field(default_factory=list)
    duplicate: bool = False

    def clauses_json(self) -> list[dict[str, Any]]:
        return [{"number": c.number, "text": c.text,
                 "points": [{"letter": p.letter, "text": p.text} for p in c.points]} for c in self.clauses]


@dataclass
class ParsedText:
    preamble: str
    articles: list[Article]
    number: str | None  # the document number found in the header ("Luật số: 13/2022/QH15")
    title: str
    unplaced: list[dict[str, Any]]  # {"line": n, "text": …, "reason": …}
    duplicates: list[dict[str, Any]]  # {"number": "5", "lines": [12, 40]}
    warnings: list[dict[str, Any]]
    chapters: int = 0
    sections: int = 0

    def report(self) -> dict[str, Any]:
        return {
            "articles": len(self.articles), "chapters": self.chapters, "sections": self.sections,
            "clauses": sum(len(a.clauses) for a in self.articles),
            "points": sum(len(c.points) for a in self.articles for c in a.clauses),
            "unplaced": self.unplaced, "duplicates": self.duplicates, "warnings": self.warnings,
        }


# ------------------------------------------------------------------ HTML to lines
_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "section", "article"}
_SKIP_TAGS = {"script", "style", "head", "title", "noscript"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data.replace("\n", " "))


def looks_like_html(text: str) -> bool:
    head = text[:2000].lower()
    return "<html" in head or "<body" in head or "<p" in head or "<div" in head or "<!doctype" in head


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else UTF-16 with BOM; anything else is refused."""
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(Text(
            "the file is not UTF-8 text (byte %(byte)d cannot be read); save it as UTF-8 text "
            "or as the HTML page from the official site", byte=exc.start)) from exc


# ------------------------------------------------------------------ line patterns
_SPACE = r"[ \t\u00a0]"
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("chapter", re.compile(rf"^Chương{_SPACE}+([IVXLCDM]+|\d+)\b[.:]?{_SPACE}*(.*)$", re.IGNORECASE)),
    ("section", re.compile(rf"^Mục{_SPACE}+(\d+)\b[.:]?{_SPACE}*(.*)$", re.IGNORECASE)),
    ("article", re.compile(rf"^Điều{_SPACE}+(\d+[a-zđ]?)\s*[.:]{_SPACE}*(.*)$", re.IGNORECASE)),
    ("clause", re.compile(rf"^(\d+)\.{_SPACE}+(\S.*)$")),
    ("point", re.compile(rf"^([abcdđeghiklmnopqrstuvxy])\){_SPACE}+(\S.*)$")),
    ("foreign_point", re.compile(rf"^([fjwz])\){_SPACE}+(\S.*)$")),
)
_NUMBER = re.compile(r"\b(?:số|so|no\.?)\s*[:.]?\s*(\d{1,4}/\d{4}/[A-ZĐ0-9\-]+)", re.IGNORECASE)
_TITLE_START = re.compile(r"^(LUẬT|BỘ LUẬT|NGHỊ ĐỊNH|THÔNG TƯ|NGHỊ QUYẾT|QUYẾT ĐỊNH)\b")
# The end of the body: the signature block.
_END = re.compile(r"^(CHỦ TỊCH QUỐC HỘI|TM\.|KT\.|Nơi nhận\s*:|THỦ TƯỚNG|BỘ TRƯỞNG)", re.IGNORECASE)


def _classify(line: str) -> tuple[str, re.Match[str] | None]:
    for kind, pattern in PATTERNS:
        m = pattern.match(line)
        if m:
            return kind, m
    return "text", None


def roman_to_int(value: str) -> int:
    if value.isdigit():
        return int(value)
    total = 0
    prev = 0
    for ch in reversed(value.upper()):
        n = _ROMAN[ch]
        total = total - n if n < prev else total + n
        prev = max(prev, n)
    return total


def parse(text: str, *, html: bool | None = None) -> ParsedText:
    """Split ``text`` (plain text or HTML) into articles; raises ImportRefused when it is not a legal text."""
    if html is None:
        html = looks_like_html(text)
    if html:
        text = html_to_text(text)
    text = nfc(text)
    lines = [(i + 1, re.sub(r"[ \t\u00a0]+", " ", raw).strip()) for i, raw in enumerate(text.splitlines())]
    lines = [(n, line) for n, line in lines if line]
    if not lines:
        raise ImportRefused(Text("the file is empty"))
    p = _Parser()
    for n, line in lines:
        if p.ended:
            break
        p.feed(n, line)
    if not p.articles:
        raise ImportRefused(Text(
            "this does not look like a legal text: no article heading (“Điều 1. …”) was found; "
            "import the full text as published, with its “Điều N.” lines"))
    seen: dict[str, list[int]] = {}
    for a in p.articles:
        seen.setdefault(a.number, []).append(a.line)
    duplicates = [{"number": num, "lines": where} for num, where in seen.items() if len(where) > 1]
    dup_numbers = {d["number"] for d in duplicates}
    for a in p.articles:
        a.duplicate = a.number in dup_numbers
    return ParsedText(preamble="\n".join(p.preamble), articles=p.articles, number=p.number, title=p.title,
                      unplaced=p.unplaced, duplicates=duplicates, warnings=p.warnings,
                      chapters=p.chapters, sections=p.sections)


class _Parser:
    """One pass over the lines: where we are (chapter, section, article, clause) and what was found."""

    def __init__(self) -> None:
        self.preamble: list[str] = []
        self.articles: list[Article] = []
        self.unplaced: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.chapter = self.chapter_title = self.section = self.section_title = ""
        self.chapters = self.sections = 0
        self.pending_title: str | None = None  # "chapter" | "section" awaiting its title line
        self.article: Article | None = None
        self.clause: Clause | None = None
        self.number: str | None = None
        self.title = ""
        self.ended = False  # the signature block was reached

    def feed(self, n: int, line: str) -> None:
        kind, m = _classify(line)
        if self.pending_title and kind == "text":
            if self.pending_title == "chapter":
                self.chapter_title = line
            else:
                self.section_title = line
            self.pending_title = None
            return
        self.pending_title = None
        if m is not None and kind == "chapter":
            self._chapter(m)
        elif m is not None and kind == "section":
            self._section(n, line, m)
        elif m is not None and kind == "article":
            self._article(n, m)
        elif self.article is None:
            self._outside_articles(n, line, kind)
        elif _END.match(line):
            self.ended = True
        elif m is not None and kind == "clause":
            self._clause(n, line, m, self.article)
        elif m is not None and kind == "point":
            self._point(n, line, m, self.article)
        else:
            if m is not None and kind == "foreign_point":
                self.unplaced.append({"line": n, "text": line,
                                      "reason": N_("“%(letter)s)” is not a Vietnamese point letter; kept as text of Điều %(article)s"),
                                      "values": {"letter": m.group(1), "article": self.article.number}})
            self._continuation(line, self.article)

    def _chapter(self, m: re.Match[str]) -> None:
        self.chapter, self.chapter_title = m.group(1).upper(), m.group(2).strip()
        self.section = self.section_title = ""
        self.chapters += 1
        self.pending_title = None if self.chapter_title else "chapter"
        self.article = self.clause = None

    def _section(self, n: int, line: str, m: re.Match[str]) -> None:
        self.section, self.section_title = m.group(1), m.group(2).strip()
        self.sections += 1
        self.pending_title = None if self.section_title else "section"
        self.article = self.clause = None
        if not self.chapter:
            self.warnings.append({"line": n, "text": line, "reason": N_("section outside any chapter")})

    def _article(self, n: int, m: re.Match[str]) -> None:
        self.article = Article(number=m.group(1).lower(), heading=m.group(2).strip(), line=n,
                               chapter=self.chapter, chapter_title=self.chapter_title,
                               section=self.section, section_title=self.section_title)
        self.articles.append(self.article)
        self.clause = None

    def _outside_articles(self, n: int, line: str, kind: str) -> None:
        """Before the first article: the preamble (number, title); after a chapter: unplaced text."""
        if self.articles and _END.match(line):
            self.ended = True
            return
        if not self.articles and not self.chapters:
            self.preamble.append(line)
            self.number = self.number or _first_number(line)
            if not self.title and _TITLE_START.match(line):
                self.title = line
            elif self.title and _TITLE_START.fullmatch(self.title) and line.isupper():
                self.title = f"{self.title} {line}"  # "LUẬT" on one line, its name on the next
            return
        reason = {
            "clause": N_("clause outside any article"),
            "point": N_("point outside any article"),
        }.get(kind, N_("text outside any article"))
        self.unplaced.append({"line": n, "text": line, "reason": reason})

    def _clause(self, n: int, line: str, m: re.Match[str], article: Article) -> None:
        expected = str(len(article.clauses) + 1)
        if m.group(1) != expected:
            self.warnings.append({"line": n, "text": line,
                                  "reason": N_("clause %(clause)s in Điều %(article)s where %(expected)s was expected"),
                                  "values": {"clause": m.group(1), "article": article.number, "expected": expected}})
        self.clause = Clause(number=m.group(1), text=m.group(2).strip())
        article.clauses.append(self.clause)

    def _point(self, n: int, line: str, m: re.Match[str], article: Article) -> None:
        letter = m.group(1)
        if self.clause is None:
            # Points directly under an article (no clauses): hang them on an unnumbered clause.
            self.clause = Clause(number="", text="")
            article.clauses.append(self.clause)
        clause = self.clause
        expected_letter = POINT_LETTERS[len(clause.points)] if len(clause.points) < len(POINT_LETTERS) else "?"
        if letter != expected_letter:
            self.warnings.append({"line": n, "text": line,
                                  "reason": N_("point %(point)s) in Điều %(article)s where %(expected)s) was expected"),
                                  "values": {"point": letter, "article": article.number, "expected": expected_letter}})
        clause.points.append(Point(letter=letter, text=m.group(2).strip()))

    def _continuation(self, line: str, article: Article) -> None:
        """Continuation text: goes to the last point, clause, or the article body."""
        clause = self.clause
        if clause is not None and clause.points:
            clause.points[-1].text += "\n" + line
        elif clause is not None:
            clause.text += "\n" + line
        elif not article.heading and not article.body:
            article.heading = line
        else:
            article.body = f"{article.body}\n{line}".strip()


def _first_number(line: str) -> str | None:
    m = _NUMBER.search(line)
    return m.group(1) if m else None
