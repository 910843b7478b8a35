"""Benchmark: ``POST /webhooks/twilio/status`` latency with 50 concurrent clients.

A real uvicorn server (``hotline.app:create_app``) on a fresh PostgreSQL database created and
dropped on 127.0.0.1; every request is signed with ``twilio.request_validator.RequestValidator``
exactly as Twilio signs it.  Calls are opened with the voice webhook first, then the clients post
the status callbacks of those calls (ringing, in-progress, completed with SequenceNumber and
Timestamp), as Twilio would for many simultaneous calls.

Runs:
- paced (``--runs``, default 3): each client sends one callback, waits ``--think`` seconds, sends
  the next (Twilio's load is many calls each posting a few callbacks, not one client hammering);
- saturated: the same clients back to back, to show the ceiling (throughput);
- no-db ref: the hold-music webhook back to back (signature check and TwiML, no database), the
  floor that the web stack alone costs on this machine.

Usage: .venv/bin/python bench/twilio_status.py [--clients 50] [--calls 200] [--think 1.0] [--runs 3]
Target: p99 ≤ 20 ms in every paced run (issue #16), on an idle machine: each run prints the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hotline import migrate  # noqa: E402 - after the sys.path entry above

PG_ADMIN_URL = os.environ.get("HOTLINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOKEN = "bench-twilio-auth-token"
TARGET_P99_MS = 20.0
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signed(base: str, path: str, params: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
    signature = RequestValidator(TOKEN).compute_signature(base + path, params)
    return path, urlencode(params).encode(), {"X-Twilio-Signature": signature,
                                              "Content-Type": "application/x-www-form-urlencoded"}


def call_params(i: int) -> dict[str, str]:
    return {"AccountSid": "AC" + "0" * 32, "CallSid": f"CA{i:032d}", "From": f"+8491{i % 10_000_000:07d}",
            "Caller": f"+8491{i % 10_000_000:07d}", "To": "+842873001234", "Called": "+842873001234",
            "Direction": "inbound", "ApiVersion": "2010-04-01", "CallerName": ""}


def status_requests(base: str, calls: range) -> list[tuple[str, bytes, dict[str, str]]]:
    out = []
    for i in calls:
        for seq, (status, sec) in enumerate((("ringing", 0), ("in-progress", 1), ("completed", 90))):
            params = {**call_params(i), "CallStatus": status, "SequenceNumber": str(seq),
                      "Timestamp": format_datetime(T0 + timedelta(seconds=sec + i), usegmt=True),
                      "CallbackSource": "call-progress-events"}
            if status == "completed":
                params["CallDuration"] = "90"
            out.append(signed(base, "/webhooks/twilio/status", params))
    return out


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator shares the CPUs with the server,
    so it should cost as little as possible (httpx costs several times more per request)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{head}"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run(base: str, requests: list, clients: int, think: float) -> tuple[list[float], float]:
    host, port = base.removeprefix("http://").split(":")
    pending = list(reversed(requests))
    latencies: list[float] = []
    failures: list[str] = []

    async def client(n: int) -> None:
        conn = Connection(host, int(port))
        if think:  # spread the clients' start over one think time, as independent calls would be
            await asyncio.sleep(think * n / clients)
        try:
            while pending:
                path, body, headers = pending.pop()
                started = time.perf_counter()
                status, text = await conn.post(path, body, headers)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    failures.append(f"{status} {text[:200]!r}")
                if think:
                    await asyncio.sleep(think)
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
    return latencies, elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to show cost apart from machine load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, base: str, requests: list, clients: int, think: float) -> tuple[list[float], float, float]:
    before = cpu_seconds(pid)
    latencies, elapsed = asyncio.run(run(base, requests, clients, think))
    return latencies, elapsed, (cpu_seconds(pid) - before) / len(requests)


def report(name: str, latencies: list[float], elapsed: float, cpu: float) -> float:
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    print(f"{name:<10} requests={len(ms):>5}  p50={q[49]:6.1f} ms  p95={q[94]:6.1f} ms  p99={q[98]:6.1f} ms  "
          f"max={ms[-1]:6.1f} ms  throughput={len(ms) / elapsed:7.1f} req/s  server CPU={cpu * 1000:5.2f} ms/req")
    return q[98]


def wait_ready(base: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("uvicorn exited before it was ready")
        try:
            httpx.get(base + "/webhooks/twilio/voice", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("uvicorn did not start within 30 s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--calls", type=int, default=200, help="calls per run (3 status callbacks each)")
    ap.add_argument("--think", type=float, default=1.0, help="seconds each client waits between callbacks")
    ap.add_argument("--runs", type=int, default=3, help="paced runs (each on its own calls)")
    ap.add_argument("--profile", metavar="FILE", help="sample the server with py-spy during the paced run "
                    "(collapsed stacks written to FILE; pip install py-spy)")
    args = ap.parse_args()

    name = f"hotline_bench_twilio_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    proc = None
    try:
        migrate.upgrade(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        data_dir = tempfile.mkdtemp(prefix="hotline-bench-")
        env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_TWILIO_AUTH_TOKEN": TOKEN,
               "HOTLINE_PUBLIC_BASE_URL": base, "HOTLINE_SECRET_KEY": "bench-secret-key",
               "HOTLINE_DATA_DIR": data_dir, "HOTLINE_ENVIRONMENT": "test", "HOTLINE_REDIS_URL": "",
               "HOTLINE_LOG_LEVEL": "WARNING", "HOTLINE_ENV_FILE": os.devnull, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "hotline.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--no-access-log"],
            env=env, cwd=ROOT)
        wait_ready(base, proc)

        total = args.calls * (args.runs + 1) + 50
        voices = [signed(base, "/webhooks/twilio/voice", {**call_params(i), "CallStatus": "ringing"})
                  for i in range(total)]
        asyncio.run(run(base, voices, min(args.clients, 8), 0))  # open every call (and warm up)
        warm = status_requests(base, range(args.calls * (args.runs + 1), total))
        asyncio.run(run(base, warm, args.clients, 0))

        print(f"POST /webhooks/twilio/status, {args.clients} concurrent clients, PostgreSQL, one uvicorn worker, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
              "(load generator on the same machine)")
        p99s = []
        for run_no in range(args.runs):
            paced = status_requests(base, range(args.calls * run_no, args.calls * (run_no + 1)))
            spy = None
            if args.profile and run_no == 0:
                spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(proc.pid),
                                        "--rate", "250", "--nonblocking", "--gil", "--threads", "--format", "raw",
                                        "--output", args.profile], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            load = os.getloadavg()[0]
            p99s.append(report(f"paced {run_no + 1}", *measured(proc.pid, base, paced, args.clients, args.think)))
            print(f"{'':<10} (load average {load:.1f} at the start of the run)")
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
        saturated = status_requests(base, range(args.calls * args.runs, args.calls * (args.runs + 1)))
        report("saturated", *measured(proc.pid, base, saturated, args.clients, 0))

        hold = [signed(base, "/webhooks/twilio/wait", {"CallSid": f"CA{i:032d}", "QueuePosition": "2",
                                                        "QueueTime": "40"}) for i in range(args.calls * 3)]
        report("no-db ref", *measured(proc.pid, base, hold, args.clients, 0))  # signature + TwiML, no database

        spool_dir = Path(data_dir) / "spool"
        spooled = len(list(spool_dir.glob("*.jsonl")))
        deadline = time.time() + 60  # events spooled under overload are replayed by the drainer
        while list(spool_dir.glob("*.jsonl")) and time.time() < deadline:
            time.sleep(0.5)
        print(f"spool files waiting after the runs: {spooled}, after replay: {len(list(spool_dir.glob('*.jsonl')))}")
        check = create_engine(url)
        with check.connect() as conn:
            done = conn.execute(text("SELECT count(*) FROM calls WHERE status = 'missed'")).scalar()
            raws = conn.execute(text("SELECT count(*) FROM raw_events")).scalar()
        check.dispose()
        print(f"calls ended: {done}, raw events stored: {raws}")
        met = sum(p <= TARGET_P99_MS for p in p99s)
        verdict = "PASS" if met == len(p99s) else "FAIL"
        print(f"{verdict}: paced p99 {', '.join(f'{p:.1f}' for p in p99s)} ms; {met} of {len(p99s)} runs "
              f"≤ {TARGET_P99_MS:g} ms (target: every run, on an idle machine)")
        return 0 if verdict == "PASS" else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
