#!/usr/bin/env python3
"""From a real Asterisk's AMI event to hotline's call record, live (issue #16, "Speed").

Starts an installed Asterisk 22 (ASTERISK_ROOT, as scripts/asterisk/record.py does) with the
deploy/asterisk/ samples, runs ``hotline ami`` from this checkout against it with PostgreSQL
(a fresh database ``hotline_bench_live_<n>`` on HOTLINE_BENCH_PG, default
postgresql+psycopg://postgres@127.0.0.1:5432/test), places CALLS Local-channel calls that
counsellors answer after 1 s and the caller ends after TALK s, and polls the calls table every
5 ms. For each call it reports how long after the event's own ``Timestamp:`` the record showed:
  join     QueueCallerJoin  -> the call exists (queued)
  answer   AgentConnect     -> answered_at set / in_progress
  end      caller's Hangup  -> closed (completed)
Usage: .venv/bin/python bench/asterisk_live.py [--calls 30] [--gap 1.5] [--talk 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "asterisk"))
import record as R  # noqa: E402 - after the sys.path entry above


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--gap", type=float, default=1.5, help="seconds between calls")
    ap.add_argument("--talk", type=float, default=2.0)
    args = ap.parse_args()
    admin_url = os.environ.get("HOTLINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"hotline_bench_live_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    data = Path(tempfile.mkdtemp(prefix="hotline-live-"))
    os.environ["HOTLINE_LIVE_DATABASE_URL"] = url
    pbx = None
    try:
        env = R.hotline_env(data)
        R.HOTLINE_ENV = env
        sc = R.Scenario("bench", "latency", lambda r: None, members=("tvv1", "tvv2", "tvv3"),
                        queue_options={"wrapuptime": "0"})
        pbx = R.Pbx(sc)
        pbx.start()
        run = R.Run(sc, pbx)  # starts hotline ami, the recorder's connections
        time.sleep(3)  # hotline ami logged in and resynced
        engine = create_engine(url)
        seen: dict[tuple[str, str], float] = {}
        stop = threading.Event()

        def poll() -> None:
            with engine.connect() as conn:
                while not stop.is_set():
                    rows = conn.execute(text("SELECT provider_key, status, answered_at FROM calls")).all()
                    conn.commit()
                    now = time.time()
                    for key, status, answered in rows:
                        seen.setdefault((key, "join"), now)
                        if answered is not None or status in ("in_progress", "completed"):
                            seen.setdefault((key, "answer"), now)
                        if status not in ("ringing", "queued", "in_progress"):
                            seen.setdefault((key, "end"), now)
                    time.sleep(0.005)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        for a in ("tvv1", "tvv2", "tvv3"):
            run.phone(a, "answer", ring=1)
        for i in range(args.calls):
            run.caller(f"09020{i:05d}", f"Bench {i}", hangup_after=1 + args.talk)
            time.sleep(args.gap)
        time.sleep(args.talk + 4)
        stop.set()
        poller.join(2)
        # event times from the all-events stream
        events: dict[tuple[str, str], float] = {}
        callers: dict[str, str] = {}
        for raw in bytes(run.all.data).split(b"\r\n\r\n"):
            f = R.parse(raw)
            ev, key = f.get("Event"), f.get("Linkedid", "")
            if not ev or "Timestamp" not in f:
                continue
            ts = float(f["Timestamp"])
            if ev == "QueueCallerJoin":
                events.setdefault((key, "join"), ts)
                callers[key] = f.get("Channel", "")
            elif ev == "AgentConnect":
                events.setdefault((key, "answer"), ts)
            elif ev == "Hangup" and callers.get(key) == f.get("Channel"):
                events[(key, "end")] = ts
        with engine.connect() as conn:
            counts = conn.execute(text("SELECT status, count(*) FROM calls GROUP BY status")).all()
        n_connect = sum(1 for (k, s) in events if s == "answer")
        run.finish_segment("filtered")
        run.finish_segment("all")
        if run.hotline:
            run.hotline.stop()
        print(f"Asterisk {pbx.cli('core show version').split()[1]}, hotline ami on PostgreSQL, {args.calls} calls, "
              f"one every {args.gap:g} s, 3 counsellors; AgentConnect for {n_connect}; records: "
              + ", ".join(f"{st} {n}" for st, n in counts))
        for step in ("join", "answer", "end"):
            lat = sorted(seen[(k, s)] - t for (k, s), t in events.items() if s == step and (k, s) in seen)
            missing = sum(1 for (k, s) in events if s == step and (k, s) not in seen)
            if not lat:
                print(f"  {step:6}: no record seen ({missing} events)")
                continue
            p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
            print(f"  {step:6}: n={len(lat)} median {statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                  f"max {lat[-1] * 1000:.0f} ms" + (f", {missing} never seen" if missing else ""))
    finally:
        if pbx:
            pbx.stop()
        from sqlalchemy import text as t2

        with admin.connect() as c:
            c.execute(t2(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
