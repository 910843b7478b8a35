"""Callback worklist benchmark: building the worklists over a day of 10,000 missed calls.

A centre's local day holds 10,000 missed or abandoned calls from about 7,000 numbers (a third of the
callers rang more than once; 2 % asked for a callback out of hours), 3,000 answered calls (some from
callers who had missed before: their items close), 200 blocked numbers and 100 numbers flagged "do not
call back" in an earlier record.  ``callbacks.service.build`` runs over it at the end of the day:

1. the first build (every item made, merged or closed at once): target ≤ 1 s;
2. a second build (nothing new: it changes nothing) and the page's reads (the list of 200, the sizes).

Everything runs in scratch databases this script creates and drops (a ``hotline_bench_cb_…`` PostgreSQL
database on ``$HOTLINE_TEST_PG``'s server, and a temporary SQLite file unless ``--skip-sqlite``).

    .venv/bin/python bench/callbacks_bench.py [--missed 10000] [--skip-sqlite]

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
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.orm import Session

import hotline.models  # noqa: F401 - every table
from blocking.models import NumberBlock
from callbacks import service
from callbacks.models import CallbackItem
from hotline import migrate
from hotline.calls.models import Call, CallRecord
from hotline.centres.models import Centre

PG_ADMIN = os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
HCM = "Asia/Ho_Chi_Minh"
TARGET = 1.0


@dataclass(frozen=True)
class Admin:
    id: int = 0
    username: str = "bench"
    role: str = "administrator"
    centre_id: int | None = None


def _hash(n: int) -> str:
    return f"benchkey:{n:064x}"


def seed(session: Session, centre_id: int, day_start: datetime, missed: int) -> None:
    rnd = random.Random(17)
    now = day_start + timedelta(days=1)
    numbers = int(missed * 0.7)
    rows = []
    for i in range(missed):
        n = i if i < numbers else rnd.randrange(numbers)  # the rest are repeat callers
        at = day_start + timedelta(seconds=rnd.randrange(0, 86000))
        status = rnd.choice(["missed", "abandoned", "abandoned"])
        facts = {"callback_requested": "out_of_hours"} if rnd.random() < 0.02 else {}
        rows.append({"provider": "asterisk", "provider_key": f"m{i}", "centre_id": centre_id, "unrouted": False,
                     "caller_id_status": "present", "caller_masked": f"09{n % 100:02d} *** {n % 1000:03d}",
                     "number_hash": _hash(n), "received_at": at, "queued_at": at, "ended_at": at + timedelta(seconds=40),
                     "queue_wait_seconds": 40, "abandoned": status == "abandoned", "status": status, "source": "bench",
                     "facts": facts, "created_at": at, "updated_at": at})
    for i in range(3000):  # answered calls: 500 from earlier missed callers, later in the day
        n = rnd.randrange(numbers) if i < 500 else numbers + i
        at = day_start + timedelta(seconds=rnd.randrange(43200, 86000))
        rows.append({"provider": "asterisk", "provider_key": f"a{i}", "centre_id": centre_id, "unrouted": False,
                     "caller_id_status": "present", "caller_masked": "0900 *** 000", "number_hash": _hash(n),
                     "received_at": at, "queued_at": at, "answered_at": at + timedelta(seconds=10),
                     "ended_at": at + timedelta(seconds=300), "queue_wait_seconds": 10, "talk_seconds": 290,
                     "abandoned": False, "status": "completed", "source": "bench", "facts": {},
                     "created_at": at, "updated_at": at})
    session.execute(insert(Call), rows)
    session.execute(insert(NumberBlock), [{
        "centre_id": centre_id, "number_hash": _hash(rnd.randrange(numbers)), "number_masked": "0900 *** 000",
        "reason": "bench", "starts_at": day_start - timedelta(days=1), "expires_at": now + timedelta(days=30),
        "created_by": "bench"} for _ in range(200)])
    flagged = [rnd.randrange(numbers) for _ in range(100)]
    earlier = day_start - timedelta(days=30)
    session.execute(insert(Call), [{
        "provider": "asterisk", "provider_key": f"f{i}", "centre_id": centre_id, "unrouted": False,
        "caller_id_status": "present", "caller_masked": "0900 *** 000", "number_hash": _hash(n),
        "received_at": earlier, "answered_at": earlier, "ended_at": earlier, "status": "completed", "abandoned": False,
        "source": "bench", "facts": {}, "created_at": earlier, "updated_at": earlier} for i, n in enumerate(flagged)])
    ids = session.scalars(select(Call.id).where(Call.provider_key.like("f%"))).all()
    session.execute(insert(CallRecord), [{
        "call_id": cid, "centre_id": centre_id, "channel": "telephony", "state": "completed", "version": 1,
        "flags": ["do_not_call_back"], "notes": "", "references_given": [], "consent_referral_scope": {},
        "created_at": earlier, "updated_at": earlier} for cid in ids])
    session.commit()


def run(url: str, missed: int, label: str) -> float:
    engine = create_engine(url)
    with Session(engine) as session:
        centre = Centre(code="bench", name="Bench centre", timezone=HCM,
                        created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
        session.add(centre)
        session.commit()
        day_start = datetime.combine(date(2026, 3, 10), datetime.min.time(), timezone.utc) - timedelta(hours=7)
        t0 = time.perf_counter()
        seed(session, centre.id, day_start, missed)
        seeded = time.perf_counter() - t0
        if engine.dialect.name == "postgresql":
            session.execute(text("ANALYZE"))
            session.commit()
        end = day_start + timedelta(days=1)
        t0 = time.perf_counter()
        first = service.build(session, now=end)
        session.commit()
        build1 = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = service.build(session, now=end)
        session.commit()
        build2 = time.perf_counter() - t0
        t0 = time.perf_counter()
        listed = service.open_items(session, actor=Admin(), now=end, centre_id=centre.id)
        size = service.sizes(session, centre_id=centre.id, now=end)
        reads = time.perf_counter() - t0
        by_reason = dict(session.execute(select(CallbackItem.close_reason, func.count())
                                         .group_by(CallbackItem.close_reason)).all())
        print(f"  {label}: seeded {missed:,} missed calls in {seeded:.1f} s; first build {build1:.2f} s "
              f"({first.made:,} items made, {first.merged:,} calls merged into them, {first.closed:,} closed: "
              f"{by_reason}); second build {build2:.2f} s ({second.as_dict()}); list of {len(listed)} and sizes "
              f"({size['callbacks']:,} waiting) {reads * 1000:.0f} ms")
    engine.dispose()
    return build1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--missed", type=int, default=10_000)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    ok = True
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"callbacks bench ({datetime.now(timezone.utc):%H:%M:%S} UTC, load {load})")
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            migrate.upgrade(url)
            took = run(url, args.missed, "SQLite")
            ok &= took <= TARGET
            print(f"  SQLite: worklists over {args.missed:,} missed calls built in {took:.2f} s (target ≤ 1 s) "
                  f"{'OK' if took <= TARGET else 'MISSED'}")
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"hotline_bench_cb_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate.upgrade(url)
        took = run(url, args.missed, "PostgreSQL")
        ok &= took <= TARGET
        print(f"  PostgreSQL: worklists over {args.missed:,} missed calls built in {took:.2f} s (target ≤ 1 s) "
              f"{'OK' if took <= TARGET else 'MISSED'}")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
