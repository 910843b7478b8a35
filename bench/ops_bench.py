"""Operations benchmark: what a Prometheus scrape, a readiness probe and a backup cost at a
realistic size, on PostgreSQL.

* ``GET /metrics`` over CALLS calls and EVENTS raw events (a provincial line's few years), through
  the real application in process (TestClient, with the metrics token); the per-process cache is
  turned off so every scrape queries the database.  Target: p95 ≤ 250 ms (Prometheus scrapes
  every 15 s; the figures must not load the database).
* ``GET /readyz`` (database round trip, cached migration state).  Target: p95 ≤ 50 ms.
* Backup encryption throughput (AES-256-GCM, 1 MiB parts) on 64 MiB.  Target ≥ 50 MB/s, so the
  encryption never slows ``pg_dump``.

    .venv/bin/python bench/ops_bench.py [--calls 50000] [--events 200000]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402 - after the sys.path entry above

PG_ADMIN = os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOKEN = "bench-metrics-token-0123456789abcdef"


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def seed(url: str, calls: int, events: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO centres (code, name, timezone, is_default, active, created_at) "
                          "VALUES ('default', 'Default', 'Asia/Ho_Chi_Minh', true, true, now()), "
                          "('qn', 'Quảng Ninh', 'Asia/Ho_Chi_Minh', false, true, now())"))
        conn.execute(text("""
            INSERT INTO calls (provider, provider_key, centre_id, unrouted, caller_id_status, caller_masked,
                               received_at, abandoned, status, source, facts, created_at, updated_at)
            SELECT 'asterisk', 'bench-' || g, 1 + (g % 2), false, 'available', '0912 *** 678',
                   now() - (g || ' minutes')::interval, g % 7 = 0,
                   (ARRAY['completed','completed','completed','abandoned','missed','unknown_outcome','in_progress'])[1 + g % 7],
                   'bench', '{}'::jsonb, now(), now()
            FROM generate_series(1, :n) AS g"""), {"n": calls})
        conn.execute(text("""
            INSERT INTO raw_events (provider, dedupe_key, event_type, received_at, payload)
            SELECT CASE WHEN g % 5 = 0 THEN 'twilio' ELSE 'asterisk' END, 'bench-ev-' || g, 'bench',
                   now() - (g || ' seconds')::interval, 'Event: Bench'
            FROM generate_series(1, :n) AS g"""), {"n": events})
        conn.execute(text("INSERT INTO dead_letters (provider, payload, reason, created_at) "
                          "SELECT 'asterisk', '', 'bench', now() FROM generate_series(1, 50)"))
        conn.execute(text("ANALYZE"))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--scrapes", type=int, default=40)
    args = parser.parse_args()

    name = f"hotline_bench_ops_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    failed = []
    try:
        tmp = tempfile.mkdtemp(prefix="ops-bench-")
        os.environ.update({"HOTLINE_ENV_FILE": os.path.join(tmp, "none.env"), "HOTLINE_DATABASE_URL": url,
                           "HOTLINE_DATA_DIR": tmp, "HOTLINE_SECRET_KEY": "bench-secret-key-" + "x" * 32,
                           "HOTLINE_METRICS_TOKEN": TOKEN, "HOTLINE_REDIS_URL": "", "HOTLINE_LOG_LEVEL": "WARNING",
                           "HOTLINE_ENVIRONMENT": "test"})
        from hotline import migrate

        migrate.upgrade(url)
        started = time.perf_counter()
        seed(url, args.calls, args.events)
        print(f"seeded {args.calls:,} calls and {args.events:,} raw events in {time.perf_counter() - started:.1f} s")

        from fastapi.testclient import TestClient

        from hotline.app import create_app
        from hotline.logging import configure_logging
        from hotline.ops import metrics

        configure_logging("WARNING", "console")
        metrics.CACHE_SECONDS = 0.0  # every scrape hits the database
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with TestClient(create_app()) as client:
            assert client.get("/metrics", headers=auth).status_code == 200  # warm-up
            scrape = []
            for _ in range(args.scrapes):
                t = time.perf_counter()
                r = client.get("/metrics", headers=auth)
                scrape.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and "hotline_calls{" in r.text
            ready = []
            for _ in range(200):
                t = time.perf_counter()
                assert client.get("/readyz").status_code == 200
                ready.append((time.perf_counter() - t) * 1000)
        print(f"GET /metrics  p50 {statistics.median(scrape):7.1f} ms  p95 {p95(scrape):7.1f} ms   (target p95 <= 250 ms)")
        print(f"GET /readyz   p50 {statistics.median(ready):7.1f} ms  p95 {p95(ready):7.1f} ms   (target p95 <= 50 ms)")
        if p95(scrape) > 250:
            failed.append("metrics")
        if p95(ready) > 50:
            failed.append("readyz")

        from hotline.ops import backup

        size = 64 << 20
        data = os.urandom(1 << 20) * 64
        key = backup.key_source(backup_key="bench-backup-key-" + "y" * 32)
        sink = io.BytesIO()
        t = time.perf_counter()
        backup.encrypt_stream(io.BytesIO(data), sink, key, {"kind": "bench"})
        enc = size / (time.perf_counter() - t) / 1e6
        sink.seek(0)
        t = time.perf_counter()
        for _ in backup.decrypt_stream(sink, key):
            pass
        dec = size / (time.perf_counter() - t) / 1e6
        print(f"backup encrypt {enc:7.0f} MB/s, decrypt+verify {dec:7.0f} MB/s   (target >= 50 MB/s)")
        if min(enc, dec) < 50:
            failed.append("backup")
    finally:
        from hotline.db import reset_engine

        reset_engine()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    if failed:
        print("targets missed: " + ", ".join(failed))
        return 1
    print("every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
