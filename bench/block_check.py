"""The block check on the voice path (issue #17): Twilio's voice webhook and Asterisk's lookup.

    .venv/bin/python bench/block_check.py                  # 1,000 active blocks, 400 requests of each kind
    .venv/bin/python bench/block_check.py --blocks 20000 --requests 1000 --rate 50

A real uvicorn server (``hotline.app:create_app``) on a scratch PostgreSQL database (created and
dropped), with ``--blocks`` active blocks made through ``blocking.service.add_block`` (hashed
numbers, audited) plus as many lifted and expired ones.  Then, paced at ``--rate`` requests a
second over keep-alive connections (calls arrive one by one, not in a burst):

* ``GET /api/blocking/check?number=…&call=…`` with the API token, as the Asterisk dialplan asks
  (``CURL`` with a short timeout, failing open): numbers not blocked, then blocked ones (answered
  from the web process's copy of the active blocks; the blocked call goes to the recorder's
  journal on disk before the answer and is written to the database after it by the recorder's
  thread, whose CPU counts in the server CPU below);
* ``POST /webhooks/twilio/voice`` signed as Twilio signs it: callers not blocked (the line's route
  looked up, the call's event written to an in-flight file, TwiML enqueues the caller, the event
  committed just after the answer), then blocked callers (the same, checked against the copy of the
  blocks, journalled by the recorder, TwiML with the emergency numbers).

Prints p50/p95/p99/max per kind and the server's CPU per request (``/proc``: every thread of the
uvicorn process, the recorder's and the refresher's included; it grows with the machine's load, as
caches and the GIL are shared).  Target: p99 ≤ 20 ms for each kind, on an idle machine.

``--breakdown`` then runs the same four kinds in this process (the app called through ASGI, no
HTTP server) with each stage's CPU measured on the thread that does it (``time.thread_time``):
signature and form, the line's route (voice thread), the block check, the store (batcher thread),
TwiML, the recorder's write, and the rest of the web stack.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from twilio_status import Connection, call_params, cpu_seconds, free_port, signed  # noqa: E402 - bench helpers

PG_ADMIN_URL = os.environ.get("HOTLINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOKEN = "bench-twilio-auth-token"
API_TOKEN = "bench-api-token-0123456789abcdef"
PUBLIC = "https://hotline.bench.invalid"
TARGET_P99_MS = 20.0


def number(i: int) -> str:
    return f"+8498{i:07d}"


def seed(url: str, data_dir: str, blocks: int) -> None:
    os.environ.update({"HOTLINE_DATABASE_URL": url, "HOTLINE_REDIS_URL": "", "HOTLINE_ENV_FILE": os.devnull,
                       "HOTLINE_DATA_DIR": data_dir, "HOTLINE_ENVIRONMENT": "test",
                       "HOTLINE_SECRET_KEY": "bench-secret-key"})
    from sqlalchemy import update

    from blocking import service as blocking
    from blocking.models import NumberBlock
    from hotline import migrate
    from hotline.centres import service as centres
    from hotline.db import session_scope, utcnow
    from hotline.settings import get_settings, reset_settings

    reset_settings()
    migrate.upgrade(url)
    settings = get_settings()
    with session_scope() as db:
        centre = centres.ensure_default_centre(db, code=settings.default_centre_code,
                                               name=settings.default_centre_name, timezone="Asia/Ho_Chi_Minh")
        centres.add_line(db, centre=centre, provider="twilio", kind="number", identifier="+842873001234",
                         label="Đường dây nóng")
        actor = blocking.Actor(id=0, username="bench", role="supervisor", centre_id=centre.id)
        ended = []
        for i in range(blocks * 2):  # the first half stay active; the second half are lifted or expired
            block = blocking.add_block(db, actor=actor, number=number(i), duration="30d", reason="bench")
            if i >= blocks:
                ended.append(block.id)
            if i % 500 == 499:
                db.commit()
        db.flush()
        half = len(ended) // 2
        db.execute(update(NumberBlock).where(NumberBlock.id.in_(ended[:half])).values(lifted_at=utcnow(),
                                                                                        lifted_by="bench"))
        db.execute(update(NumberBlock).where(NumberBlock.id.in_(ended[half:])).values(expires_at=utcnow()))
        db.commit()


async def paced(port: int, requests: list[tuple[str, str, bytes, dict[str, str]]], rate: float,
                expect: bytes) -> list[float]:
    """One request every 1/rate s, each on a free keep-alive connection; returns latencies (s)."""
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(8):
        free.put_nowait(Connection("127.0.0.1", port))
    latencies: list[float] = []
    problems: list[str] = []

    async def one(method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        conn = await free.get()
        try:
            started = time.perf_counter()
            if method == "GET":
                status, text = await get(conn, path, headers)
            else:
                status, text = await conn.post(path, body, headers)
            latencies.append(time.perf_counter() - started)
            if status != 200 or expect not in text:
                problems.append(f"{status} {text[:120]!r}")
        finally:
            free.put_nowait(conn)

    start = time.perf_counter()
    tasks = []
    for n, req in enumerate(requests):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(*req)))
    await asyncio.gather(*tasks)
    while not free.empty():
        await free.get_nowait().close()
    if problems:
        raise SystemExit(f"{len(problems)} unexpected answers, first: {problems[0]}")
    return latencies


async def get(conn: Connection, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    if conn.writer is None:
        conn.reader, conn.writer = await asyncio.open_connection(conn.host, conn.port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    conn.writer.write(f"GET {path} HTTP/1.1\r\nHost: {conn.host}:{conn.port}\r\n{head}\r\n".encode())
    assert conn.reader is not None
    raw = await conn.reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
    return status, await conn.reader.readexactly(length)


def report(name: str, latencies: list[float], cpu: float) -> float:
    import statistics

    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    print(f"{name:<34} n={len(ms):>5}  p50={q[49]:6.1f}  p95={q[94]:6.1f}  p99={q[98]:6.1f}  max={ms[-1]:7.1f} ms"
          f"  server CPU={cpu * 1000:5.2f} ms/req")
    return q[98]


STAGES = ("read: body, form, signature", "route lookup (voice thread)", "block check", "store (batcher thread)",
          "TwiML", "recorder write (its thread)")


def breakdown(url: str, data_dir: str, blocks: int, n: int) -> None:
    """Each stage's CPU per request, measured on the thread that runs it, with the app in this process."""
    import statistics

    os.environ.update({"HOTLINE_DATABASE_URL": url, "HOTLINE_TWILIO_AUTH_TOKEN": TOKEN, "HOTLINE_PUBLIC_BASE_URL": PUBLIC,
                       "HOTLINE_API_TOKEN": API_TOKEN, "HOTLINE_DATA_DIR": data_dir, "HOTLINE_LOG_LEVEL": "WARNING"})
    import httpx

    from blocking import recorder as recorder_module
    from blocking import service as blocking
    from hotline.app import create_app
    from hotline.db import reset_engine
    from hotline.settings import reset_settings
    from webhooks.twilio import batcher as batcher_module
    from webhooks.twilio import views

    reset_settings()
    reset_engine()
    spent: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    def timed(stage: str, fn):  # type: ignore[no-untyped-def]
        def run(*args, **kwargs):  # type: ignore[no-untyped-def]
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage] += time.thread_time() - started
        return run

    def timed_async(stage: str, fn):  # type: ignore[no-untyped-def]
        async def run(*args, **kwargs):  # type: ignore[no-untyped-def]
            started = time.thread_time()  # the coroutine's own steps on the loop (it does not wait here)
            try:
                return await fn(*args, **kwargs)
            finally:
                spent[stage] += time.thread_time() - started
        return run

    views._read = timed_async(STAGES[0], views._read)
    views._number_lookup = timed(STAGES[1], views._number_lookup)
    blocking.blocked_now = timed_async(STAGES[2], blocking.blocked_now)
    for shard in batcher_module.batcher.shards:
        shard._submit = timed(STAGES[3], shard._submit)
    views.voice_twiml = timed(STAGES[4], views.voice_twiml)
    views.blocked_twiml = timed(STAGES[4], views.blocked_twiml)
    views._twiml = timed(STAGES[4], views._twiml)
    recorder_module.apply = timed(STAGES[5], recorder_module.apply)
    app = create_app()
    auth = {"Authorization": f"Bearer {API_TOKEN}"}

    def voice(k: int, caller: str) -> tuple[str, bytes, dict[str, str]]:
        params = {**call_params(k), "From": caller, "Caller": caller, "CallStatus": "ringing"}
        return signed(PUBLIC, "/webhooks/twilio/voice", params)

    async def run() -> None:
        stops = [hook(app) for hook in app.state.startup_hooks]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            async def one(kind: str, k: int) -> None:
                i = k % blocks if kind.endswith("blocked") and "not" not in kind else 10 * blocks + 100_000 + k
                if kind.startswith("asterisk"):
                    answer = await client.get(f"/api/blocking/check?number={number(i)}&call=bd-{kind[:3]}-{k}",
                                              headers=auth)
                else:
                    path, body, headers = voice(7 * n + k + (n if "not" in kind else 0), number(i))
                    answer = await client.post(path, content=body, headers=headers)
                assert answer.status_code == 200, answer.text[:200]

            for k in range(30):  # warm-up
                await one("twilio voice webhook, not blocked", 10 * n + k)
                await one("asterisk lookup, not blocked", 10 * n + k)
            print(f"\nCPU per request by stage, in this process (ASGI, no HTTP server), n={n} each, "
                  f"load average {os.getloadavg()[0]:.1f}:")
            for kind in ("asterisk lookup, not blocked", "asterisk lookup, blocked",
                         "twilio voice webhook, not blocked", "twilio voice webhook, blocked"):
                for stage in STAGES:
                    spent[stage] = 0.0
                loop_cpu, process_cpu, walls = 0.0, 0.0, []
                for k in range(n):
                    t, p, w = time.thread_time(), time.process_time(), time.perf_counter()
                    await one(kind, k)
                    loop_cpu += time.thread_time() - t
                    walls.append(time.perf_counter() - w)
                    await asyncio.sleep(0.02)  # the recorder writes (after the answer, as in production)
                    process_cpu += time.process_time() - p
                on_loop = spent[STAGES[0]] + spent[STAGES[2]] + spent[STAGES[4]]
                parts = [f"{stage} {1000 * spent[stage] / n:.2f}" for stage in STAGES if spent[stage]]
                print(f"  {kind:<34} process {1000 * process_cpu / n:5.2f} ms (wall p50 "
                      f"{1000 * statistics.median(walls):.1f} ms): " + "; ".join(parts)
                      + f"; web stack and this client {1000 * (loop_cpu - on_loop) / n:.2f}")
        for stop in stops:
            if stop is not None:
                stop()

    asyncio.run(run())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=1000, help="active blocks (as many again lifted or expired)")
    ap.add_argument("--requests", type=int, default=400, help="requests of each kind")
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second")
    ap.add_argument("--breakdown", action="store_true",
                    help="then each stage's CPU per request, measured in this process (see above)")
    ap.add_argument("--py-spy", metavar="DIR", default="",
                    help="sample the server with py-spy (pip install py-spy) during each kind: DIR/<kind>.folded")
    args = ap.parse_args()

    from sqlalchemy import create_engine, text

    name = f"hotline_bench_block_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    data_dir = tempfile.mkdtemp(prefix="hotline-bench-block-")
    proc = None
    try:
        started = time.perf_counter()
        seed(url, data_dir, args.blocks)
        print(f"{args.blocks} active blocks (+{args.blocks} lifted or expired) made in {time.perf_counter() - started:.1f} s")
        port = free_port()
        env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_TWILIO_AUTH_TOKEN": TOKEN,
               "HOTLINE_PUBLIC_BASE_URL": PUBLIC, "HOTLINE_SECRET_KEY": "bench-secret-key",
               "HOTLINE_API_TOKEN": API_TOKEN, "HOTLINE_DATA_DIR": data_dir, "HOTLINE_ENVIRONMENT": "test",
               "HOTLINE_REDIS_URL": "", "HOTLINE_LOG_LEVEL": "WARNING", "HOTLINE_ENV_FILE": os.devnull,
               "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "hotline.app:create_app", "--factory", "--host",
                                 "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                                env=env, cwd=ROOT)
        import httpx

        deadline = time.time() + 120
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("uvicorn did not start") from None
                time.sleep(0.2)

        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        n = args.requests
        free_numbers = range(10 * args.blocks, 10 * args.blocks + n)  # never blocked
        blocked = [i % args.blocks for i in range(n)]
        kinds = {
            "asterisk lookup, not blocked": ([("GET", f"/api/blocking/check?number={number(i)}&call=ast-{i}", b"", auth)
                                              for i in free_numbers], b"blocked=0"),
            "asterisk lookup, blocked": ([("GET", f"/api/blocking/check?number={number(i)}&call=astb-{k}", b"", auth)
                                          for k, i in enumerate(blocked)], b"blocked=1"),
        }

        def voice(k: int, caller: str) -> tuple[str, str, bytes, dict[str, str]]:
            params = {**call_params(k), "From": caller, "Caller": caller, "CallStatus": "ringing"}
            return ("POST", *signed(PUBLIC, "/webhooks/twilio/voice", params))

        kinds["twilio voice webhook, not blocked"] = ([voice(k, number(i)) for k, i in enumerate(free_numbers)],
                                                      b"<Enqueue")
        kinds["twilio voice webhook, blocked"] = ([voice(n + k, number(i)) for k, i in enumerate(blocked)], b"<Gather")
        # warm-up: imports, connection pools, caches
        asyncio.run(paced(port, [("GET", f"/api/blocking/check?number={number(10**6 + i)}&call=w{i}", b"", auth)
                                 for i in range(40)], 100, b"blocked=0"))
        asyncio.run(paced(port, [voice(5 * n + i, number(10**6 + i)) for i in range(40)], 100, b"<Enqueue"))
        print(f"paced at {args.rate:g} requests/s; PostgreSQL, one uvicorn worker, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")
        worst = 0.0
        for kind, (requests, expect) in kinds.items():
            spy = None
            if args.py_spy:
                Path(args.py_spy).mkdir(parents=True, exist_ok=True)
                out = Path(args.py_spy) / (kind.replace(" ", "_").replace(",", "") + ".folded")
                spy = subprocess.Popen(["py-spy", "record", "--pid", str(proc.pid), "--rate", "1000", "--format",
                                        "raw", "--threads", "--nonblocking", "-o", str(out)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            before = cpu_seconds(proc.pid)
            latencies = asyncio.run(paced(port, requests, args.rate, expect))
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its file and ends
                spy.wait(30)
            worst = max(worst, report(kind, latencies, (cpu_seconds(proc.pid) - before) / len(requests)))
        print(f"(load average {os.getloadavg()[0]:.1f} at the end)")
        if args.breakdown:
            proc.terminate()
            proc.wait(10)
            proc = None
            breakdown(url, data_dir, args.blocks, min(n, 200))
        verdict = "PASS" if worst <= TARGET_P99_MS else "FAIL"
        print(f"{verdict}: worst p99 {worst:.1f} ms (target ≤ {TARGET_P99_MS:g} ms for each kind, on an idle machine)")
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
