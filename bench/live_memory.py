"""Live screens at scale: 200 supervisor screens on two web processes, 20 calls/s for a minute.

    .venv/bin/python bench/live_memory.py                    # 200 screens, 2 web processes, 20 calls/s, 60 s
    .venv/bin/python bench/live_memory.py --screens 200 --rate 20 --seconds 60 --trace
    .venv/bin/python bench/live_memory.py --board reread         # wallboards re-reading their figures
    .venv/bin/python bench/live_memory.py --screens 10 --rate 1 --seconds 30       # the small reference
    .venv/bin/python bench/live_memory.py --profile /tmp/prof   # + py-spy profiles of the web processes

Everything real: a scratch PostgreSQL database (created and dropped), Redis pub/sub between the
web processes (``HOTLINE_BENCH_REDIS`` or ``HOTLINE_TEST_REDIS``, else db 14), two uvicorn
processes serving ``hotline.app:create_app``, the calls through ``POST /webhooks/twilio/voice``
and ``/status`` signed as Twilio signs them, spread over both processes as a load balancer would.
The screens are supervisors (each sees every call) signed in with their own session, reading
``GET /live/events`` over plain sockets from separate client processes (one per web process, so
the load generator costs little), reconnecting with ``Last-Event-ID`` as a browser does.

Each call: the voice webhook (the call rings), ``in-progress`` 2 s later, ``completed`` 6 s later,
sent at their times over keep-alive connections, a new one when all are busy (Twilio does not wait
for an answer before the next webhook): the offered rate is printed.  Pop latency: from just before the voice webhook is sent to the first SSE event for that call on
each screen (same machine, same clock).  Memory: each web process's resident set (``/proc``),
sampled every second; ``--trace`` runs the web processes under ``tracemalloc`` and writes, for
the moment the screens are connected and the end of the load, the live objects by type and the
top allocation sites (``bench/_web_traced.py``; bench only, production has no such switch).
CPU: each process's user + system time during the load (web processes, screen clients, this
process sending the webhooks, PostgreSQL and Redis); ``--profile DIR`` also samples each web
process and screen client with py-spy (the thread holding the GIL, 100 Hz) into collapsed stacks.

Targets (issue #17): each web process ≤ 400 MB resident; pop p99 ≤ 150 ms; no pop missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from twilio_status import Connection, call_params, free_port, signed  # noqa: E402 - bench helpers

PG_ADMIN_URL = os.environ.get("HOTLINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HOTLINE_BENCH_REDIS") or os.environ.get("HOTLINE_TEST_REDIS") or "redis://127.0.0.1:6379/14"
TOKEN = "bench-twilio-auth-token"
PUBLIC = "https://hotline.bench.invalid"
PASSWORD = "Correct-Horse-Battery-9"
RSS_TARGET_MB = 400.0
P99_TARGET_MS = 150.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/PID/stat``), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def named_cpu(names: tuple[str, ...]) -> float:
    """CPU time of every process whose command is one of ``names`` (PostgreSQL's backends, Redis):
    on a shared machine this includes other users' work on the same servers."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm in names:
                total += cpu_seconds(int(entry.name))
    return total


def pct(values: list[float], p: float) -> float:
    import math

    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


# ---------------------------------------------------------------------- the screens (client process)
class Board:
    """What ``hotline/live/static/wallboard.js`` does.  ``push`` (since 05/12/2026, late): its stream
    asks for ``board=1`` and the server pushes the figures (``wallboard`` events); the board reads
    ``GET /live/wallboard.json`` only 1 s after the stream opens or a ``resync``.  ``--board reread``
    (earlier that day): an SSE event starts a 1 s timer unless one is running, then the JSON is
    re-read (one keep-alive connection per screen).  ``--board old`` (before 05/12/2026): every
    event restarts a 150 ms timer."""

    mode = "push"

    def __init__(self, host: str, port: int, cookie: str, stats: dict[str, int], times: list[float]):
        self.host, self.port, self.cookie, self.stats, self.times = host, port, cookie, stats, times
        self.timer: asyncio.TimerHandle | None = None
        self.lock = asyncio.Lock()
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def opened(self) -> None:
        """``hello`` or ``resync``: the JS re-reads the figures once, 1 s later."""
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(1.0, self._fire)

    def event(self) -> None:
        if self.mode == "old":
            if self.timer is not None:
                self.timer.cancel()
            self.timer = asyncio.get_running_loop().call_later(0.15, lambda: asyncio.ensure_future(self.fetch()))
        elif self.mode == "reread" and self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(1.0, self._fire)

    def _fire(self) -> None:
        self.timer = None
        asyncio.ensure_future(self.fetch())

    async def fetch(self) -> None:
        async with self.lock:
            started = time.time()
            try:
                if self.conn is None:
                    self.conn = await asyncio.open_connection(self.host, self.port)
                reader, writer = self.conn
                writer.write(f"GET /live/wallboard.json HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                             f"Accept: application/json\r\nCookie: hotline_session={self.cookie}\r\n\r\n".encode())
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                length = next(int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:"))
                await reader.readexactly(length)
                self.stats["wallboard_ok" if " 200 " in head[0] else "wallboard_failed"] += 1
                self.times.append(time.time() - started)
            except (OSError, asyncio.IncompleteReadError, StopIteration):
                self.stats["wallboard_failed"] += 1
                self.conn = None


async def _screen(host: str, port: int, cookie: str, seen: dict[int, float], stats: dict[str, int],
                  stop: asyncio.Event, board: Board | None) -> None:
    last = ""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        except OSError:
            stats["connect_errors"] += 1
            await asyncio.sleep(1)
            continue
        path = "/live/events?board=1" if board is not None and Board.mode == "push" else "/live/events"
        head = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
                f"Cookie: hotline_session={cookie}\r\n" + (f"Last-Event-ID: {last}\r\n" if last else "") + "\r\n")
        writer.write(head.encode())
        try:
            status = (await reader.readuntil(b"\r\n\r\n")).split(b" ", 2)[1]
            if status != b"200":
                stats["refused"] += 1
                await asyncio.sleep(1)
                continue
            stats["connections"] += 1
            buf, kind = b"", b""
            while not stop.is_set():
                data = await reader.read(1 << 16)
                if not data:
                    stats["closed_by_server"] += 1
                    break
                now = time.time()
                stats["bytes"] += len(data)
                lines = (buf + data).split(b"\n")
                buf = lines.pop()
                for line in lines:
                    if line.startswith(b"id: "):
                        last = line[4:].strip().decode()
                    elif line.startswith(b"event: "):
                        kind = line[7:].strip()
                        if board is not None and kind in (b"hello", b"resync"):
                            board.opened()
                    elif line.startswith(b"data: ") and kind == b"wallboard":
                        stats["wallboard_pushed"] += 1
                    elif line.startswith(b"data: "):
                        stats["events"] += 1
                        if board is not None:
                            board.event()
                        at = line.find(b'"call": {"id": ')
                        if at >= 0:
                            end = at + 15
                            while line[end:end + 1].isdigit():
                                end += 1
                            seen.setdefault(int(line[at + 15:end]), now)
                    elif line.startswith(b"event: resync"):
                        stats["resyncs"] += 1
        except (OSError, asyncio.IncompleteReadError, IndexError):
            stats["errors"] += 1
        finally:
            writer.close()
        await asyncio.sleep(0.5)


async def _clients(conf: dict) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    seen: list[dict[int, float]] = [{} for _ in conf["cookies"]]
    stats = dict.fromkeys(("connections", "connect_errors", "refused", "closed_by_server", "errors", "events",
                           "resyncs", "bytes", "wallboard_ok", "wallboard_failed", "wallboard_pushed"), 0)
    times: list[float] = []
    Board.mode = conf.get("board", "push")
    boards = [Board("127.0.0.1", conf["port"], cookie, stats, times) if conf["wallboard"] else None
              for cookie in conf["cookies"]]
    tasks = [asyncio.create_task(_screen("127.0.0.1", conf["port"], cookie, seen[n], stats, stop, boards[n]))
             for n, cookie in enumerate(conf["cookies"])]
    out = Path(conf["out"])
    while not stop.is_set():
        Path(str(out) + ".connected").write_text(str(stats["connections"]))
        await asyncio.sleep(0.5)
    await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.write_text(json.dumps({"seen": [{str(k): v for k, v in s.items()} for s in seen], "stats": stats,
                               "wallboard": times}))


# ---------------------------------------------------------------------- set-up
def seed(url: str, screens: int, data_dir: Path, today: int) -> list[str]:
    os.environ.update({"HOTLINE_DATABASE_URL": url, "HOTLINE_REDIS_URL": "", "HOTLINE_ENV_FILE": os.devnull,
                       "HOTLINE_DATA_DIR": str(data_dir), "HOTLINE_ENVIRONMENT": "test",
                       "HOTLINE_SECRET_KEY": "bench-secret-key"})
    from hotline import migrate
    from hotline.auth import service as auth
    from hotline.centres import service as centres
    from hotline.db import session_scope
    from hotline.settings import get_settings, reset_settings

    reset_settings()
    migrate.upgrade(url)
    settings = get_settings()
    pw_hash = auth.hash_password(PASSWORD)
    cookies = []
    with session_scope() as db:
        centre = centres.ensure_default_centre(db, code=settings.default_centre_code,
                                               name=settings.default_centre_name, timezone="Asia/Ho_Chi_Minh")
        centres.add_line(db, centre=centre, provider="twilio", kind="number", identifier="+842873001234",
                         label="Đường dây nóng")
        for n in range(1, screens + 1):
            user = auth.create_user(db, username=f"gs{n}", password=PASSWORD, role="supervisor",
                                    centre_id=centre.id, display_name=f"Giám sát {n}")
            user.password_hash = pw_hash
            db.flush()
            cookies.append(auth.start_session(db, user=user).cookie_value)
        db.commit()
        counsellors = []
        for n in range(1, 13):
            user = auth.create_user(db, username=f"tvv{n}", password=PASSWORD, role="counsellor",
                                    centre_id=centre.id, display_name=f"TVV {n}")
            user.password_hash = pw_hash
            db.flush()
            counsellors.append(user.id)
        db.commit()
        if today:  # the day so far: completed calls with their records, missed and abandoned ones
            from daily_log_bench import seed_day

            from hotline.calls.service import day_start

            seed_day(db, centre.id, day_start(datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()), counsellors, today)
    return cookies


def start_web(url: str, port: int, dump_dir: Path, trace: bool, data_dir: Path) -> subprocess.Popen[bytes]:
    """One web process; all share ``data_dir`` (the generated encryption and hashing keys)."""
    env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_TWILIO_AUTH_TOKEN": TOKEN,
           "HOTLINE_PUBLIC_BASE_URL": PUBLIC, "HOTLINE_SECRET_KEY": "bench-secret-key",
           "HOTLINE_DATA_DIR": str(data_dir), "HOTLINE_ENVIRONMENT": "test",
           "HOTLINE_REDIS_URL": REDIS_URL, "HOTLINE_LOG_LEVEL": "WARNING", "HOTLINE_ENV_FILE": os.devnull,
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "bench" / "_web_traced.py"), str(port), str(dump_dir)]
    return subprocess.Popen(cmd + (["--tracemalloc"] if trace else []), env=env, cwd=ROOT)


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.time() + 300  # tracemalloc makes the start slow
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("a web process exited before it was ready")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("a web process did not start within 300 s")


def dump(procs: list[subprocess.Popen[bytes]], dirs: list[Path], n: int) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGUSR1)
    deadline = time.time() + 120
    while time.time() < deadline and not all((d / f"done-{n}").exists() for d in dirs):
        time.sleep(0.5)


# ---------------------------------------------------------------------- the calls
async def drive(ports: list[int], rate: float, seconds: float, first: int, sampler) -> tuple[dict[str, float], list[float], list[str]]:
    """Post each call's three webhooks at their times; returns CallSid → time the voice webhook went out."""
    total = int(rate * seconds)
    start = time.time() + 0.5
    plan: list[tuple[float, int, str]] = []
    for i in range(total):
        t0 = start + i / rate
        plan += [(t0, i, "voice"), (t0 + 2, i, "in-progress"), (t0 + 6, i, "completed")]
    plan.sort()
    pools: dict[int, asyncio.Queue[Connection]] = {}
    for port in ports:
        pools[port] = asyncio.Queue()
        for _ in range(24):
            pools[port].put_nowait(Connection("127.0.0.1", port))
    sent: dict[str, float] = {}
    latencies: list[float] = []
    failures: list[str] = []

    async def post(i: int, kind: str) -> None:
        n = first + i
        port = ports[n % len(ports)] if kind == "voice" else ports[(n + (kind == "completed")) % len(ports)]
        if kind == "voice":
            path, body, headers = signed(PUBLIC, "/webhooks/twilio/voice", {**call_params(n), "CallStatus": "ringing"})
        else:
            params = {**call_params(n), "CallStatus": kind, "SequenceNumber": "1" if kind == "in-progress" else "2",
                      "CallbackSource": "call-progress-events"}
            if kind == "completed":
                params["CallDuration"] = "6"
            path, body, headers = signed(PUBLIC, "/webhooks/twilio/status", params)
        # Twilio does not wait for an earlier webhook to be answered: a new connection when all are busy,
        # so the offered rate stays what was asked however slow the answers get.
        conn = pools[port].get_nowait() if not pools[port].empty() else Connection("127.0.0.1", port)
        try:
            started = time.time()
            if kind == "voice":
                sent[f"CA{n:032d}"] = started
            status, _ = await asyncio.wait_for(conn.post(path, body, headers), 15)  # Twilio gives up after 15 s
            latencies.append(time.time() - started)
            if status != 200:
                failures.append(f"{kind} {status}")
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            failures.append(f"{kind} {type(exc).__name__}")
            await conn.close()
            conn = Connection("127.0.0.1", port)
        finally:
            pools[port].put_nowait(conn)

    tasks = []
    next_sample = time.time()
    for at, i, kind in plan:
        delay = at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.time() >= next_sample:
            sampler()
            next_sample += 1.0
        tasks.append(asyncio.create_task(post(i, kind)))
    await asyncio.gather(*tasks)
    for pool in pools.values():
        while not pool.empty():
            await pool.get_nowait().close()
    return sent, latencies, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--screens", type=int, default=200)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--rate", type=float, default=20.0, help="new calls per second")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--screen", choices=("wallboard", "live"), default="wallboard",
                    help="wallboard: each event (re)starts wallboard.js's 150 ms timer for GET /live/wallboard.json; "
                         "live: the SSE stream only")
    ap.add_argument("--board", choices=("push", "reread", "old"), default="push",
                    help="how the wallboards get their figures: push (pushed on their stream, now), reread "
                    "(GET /live/wallboard.json 1 s after events, earlier on 05/12/2026), old (a 150 ms timer "
                    "restarted by every event, before 05/12/2026)")
    ap.add_argument("--today", type=int, default=5000, help="calls (with records) already taken today")
    ap.add_argument("--trace", action="store_true", help="tracemalloc in the web processes, dumps in --dumps")
    ap.add_argument("--profile", default="", help="a directory: py-spy (next to python, or on PATH) samples each web process and "
                    "screen client for the length of the load (the thread holding the GIL: where the CPU "
                    "goes in Python) and writes collapsed stacks there")
    ap.add_argument("--dumps", default="", help="where the memory dumps go (default: a temp directory)")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        asyncio.run(_clients(json.loads(Path(args.client).read_text())))
        return 0

    from sqlalchemy import create_engine, text

    name = f"hotline_bench_screens_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    work = Path(tempfile.mkdtemp(prefix="hotline-bench-screens-"))
    dumps = Path(args.dumps) if args.dumps else work / "dumps"
    webs: list[subprocess.Popen[bytes]] = []
    clients: list[subprocess.Popen[bytes]] = []
    try:
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter("hotline:live:*"):
            r.delete(key)
        cookies = seed(url, args.screens, work / "data", args.today)
        ports = [free_port() for _ in range(args.processes)]
        dirs = [dumps / f"web{n + 1}" for n in range(args.processes)]
        webs = [start_web(url, port, d, args.trace, work / "data") for port, d in zip(ports, dirs, strict=True)]
        for port, proc in zip(ports, webs, strict=True):
            wait_ready(port, proc)
        print(f"{args.screens} supervisor screens on {args.processes} web processes (uvicorn), PostgreSQL, "
              f"Redis {REDIS_URL}; {args.rate:g} calls/s for {args.seconds:g} s through signed Twilio webhooks; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}" + ("; tracemalloc on" if args.trace else ""))

        def rss() -> list[float]:
            return [rss_mb(p.pid) for p in webs]

        # Warm up: a few calls through each process with no screen, so imports and caches are loaded.
        asyncio.run(drive(ports, 5, 2, 900_000, lambda: None))
        time.sleep(7)
        idle = rss()
        print(f"RSS after warm-up, no screen: {', '.join(f'{x:.0f}' for x in idle)} MB")

        outs = []
        for n, port in enumerate(ports):
            conf = work / f"client{n}.json"
            out = work / f"client{n}.out"
            conf.write_text(json.dumps({"port": port, "cookies": cookies[n::len(ports)], "out": str(out),
                                        "wallboard": args.screen == "wallboard", "board": args.board}))
            outs.append(out)
            clients.append(subprocess.Popen([sys.executable, __file__, "--client", str(conf)], cwd=ROOT))
        deadline = time.time() + 120
        while time.time() < deadline:
            done = sum(int(Path(str(o) + ".connected").read_text() or 0) for o in outs
                       if Path(str(o) + ".connected").exists())
            if done >= args.screens:
                break
            time.sleep(0.5)
        time.sleep(2)
        connected = rss()
        print(f"RSS with {args.screens} screens connected: {', '.join(f'{x:.0f}' for x in connected)} MB")
        if args.trace:
            dump(webs, dirs, 1)

        samples: list[list[float]] = []
        load_start = os.getloadavg()[0]
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
        spy_exe = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}") or "py-spy"
        spies = [subprocess.Popen([spy_exe, "record", "--pid", str(proc.pid), "--rate", "100", "--nonblocking", "--gil",
                                   "--duration", str(int(args.seconds)), "--format", "raw",
                                   "-o", str(Path(args.profile) / f"{name}.txt")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for name, proc in [*((f"web{n + 1}", w) for n, w in enumerate(webs)),
                                    *((f"client{n + 1}", c) for n, c in enumerate(clients))]] if args.profile else []
        watched = {**{f"web{n + 1}": w.pid for n, w in enumerate(webs)},
                   **{f"screens{n + 1}": c.pid for n, c in enumerate(clients)}, "webhook sender": os.getpid()}
        cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
        servers_before = {"postgres": named_cpu(("postgres",)), "redis": named_cpu(("redis-server",))}
        wall_before = time.time()
        sent, webhook_lat, failures = asyncio.run(
            drive(ports, args.rate, args.seconds, 0, lambda: samples.append(rss())))
        wall = time.time() - wall_before
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in watched.items()}
        cpu.update({"postgres (all)": named_cpu(("postgres",)) - servers_before["postgres"],
                    "redis-server": named_cpu(("redis-server",)) - servers_before["redis"]})
        time.sleep(3)
        samples.append(rss())
        for spy in spies:
            spy.wait(60)
        if args.trace:
            dump(webs, dirs, 2)
        time.sleep(2)
        after = rss()
        for c in clients:
            c.send_signal(signal.SIGTERM)
        for c in clients:
            c.wait(60)
        results = [json.loads(o.read_text()) for o in outs]

        check = create_engine(url)
        with check.connect() as conn:
            ids = {key: cid for cid, key in conn.execute(text("SELECT id, provider_key FROM calls"))}
            dead = conn.execute(text("SELECT count(*), min(reason) FROM dead_letters")).one()
        check.dispose()
        pops: list[float] = []
        missing = 0
        for res in results:
            for seen in res["seen"]:
                for sid, at in sent.items():
                    cid = ids.get(sid)
                    got = seen.get(str(cid)) if cid is not None else None
                    if got is None:
                        missing += 1
                    else:
                        pops.append((got - at) * 1000)
        stats = {k: sum(r["stats"][k] for r in results) for k in results[0]["stats"]}
        boards = sorted(x * 1000 for r in results for x in r["wallboard"])
        peak = [max(s[n] for s in samples) for n in range(len(webs))]
        wh = sorted(x * 1000 for x in webhook_lat)
        kinds = sorted(set(failures), key=failures.count, reverse=True)[:3]
        span = max(sent.values()) - min(sent.values()) if len(sent) > 1 else 0.0
        print(f"calls offered: {len(sent)} voice webhooks in {span:.1f} s ({(len(sent) - 1) / span if span else 0:.1f} calls/s)")
        print(f"webhooks: {len(wh)} posted, {len(failures)} failed ({', '.join(f'{k} ×{failures.count(k)}' for k in kinds)}); p50 {statistics.median(wh):.1f} ms, "
              f"p99 {pct(wh, 99):.1f} ms (load average {load_start:.1f} at the start)")
        if dead[0]:
            print(f"dead letters: {dead[0]}, e.g. {dead[1][:300]}")
        print(f"screens: {stats['connections']} connections ({stats['closed_by_server']} closed by the server, "
              f"{stats['errors']} errors, {stats['refused']} refused), {stats['events']} events, "
              f"{stats['resyncs']} resyncs, {stats['bytes'] / 2**20:.1f} MiB read")
        if stats["wallboard_pushed"]:
            print(f"wallboard figures pushed on the streams: {stats['wallboard_pushed']} received")
        if boards:
            print(f"wallboard.json: {stats['wallboard_ok']} answered, {stats['wallboard_failed']} failed; "
                  f"p50 {pct(boards, 50):.0f} ms, p99 {pct(boards, 99):.0f} ms")
        if pops:
            print(f"pop (voice webhook sent → first SSE event of the call on a screen): {len(pops)} pops, "
                  f"{missing} missing; p50 {pct(pops, 50):.1f} ms, p95 {pct(pops, 95):.1f} ms, "
                  f"p99 {pct(pops, 99):.1f} ms, max {max(pops):.1f} ms")
        print(f"CPU during the load ({wall:.0f} s, {os.cpu_count()} CPUs = {wall * (os.cpu_count() or 1):.0f} CPU-s): "
              + ", ".join(f"{k} {v:.1f} s ({v / wall * 100:.0f} %)" for k, v in cpu.items()))
        if args.profile:
            print(f"py-spy profiles (collapsed stacks, 100 Hz): {args.profile}")
        timeline = " ".join("/".join(f"{x:.0f}" for x in s) for s in samples[:: max(1, len(samples) // 12)])
        print(f"RSS every ~{max(1, len(samples) // 12)} s during the load (MB, per process): {timeline}")
        print(f"RSS: idle {', '.join(f'{x:.0f}' for x in idle)} → screens connected "
              f"{', '.join(f'{x:.0f}' for x in connected)} → peak under load {', '.join(f'{x:.0f}' for x in peak)} "
              f"→ 5 s after {', '.join(f'{x:.0f}' for x in after)} MB")
        if args.trace:
            print(f"memory dumps (objects by type, tracemalloc top sites): {dumps}")
        p99 = pct(pops, 99) if pops else float("inf")
        ok = max(peak) <= RSS_TARGET_MB and p99 <= P99_TARGET_MS and missing == 0 and not failures
        print(f"{'PASS' if ok else 'FAIL'}: peak RSS {max(peak):.0f} MB (target ≤ {RSS_TARGET_MB:g} per process), "
              f"pop p99 {p99:.1f} ms (≤ {P99_TARGET_MS:g}), {missing} pops missing, {len(failures)} webhooks failed")
        return 0 if ok else 1
    finally:
        for proc in clients + webs:
            if proc.poll() is None:
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
