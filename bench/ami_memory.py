"""Listener memory over 1,000,000 replayed AMI events: RSS of ``hotline ami`` must stay flat
(no growth beyond 10 % after warm-up).

    .venv/bin/python bench/ami_memory.py [--events 1000000] [--db pg|sqlite]

A simulator streams synthetic queue calls (shaped like the Asterisk 22 captures, fresh
Linkedids) to a ``hotline ami`` process that applies them to a fresh database (PostgreSQL
database created and dropped, or a SQLite file in a temporary directory); the bench samples the
listener's resident set size from ``/proc`` as the events go through.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _ami_listener import start_listener  # noqa: E402 - after the sys.path entry above
from sqlalchemy import create_engine, text  # noqa: E402 - after the sys.path entry above

from hotline import migrate  # noqa: E402 - after the sys.path entry above
from hotline.ingest.providers.asterisk.simulator import AmiServer, synthetic_stream  # noqa: E402 - after the sys.path entry above
from hotline.ingest.providers.asterisk.translator import split_frames  # noqa: E402 - after the sys.path entry above


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


class Counted:
    """The synthetic stream, counting the events handed to the server."""

    def __init__(self, events: int):
        self.sent = 0
        self.total: int | None = None
        self._inner = synthetic_stream(events)

    def __iter__(self) -> Iterator[bytes]:
        for block in self._inner:
            self.sent += len(split_frames(block)[0])
            yield block
        self.total = self.sent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["pg", "sqlite"], default="pg")
    ap.add_argument("--pg", default=os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="hotline-bench-mem-")
    admin = None
    name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
    if args.db == "pg":
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite:///{tmp}/hotline.sqlite3"
    server = AmiServer(username="bench", secret="bench-secret").start()
    proc = None
    flat = False
    try:
        migrate.upgrade(url)
        engine = create_engine(url)
        proc = start_listener(url, server.port, tmp)
        if not server.wait_for_login(timeout=30):
            raise SystemExit("hotline ami did not log in")
        time.sleep(1.0)
        print(f"listener RSS at login: {rss_mb(proc.pid):.1f} MB; streaming {args.events:,} events ({args.db})")
        stream = Counted(args.events)
        started = time.monotonic()
        server.push(iter(stream))
        samples: list[tuple[int, float]] = []

        def stored() -> int:  # ids are consecutive here: every event is new
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT max(id) FROM raw_events")).scalar() or 0)

        while True:
            time.sleep(args.every)
            done = stored()
            rss = rss_mb(proc.pid)
            samples.append((done, rss))
            print(f"  {time.monotonic() - started:7.1f} s  events applied ≈ {done:>9,}  RSS {rss:7.1f} MB", flush=True)
            if stream.total is not None and done >= stream.total + 1:  # + the resync snapshot
                break
            if proc.poll() is not None:
                raise SystemExit("hotline ami exited")
        elapsed = time.monotonic() - started
        total = stream.total
        warm = next((s for s in samples if s[0] >= total * 0.1), samples[0])
        after = [rss for n, rss in samples if n >= warm[0]]
        growth = (max(after) - warm[1]) / warm[1] * 100
        print(f"{total:,} events in {elapsed:.0f} s ({total / elapsed:,.0f} events/s)")
        print(f"RSS after warm-up (10 %): {warm[1]:.1f} MB; max afterwards {max(after):.1f} MB; "
              f"final {samples[-1][1]:.1f} MB; growth {growth:+.1f} % (limit +10 %): "
              f"{'FLAT' if growth <= 10 else 'GROWING'}")
        engine.dispose()
        flat = growth <= 10
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
