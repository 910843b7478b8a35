"""AMI event → call record committed: latency percentiles, into PostgreSQL.

    .venv/bin/python bench/ami_latency.py [--calls 300] [--rate 10] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

A simulator sends synthetic queue calls (the frames of the Asterisk 22 captures, ≈ 120 events a
call) paced at ``--rate`` calls a second, each call's frames as its phases would arrive (start,
answer, hang-up); the listener (``AmiListener``, as ``hotline ami`` runs it) ingests them into a
fresh PostgreSQL database.  Each frame's latency is from the moment the listener's reader received
it to the moment the transaction holding it committed.  Target: p99 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402 - after the sys.path entry above

TARGET_P99_MS = 100.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rate", type=float, default=10.0, help="calls started per second")
    ap.add_argument("--pg", default=os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()

    name = f"bench_latency_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    data_dir = tempfile.mkdtemp(prefix="hotline-bench-")
    os.environ.update({"HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": data_dir, "HOTLINE_REDIS_URL": "",
                       "HOTLINE_SECRET_KEY": "bench-secret-key", "HOTLINE_ENV_FILE": os.path.join(data_dir, "none.env"),
                       "HOTLINE_LOG_LEVEL": "WARNING"})
    from hotline import migrate
    from hotline.ingest import spool
    from hotline.ingest.providers.asterisk.listener import AmiListener
    from hotline.ingest.providers.asterisk.simulator import AmiServer, synthetic_call
    from hotline.settings import reset_settings

    reset_settings()
    migrate.upgrade(url)
    latencies: list[float] = []
    lock = threading.Lock()

    def submit(items):
        result = spool.submit(items)
        done = time.time()
        with lock:
            latencies.extend(done - i.received_at.timestamp() for i in items if i.event_type != "Resync")
        return result

    server = AmiServer(username="bench", secret="bench-secret").start()
    listener = AmiListener("127.0.0.1", server.port, "bench", "bench-secret", submit=submit)
    listener.start()
    try:
        assert listener.wait_applied(lambda s: s.resyncs >= 1, timeout=30), "no resync"
        calls = [synthetic_call(outcome="answered" if n % 4 else "abandoned", caller=f"09{n:08d}", wait=1, talk=2)
                 for n in range(args.calls)]
        # each call's frames by phase, at the times they would happen (start, answer, hang-up)
        schedule = []
        t0 = time.monotonic() + 0.5
        for n, c in enumerate(calls):
            start = t0 + n / args.rate
            moments: dict[float, list[bytes]] = {}
            for offset, frame in c.frames:  # (seconds after the call's start, message)
                moments.setdefault(offset, []).append(frame)
            for offset, frames in moments.items():
                schedule.append((start + offset, b"".join(frames)))
        schedule.sort(key=lambda x: x[0])
        sent = 0
        for at, data in schedule:
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            server.push(data)
            sent += data.count(b"\r\n\r\n")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lock:
                if len(latencies) >= sent:
                    break
            time.sleep(0.1)
    finally:
        listener.stop()
        listener.join(10)
        server.stop()
        from hotline.db import reset_engine

        reset_engine()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    lat = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))]

    load = os.getloadavg()[0]
    print(f"{len(lat)} events of {args.calls} calls at {args.rate:g} calls/s, load average {load:.1f}: "
          f"p50 {pct(50):.1f} ms, p90 {pct(90):.1f} ms, p99 {pct(99):.1f} ms, max {lat[-1]:.1f} ms")
    return 0 if pct(99) <= TARGET_P99_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
