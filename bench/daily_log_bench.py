"""Daily log and periodic report benchmark.

1. A day with 10,000 calls (9,000 records, ~12,000 issue rows, referrals table present) is
   summarised and stored (``daily_log.service.build_day``): target ≤ 2 s, on SQLite and PostgreSQL.
2. A reporting year of 1,000,000 calls (~850,000 records, ~1.1 million issue rows) is reported
   (``daily_log.reports.build_report``, every table, both indicators, the charts' series):
   target ≤ 15 s on PostgreSQL.

Everything runs in scratch databases this script creates and drops (a PostgreSQL database named
``hotline_bench_dl_…`` on ``$HOTLINE_TEST_PG``'s server, a temporary SQLite file).  The year is
generated server-side with ``INSERT … SELECT … FROM generate_series`` (one statement per table).

    .venv/bin/python bench/daily_log_bench.py [--calls-year 1000000] [--calls-day 10000] [--skip-sqlite]

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.orm import Session

import hotline.models  # noqa: F401 - every table
from daily_log import reports, service
from hotline import migrate
from hotline.calls.models import Call, CallRecord, CallRecordIssue
from hotline.centres.models import Centre

PG_ADMIN = os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ISSUES = ["dv.physical", "dv.psychological", "dv.sexual", "dv.economic", "gbv.rape", "gbv.sexual_harassment",
          "child_abuse.physical", "marriage_family.divorce", "mental_health.distress", "legal_info",
          "nc.silent", "nc.prank"]
SECOND = ["dv.neglect", "gbv.online", "srh", "social_assistance", "other"]
SEXES = ["female", "female", "female", "male", "other", "unknown"]
AGES = ["under_16", "16_17", "18_29", "30_59", "60_plus", "unknown"]
ROLES = ["survivor", "survivor", "family_member", "neighbour", "official", "perpetrator", "child_self", "other"]
OUTCOMES = ["resolved", "referred", "follow_up", "emergency_dispatched", "caller_declined", "call_dropped"]
HCM = "Asia/Ho_Chi_Minh"


def _centre(session: Session) -> Centre:
    centre = Centre(code="bench", name="Bench centre", timezone=HCM, created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    session.add(centre)
    session.flush()
    return centre


def _users(session: Session, centre_id: int, n: int = 12) -> list[int]:
    rows = session.execute(text(
        "INSERT INTO users (centre_id, username, display_name, role, active, language, created_at) "
        "VALUES " + ", ".join(f"(:c, 'tvv{i}', 'TVV {i}', 'counsellor', true, 'vi', :t)" for i in range(n))
        + " RETURNING id"), {"c": centre_id, "t": datetime.now(timezone.utc)}).scalars().all()
    return list(rows)


def seed_day(session: Session, centre_id: int, day_start: datetime, users: list[int], n: int) -> None:
    """``n`` calls over one local day, 90 % with a completed record, in multi-row INSERTs."""
    rnd = random.Random(7)
    now = datetime.now(timezone.utc)
    calls = []
    for i in range(n):
        at = day_start + timedelta(seconds=rnd.randrange(0, 86400))
        status = rnd.choices(["completed", "missed", "abandoned", "unknown_outcome"], [85, 8, 5, 2])[0]
        wait = rnd.randrange(0, 180)
        answered = status == "completed"
        talk = rnd.randrange(30, 1800) if answered else None
        calls.append({"provider": "asterisk", "provider_key": f"d{i}", "centre_id": centre_id, "unrouted": False,
                      "caller_id_status": "present", "caller_masked": f"+849****{i % 1000:03d}",
                      "received_at": at, "queued_at": at, "answered_at": at + timedelta(seconds=wait) if answered else None,
                      "ended_at": at + timedelta(seconds=wait + (talk or 0)), "queue_wait_seconds": wait,
                      "talk_seconds": talk, "abandoned": status == "abandoned", "status": status, "source": "bench",
                      "facts": {}, "counsellor_id": rnd.choice(users) if answered else None, "created_at": now,
                      "updated_at": now})
    session.execute(insert(Call), calls)
    ids = session.execute(select(Call.id, Call.counsellor_id, Call.received_at)
                          .where(Call.centre_id == centre_id, Call.status == "completed")).all()
    records = []
    for cid, counsellor, at in ids[: int(n * 0.9)]:
        primary = rnd.choice(ISSUES)
        records.append({"call_id": cid, "centre_id": centre_id, "counsellor_id": counsellor, "channel": "telephony",
                        "state": "completed", "version": 2, "caller_role": rnd.choice(ROLES),
                        "caller_sex": rnd.choice(SEXES), "caller_age_group": rnd.choice(AGES),
                        "province_code": f"{rnd.randrange(1, 64):02d}", "consent_record": True,
                        "consent_statistics": rnd.random() > 0.05, "consent_callback": False,
                        "consent_referral": False, "consent_referral_scope": {}, "primary_issue": primary,
                        "service_level": 0 if primary.startswith("nc") else rnd.randrange(1, 7),
                        "outcome": "non_counselling" if primary.startswith("nc") else rnd.choice(OUTCOMES),
                        "follow_up_needed": False, "notes": "", "references_given": [], "created_at": at,
                        "updated_at": at, "completed_at": at})
    session.execute(insert(CallRecord), records)
    rec = session.execute(text("SELECT id, primary_issue FROM call_records WHERE centre_id = :c"), {"c": centre_id}).all()
    issues = [{"record_id": rid, "code": code, "is_primary": True} for rid, code in rec]
    issues += [{"record_id": rid, "code": rnd.choice(SECOND), "is_primary": False} for rid, _c in rec
               if rnd.random() < 0.3]
    session.execute(insert(CallRecordIssue), issues)
    session.commit()


def seed_year_pg(session: Session, centre_id: int, start: datetime, users: list[int], n: int) -> None:
    """``n`` calls spread over 365 days, generated by the server."""
    arr = lambda xs: "ARRAY[" + ",".join(f"'{x}'" for x in xs) + "]"  # noqa: E731 - a one-line helper
    pick = lambda xs: f"({arr(xs)})[1 + floor(random() * {len(xs)})::int]"  # noqa: E731 - a one-line helper
    session.execute(text("""
        INSERT INTO calls (provider, provider_key, centre_id, unrouted, caller_id_status, caller_masked, received_at,
                           queued_at, answered_at, ended_at, queue_wait_seconds, talk_seconds, abandoned, status, source,
                           facts, counsellor_id, created_at, updated_at)
        SELECT 'asterisk', 'y' || g, :c, false, 'present', '+849****' || lpad((g % 1000)::text, 3, '0'), at, at,
               CASE WHEN st = 'completed' THEN at + make_interval(secs => w) END,
               at + make_interval(secs => w + t), w, CASE WHEN st = 'completed' THEN t END, st = 'abandoned', st,
               'bench', '{}'::jsonb,
               CASE WHEN st = 'completed' THEN (:users)[1 + floor(random() * :nu)::int] END, now(), now()
        FROM (SELECT g, :start + make_interval(secs => g * 31536000.0 / :n) AS at,
                     (random() * 180)::int AS w, 30 + (random() * 1770)::int AS t,
                     CASE WHEN r < 0.85 THEN 'completed' WHEN r < 0.93 THEN 'missed'
                          WHEN r < 0.98 THEN 'abandoned' ELSE 'unknown_outcome' END AS st
              FROM (SELECT g, random() AS r FROM generate_series(1, :n) g) s) x
    """), {"c": centre_id, "start": start, "n": n, "users": users, "nu": len(users)})
    session.execute(text(f"""
        INSERT INTO call_records (call_id, centre_id, counsellor_id, channel, state, version, caller_role, caller_sex,
                                  caller_age_group, province_code, consent_record, consent_statistics, consent_callback,
                                  consent_referral, consent_referral_scope, primary_issue, service_level, outcome,
                                  follow_up_needed, notes, references_given, created_at, updated_at, completed_at)
        SELECT id, centre_id, counsellor_id, 'telephony', 'completed', 2, {pick(ROLES)}, {pick(SEXES)}, {pick(AGES)},
               lpad((1 + floor(random() * 63))::int::text, 2, '0'), true, random() > 0.05, false, false, '{{}}',
               p, CASE WHEN p LIKE 'nc.%' THEN 0 ELSE 1 + floor(random() * 6)::int END,
               CASE WHEN p LIKE 'nc.%' THEN 'non_counselling' ELSE {pick(OUTCOMES)} END,
               false, '', '[]'::jsonb, received_at, received_at, received_at
        FROM (SELECT c.*, {pick(ISSUES)} AS p FROM calls c WHERE centre_id = :c AND status = 'completed') x
    """), {"c": centre_id})
    session.execute(text("""
        INSERT INTO call_record_issues (record_id, code, is_primary)
        SELECT id, primary_issue, true FROM call_records WHERE centre_id = :c
    """), {"c": centre_id})
    session.execute(text(f"""
        INSERT INTO call_record_issues (record_id, code, is_primary)
        SELECT id, {pick(SECOND)}, false FROM call_records WHERE centre_id = :c AND random() < 0.3
    """), {"c": centre_id})
    session.commit()
    session.execute(text("ANALYZE"))  # statistics as autovacuum would have them
    session.commit()


def time_day(url: str, n: int, label: str) -> float:
    engine = create_engine(url)
    with Session(engine) as session:
        centre = _centre(session)
        users = _users(session, centre.id)
        day = date(2026, 3, 10)
        start, _end = service.day_window(centre, day)
        t0 = time.perf_counter()
        seed_day(session, centre.id, start, users, n)
        seeded = time.perf_counter() - t0
        if engine.dialect.name == "postgresql":
            session.execute(text("ANALYZE"))
            session.commit()
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            log = service.build_day(session, centre=centre, day=day, by="bench")
            session.commit()
            runs.append(time.perf_counter() - t0)
        totals = log.summary["totals"]
        print(f"  {label}: seeded {n:,} calls in {seeded:.1f} s; build_day {', '.join(f'{r:.2f}' for r in runs)} s "
              f"(received {totals['received']:,}, records counted {totals['records_counted']:,}, "
              f"{len(log.summary['calls']):,} rows listed)")
    engine.dispose()
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls-day", type=int, default=10_000)
    parser.add_argument("--calls-year", type=int, default=1_000_000)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    ok = True
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"daily_log bench ({datetime.now(timezone.utc):%H:%M:%S} UTC, load {load})")

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            migrate.upgrade(url)
            best = time_day(url, args.calls_day, "SQLite")
            ok &= best <= 2.0
            print(f"  SQLite day of {args.calls_day:,} calls: best {best:.2f} s (target ≤ 2 s) "
                  f"{'OK' if best <= 2.0 else 'MISSED'}")

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"hotline_bench_dl_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate.upgrade(url)
        best = time_day(url, args.calls_day, "PostgreSQL")
        ok &= best <= 2.0
        print(f"  PostgreSQL day of {args.calls_day:,} calls: best {best:.2f} s (target ≤ 2 s) "
              f"{'OK' if best <= 2.0 else 'MISSED'}")
        engine = create_engine(url)
        with Session(engine) as session:
            centre = Centre(code="year", name="Year centre", timezone=HCM,
                            created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
            session.add(centre)
            session.flush()
            users = list(session.execute(text("SELECT id FROM users")).scalars())
            period = reports.annual(2026)
            start, _ = service.day_window(centre, period.start)
            t0 = time.perf_counter()
            seed_year_pg(session, centre.id, start, users, args.calls_year)
            counts = session.execute(text(
                "SELECT (SELECT count(*) FROM calls WHERE centre_id = :c), (SELECT count(*) FROM call_records "
                "WHERE centre_id = :c), (SELECT count(*) FROM call_record_issues i JOIN call_records r ON "
                "r.id = i.record_id WHERE r.centre_id = :c)"), {"c": centre.id}).one()
            print(f"  generated a year: {counts[0]:,} calls, {counts[1]:,} records, {counts[2]:,} issue rows "
                  f"in {time.perf_counter() - t0:.1f} s")
            runs = []
            for _ in range(2):
                t0 = time.perf_counter()
                report = reports.build_report(session, centre=centre, period=period)
                runs.append(time.perf_counter() - t0)
            ind = report.indicators
            print(f"  annual report {period.start:%d/%m/%Y}–{period.end:%d/%m/%Y}: {', '.join(f'{r:.2f}' for r in runs)} s "
                  f"(received {report.totals['received']:,}, records counted {report.totals['records_counted']:,}; "
                  f"GBV victims served {ind['gbv_victims_served']['share']} %, perpetrators counselled "
                  f"{ind['perpetrators_counselled']['share']} %)")
            best = min(runs)
            ok &= best <= 15.0
            print(f"  PostgreSQL yearly report over {counts[0]:,} calls: best {best:.2f} s (target ≤ 15 s) "
                  f"{'OK' if best <= 15.0 else 'MISSED'}")
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
