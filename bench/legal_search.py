"""Legal search latency over 200 documents and 20,000 articles, on SQLite and PostgreSQL.

    .venv/bin/python bench/legal_search.py [--backend sqlite|postgresql|both] [--runs 200]

Builds a synthetic library (Vietnamese vocabulary, official-style numbers, issue tags) in a fresh
database of each backend, migrated with the real migrations, indexed by the real indexing code,
then times ``legal_library.search.search`` for number, article, abbreviation, word and issue
queries.  Prints p50/p95/max per kind and overall; the target is p95 <= 20 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert, text
from sqlalchemy.orm import Session

from hotline import migrate
from hotline.db import make_engine
from hotline.taxonomy import get_taxonomies
from hotline.text import fold_words
from legal_library.models import (
    LegalArticle,
    LegalDocument,
    LegalNote,
    LegalTag,
    LegalTerm,
    LegalVersion,
)
from legal_library.search import search
from legal_library.service import article_terms, number_key, seed

PG_ADMIN = os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DOCS = 200
ARTICLES_PER_DOC = 100
TARGET_MS = 20.0
VOCAB = ("bạo lực gia đình người bị hại trẻ em phụ nữ bảo vệ hỗ trợ can thiệp tư vấn cơ quan tổ chức "
         "cá nhân quyền nghĩa vụ trách nhiệm xử phạt hành chính hình sự tòa án công an ủy ban nhân dân "
         "cấp xã huyện tỉnh lao động việc làm hôn nhân ly hôn cấp dưỡng nuôi con tài sản thu nhập sức khỏe "
         "y tế cấp cứu tạm lánh nơi ở an toàn bí mật thông tin dữ liệu cá nhân đồng ý chia sẻ chuyển gửi "
         "dịch vụ công tác xã hội mua bán người bóc lột tình dục quấy rối xâm hại dâm ô giao cấu cưỡng ép "
         "kết hôn tảo hôn phân biệt đối xử giới bình đẳng giáo dục đào tạo trợ giúp pháp lý miễn phí "
         "thời hạn ngày tháng năm quy định chi tiết hướng dẫn thi hành hiệu lực sửa đổi bổ sung").split()
TYPES = (("law", "QH15"), ("decree", "NĐ-CP"), ("circular", "TT-BLĐTBXH"), ("resolution", "NQ-HĐND"))


def build(url: str, rng: random.Random) -> tuple[list[str], float]:
    migrate.upgrade(url)
    engine = make_engine(url)
    issues = [t.code for t in get_taxonomies().terms("issue")]
    started = time.perf_counter()
    with Session(engine) as session:
        seed(session)  # the real starter library, so abbreviations resolve
        numbers = []
        for d in range(DOCS):
            doc_type, suffix = TYPES[d % len(TYPES)]
            number = f"{1000 + d}/{2000 + d % 25}/{suffix}"
            numbers.append(number)
            title = " ".join(rng.choices(VOCAB, k=8)).capitalize()
            doc = LegalDocument(doc_type=doc_type, number=number, number_key=number_key(number), title_vi=title,
                                title_en="", title_key=f" {' '.join(fold_words(title))} ", status="in_force",
                                verified={"number": True}, aliases=[], amended_by=[])
            session.add(doc)
            session.flush()
            version = LegalVersion(document_id=doc.id, version_no=1, state="published", source_kind="text",
                                   report={"articles": ARTICLES_PER_DOC})
            session.add(version)
            session.flush()
            articles = []
            for n in range(1, ARTICLES_PER_DOC + 1):
                clauses = [{"number": str(c), "text": " ".join(rng.choices(VOCAB, k=18)),
                            "points": [{"letter": p, "text": " ".join(rng.choices(VOCAB, k=10))} for p in "ab"]}
                           for c in range(1, 3)]
                articles.append(LegalArticle(version_id=version.id, document_id=doc.id, number=str(n), sort=n,
                                             heading=" ".join(rng.choices(VOCAB, k=5)).capitalize(),
                                             chapter="I", body="", clauses=clauses, is_current=True))
            session.add_all(articles)
            session.flush()
            title_words = fold_words(title)
            session.execute(insert(LegalTerm), [
                {"article_id": a.id, "term": t, "weight": w}
                for a in articles for t, w in article_terms(title_words, a).items()])
            tags = [{"document_id": doc.id, "article_number": str(n), "scheme": "issue", "code": rng.choice(issues)}
                    for n in range(1, ARTICLES_PER_DOC + 1, 4)]
            session.execute(insert(LegalTag), tags)
            session.execute(insert(LegalNote), [
                {"document_id": doc.id, "article_number": str(n), "meaning_vi": "Ghi chú", "meaning_en": "Note",
                 "next_step_vi": "", "next_step_en": "", "verified": False}
                for n in range(1, ARTICLES_PER_DOC + 1, 3)])
        session.commit()
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
    engine.dispose()
    return numbers, time.perf_counter() - started


def queries(numbers: list[str], rng: random.Random) -> dict[str, list[str]]:
    words = [w for w in VOCAB if len(w) > 2]
    return {
        "number": [rng.choice(numbers).rsplit("/", 1)[0] for _ in range(20)] + ["13/2022", "nđ 76", "76/2023"],
        "article": [f"điều {rng.randint(1, 100)}" for _ in range(10)] + ["điều 185", "185 blhs", "art. 3"],
        "number+article": [f"điều {rng.randint(1, 100)} {rng.choice(numbers).rsplit('/', 1)[0]}" for _ in range(20)],
        "words": [" ".join(rng.sample(words, k)) for k in (1, 2, 3) for _ in range(8)]
                 + ["bạo lực gia đình", "bao luc gia dinh", "cấm tiếp xúc", "tro giup phap l"],
        "issue": ["dv.physical", "issue:child_abuse", "trafficking.sexual", "issue:gbv"],
    }


def measure(url: str, qs: dict[str, list[str]], runs: int,
            rng: random.Random) -> tuple[dict[str, list[float]], list[float]]:
    """Wall-clock ms per search by kind, and this process's CPU ms per search (SQLite runs in
    process, so there it is the whole cost; under CPU contention wall >> CPU)."""
    engine = make_engine(url)
    timings: dict[str, list[float]] = {k: [] for k in qs}
    cpu: list[float] = []
    with Session(engine) as session:
        for items in qs.values():  # warm up
            for q in items[:3]:
                search(session, q)
        for _ in range(runs):
            kind = rng.choice(list(qs))
            q = rng.choice(qs[kind])
            c0, t0 = time.process_time(), time.perf_counter()
            search(session, q)
            timings[kind].append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            session.rollback()
    engine.dispose()
    return timings, cpu


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(backend: str, build_s: float, measured: tuple[dict[str, list[float]], list[float]]) -> bool:
    timings, cpu = measured
    every = [v for vs in timings.values() for v in vs]
    print(f"\n{backend}: {DOCS} synthetic documents + starter library, {DOCS * ARTICLES_PER_DOC} articles "
          f"(built in {build_s:.1f} s); {len(every)} searches")
    print(f"  {'kind':<16}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for kind, vs in timings.items():
        print(f"  {kind:<16}{len(vs):>5}{statistics.median(vs) if vs else 0:>9.2f}{pct(vs, 95):>9.2f}{max(vs, default=0):>9.2f}")
    p95 = pct(every, 95)
    ok = p95 <= TARGET_MS
    print(f"  {'all':<16}{len(every):>5}{statistics.median(every):>9.2f}{p95:>9.2f}{max(every):>9.2f}"
          f"   target p95 <= {TARGET_MS:.0f} ms: {'OK' if ok else 'MISSED'}")
    print(f"  {'client CPU':<16}{len(cpu):>5}{statistics.median(cpu):>9.2f}{pct(cpu, 95):>9.2f}{max(cpu):>9.2f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  load average {load:.1f} on {os.cpu_count()} CPUs")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    ok = True
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            rng = random.Random(args.seed)
            numbers, build_s = build(url, rng)
            ok &= report("SQLite", build_s, measure(url, queries(numbers, rng), args.runs, rng))
    if args.backend in ("postgresql", "both"):
        name = f"hotline_bench_legal_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        try:
            rng = random.Random(args.seed)
            numbers, build_s = build(url, rng)
            ok &= report("PostgreSQL", build_s, measure(url, queries(numbers, rng), args.runs, rng))
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
