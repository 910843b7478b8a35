"""AMI ingest end to end: replay server → ``hotline ami`` → PostgreSQL, raw events persisted.

Prints the sustained events/s beside the parse-only rate of the same events.

    .venv/bin/python bench/ami_ingest.py [--events 200000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Creates a fresh database next to the given one, migrates it, and drops it at the end.
Target: at least 5,000 events/s sustained on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _ami_listener import start_listener  # noqa: E402 - after the sys.path entry above
from sqlalchemy import create_engine, text  # noqa: E402 - after the sys.path entry above

from hotline import migrate  # noqa: E402 - after the sys.path entry above
from hotline.ingest.providers.asterisk.simulator import AmiServer, synthetic_stream  # noqa: E402 - after the sys.path entry above
from hotline.ingest.providers.asterisk.translator import AmiMapper, parse_frame, split_frames  # noqa: E402 - after the sys.path entry above

TARGET = 5_000  # events/s, end to end


def parse_only(blocks: list[bytes], events: int) -> float:
    mapper = AmiMapper("bench")
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    n = 0
    for block in blocks:
        frames, _ = split_frames(block)
        for raw in frames:
            mapper.to_raw(raw, now, parse_frame(raw))
            n += 1
    assert n == events, (n, events)
    return n / (time.perf_counter() - started)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--pg", default=os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()

    blocks = list(synthetic_stream(args.events))
    events = sum(len(split_frames(b)[0]) for b in blocks)
    payload = sum(len(b) for b in blocks)
    print(f"workload: {events} AMI events ({payload / 1e6:.1f} MB) from {events // 120}-odd synthetic queue calls "
          "shaped like the Asterisk 22 captures (3 answered : 1 abandoned)")
    rate_parse = parse_only(blocks, events)

    name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    proc = None
    ok = False
    server = AmiServer(username="bench", secret="bench-secret").start()
    try:
        migrate.upgrade(url)
        engine = create_engine(url)
        tmp = tempfile.mkdtemp(prefix="hotline-bench-")
        proc = start_listener(url, server.port, tmp)
        if not server.wait_for_login(timeout=30):
            raise SystemExit("hotline ami did not log in")

        def stored() -> int:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM raw_events WHERE event_type <> 'Resync'")).scalar())

        deadline = time.monotonic() + 30
        while not any(a.get("Action") == "QueueStatus" for a in server.actions) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        started = time.monotonic()
        server.push(iter(blocks))
        samples: list[tuple[float, int]] = []
        last = -1
        stall = time.monotonic()
        while True:
            n = stored()
            now = time.monotonic()
            samples.append((now - started, n))
            if n >= events:
                break
            if n != last:
                last, stall = n, now
            elif now - stall > 60:
                raise SystemExit(f"stalled at {n} of {events} events")
            time.sleep(0.25)
        elapsed = samples[-1][0]
        cpu = _cpu_seconds(proc.pid)
        # steady state: the middle half of the run
        lo = next(s for s in samples if s[1] >= events * 0.25)
        hi = next(s for s in samples if s[1] >= events * 0.75)
        steady = (hi[1] - lo[1]) / max(1e-9, hi[0] - lo[0])
        with engine.connect() as conn:
            calls = conn.execute(text("SELECT status, count(*) FROM calls GROUP BY status ORDER BY status")).all()
            dead = conn.execute(text("SELECT count(*) FROM dead_letters")).scalar()
        engine.dispose()
        print(f"parse only (split + parse + map, one thread): {rate_parse:,.0f} events/s")
        print(f"end to end (TCP → hotline ami → PostgreSQL, committed): {events / elapsed:,.0f} events/s overall, "
              f"{steady:,.0f} events/s steady (middle half); {events} events in {elapsed:.1f} s")
        print(f"hotline ami used {cpu:.1f} CPU s: {events / cpu:,.0f} events per CPU second of the listener "
              f"(machine load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"calls: {', '.join(f'{s} {c}' for s, c in calls)}; dead letters: {dead}")
        ok = steady >= TARGET
        print(f"target {TARGET:,} events/s sustained: {'met' if ok else 'MISSED'}")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
