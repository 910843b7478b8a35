"""From the counsellor's "call back" click to the AMI ``Originate`` at the PBX (issue #17: p95 ≤ 200 ms).

    .venv/bin/python bench/originate.py                          # 200 clicks idle, 200 under 20 calls/s
    .venv/bin/python bench/originate.py --clicks 200 --load-rate 20 --spacing 0.15

Everything real: a scratch PostgreSQL database (created and dropped), Redis (``HOTLINE_BENCH_REDIS``
or ``HOTLINE_TEST_REDIS``, else db 14) for the bus nudge, one web process (``hotline serve``:
uvicorn), one ``hotline ami`` listener process logged in to an AMI simulator that runs in this
process (``hotline.ingest.providers.asterisk.simulator``).  The missed calls reach the
database the way production's do: abandoned calls streamed by the simulator, ingested by the
listener; the worklist is built, the counsellor signs in through ``/login`` and claims the items.

One click = ``POST /callbacks/{id}/call`` with the session cookie and CSRF token, as the item
page's button sends it; measured from just before the request leaves to the moment the
simulator has read the ``Originate`` carrying that item's ref (``HOTLINE_CALLBACK=cb:{id}``), on
this process's clock.  The clicks are sequential, ``--spacing`` seconds apart (± 50 %), so each
is timed alone.  Two rounds: idle, then with background call load (the simulator streams
``--load-rate`` new calls a second, answered or abandoned, which the same listener ingests while it
sends the Originates).  The HTTP answer time (the web side alone) is printed too.

Exits 1 when the p95 of either round is over 200 ms.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from twilio_status import free_port  # noqa: E402 - bench helpers

from hotline.ingest.providers.asterisk.simulator import DemoPbx, synthetic_call  # noqa: E402

PG_ADMIN_URL = os.environ.get("HOTLINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HOTLINE_BENCH_REDIS") or os.environ.get("HOTLINE_TEST_REDIS") or "redis://127.0.0.1:6379/14"
PASSWORD = "Correct-Horse-Battery-9"
AMI_USER, AMI_SECRET = "bench", "bench-secret"
HOTLINE_NUMBER = "+842873001111"
P95_TARGET_MS = 200.0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


class BenchPbx(DemoPbx):
    """The demo PBX (calls into queue ``hotline`` while ``loading``) that notes when each
    ``Originate`` arrives, by the callback's ref."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.loading = False
        self.originated: dict[str, float] = {}
        self.arrived = threading.Condition()

    def start(self) -> BenchPbx:
        super().start()
        threading.Thread(target=self._load, name="bench-load", daemon=True).start()
        return self

    def place_call(self):  # type: ignore[no-untyped-def]  # DemoPbx's own pacing (one per 50 ms tick at most)
        return None  # the load thread places the calls, at the asked rate

    def _load(self) -> None:
        next_at = time.monotonic()
        while not self._stopped.is_set():
            if self.loading:
                DemoPbx.place_call(self)  # its frames go out on DemoPbx's 50 ms ticks
                next_at += self.interval
            else:
                next_at = time.monotonic() + self.interval
            self._stopped.wait(max(0.0, next_at - time.monotonic()))

    def _originate(self, conn, head, fields):  # type: ignore[no-untyped-def]  # AmiServer's
        at = time.perf_counter()
        ref = (fields.get("Variable") or "").split(",", 1)[0].removeprefix("HOTLINE_CALLBACK=")
        with self.arrived:
            self.originated[ref] = at
            self.arrived.notify_all()
        super()._originate(conn, head, fields)

    def wait_originate(self, ref: str, timeout: float = 30.0) -> float | None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while ref not in self.originated:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)
            return self.originated[ref]


def environment(url: str, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": str(data_dir),
            "HOTLINE_SECRET_KEY": "bench-secret-key", "HOTLINE_ENV_FILE": os.devnull, "HOTLINE_ENVIRONMENT": "test",
            "HOTLINE_REDIS_URL": REDIS_URL, "HOTLINE_LOG_LEVEL": "WARNING", "HOTLINE_CALLBACK_HOURS": "00:00-24:00",
            "HOTLINE_PBX_PENDING_SECONDS": "120", "PYTHONPATH": str(ROOT)}


def seed(url: str, data_dir: Path) -> None:
    os.environ.update({k: v for k, v in environment(url, data_dir).items() if k.startswith("HOTLINE_")})
    from hotline import migrate
    from hotline.auth import service as auth
    from hotline.centres import service as centres
    from hotline.db import session_scope
    from hotline.settings import get_settings, reset_settings

    reset_settings()
    migrate.upgrade(url)
    settings = get_settings()
    with session_scope() as db:
        centre = centres.ensure_default_centre(db, code=settings.default_centre_code,
                                               name=settings.default_centre_name, timezone="Asia/Ho_Chi_Minh")
        centres.add_line(db, centre=centre, provider="asterisk", kind="queue", identifier="hotline")
        centres.add_line(db, centre=centre, provider="asterisk", kind="number", identifier=HOTLINE_NUMBER)
        user = auth.create_user(db, username="tvv1", password=PASSWORD, role="counsellor", centre_id=centre.id,
                                display_name="TVV 1")
        centres.map_agent(db, centre=centre, provider="asterisk", identity="PJSIP/tvv1", user_id=user.id)


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the web process exited before it was ready")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the web process did not start within 120 s")


def missed_calls(server: BenchPbx, url: str, count: int) -> None:
    """``count`` abandoned calls from distinct mobiles, streamed by the PBX, ingested by the listener."""
    from sqlalchemy import create_engine, text

    start = time.time() - 600
    for n in range(count):
        call = synthetic_call(outcome="abandoned", caller=f"0912{n:06d}", wait=2, start=start + n)
        server.push(call.stream())
    engine = create_engine(url)
    deadline = time.time() + 180
    try:
        while time.time() < deadline:
            with engine.connect() as conn:
                done = conn.execute(text("SELECT count(*) FROM calls WHERE status IN ('abandoned', 'missed')")).scalar()
            if done >= count:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise SystemExit(f"only {done} of {count} missed calls reached the database within 180 s")


def clicks(base: str, server: BenchPbx, items: list[int], spacing: float, rng: random.Random
           ) -> tuple[list[float], list[float], list[float], list[str]]:
    """Claim each item, then time its "call back" click to the Originate; (click → Originate, HTTP
    answer, HTTP answer → Originate) in ms, and what went wrong."""
    import httpx

    from tests.helpers import csrf_from

    to_pbx: list[float] = []
    http: list[float] = []
    after: list[float] = []
    problems: list[str] = []
    with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as client:
        page = client.get("/login")
        signed_in = client.post("/login", data={"username": "tvv1", "password": PASSWORD,
                                                "csrf_token": csrf_from(page.text), "next": "/"})
        if signed_in.status_code != 200:
            raise SystemExit(f"sign-in failed: {signed_in.status_code}")
        token = csrf_from(client.get("/account").text)
        for item in items:
            claimed = client.post(f"/callbacks/{item}/claim", data={"csrf_token": token})
            if claimed.status_code != 200:
                problems.append(f"claim {claimed.status_code}")
                continue
            time.sleep(spacing * rng.uniform(0.5, 1.5))
            t0 = time.perf_counter()
            r = client.post(f"/callbacks/{item}/call", data={"csrf_token": token}, follow_redirects=False)
            answered = time.perf_counter()
            if r.status_code != 303:
                problems.append(f"call {r.status_code}")
                continue
            http.append((answered - t0) * 1000)
            at = server.wait_originate(f"cb:{item}")
            if at is None:
                problems.append("no Originate within 30 s")
                continue
            to_pbx.append((at - t0) * 1000)
            after.append((at - answered) * 1000)  # negative: the Originate went out before the answer arrived
    return to_pbx, http, after, problems


def report(label: str, to_pbx: list[float], http: list[float], after: list[float], problems: list[str]) -> bool:
    if not to_pbx:
        print(f"{label}: no click reached the PBX ({', '.join(sorted(set(problems)))})")
        return False
    p95 = pct(to_pbx, 95)
    print(f"{label}: {len(to_pbx)} clicks; click → Originate p50 {pct(to_pbx, 50):.1f} ms, p95 {p95:.1f} ms, "
          f"p99 {pct(to_pbx, 99):.1f} ms, max {max(to_pbx):.1f} ms (mean {statistics.mean(to_pbx):.1f}); "
          f"HTTP answer p50 {pct(http, 50):.1f} ms, p95 {pct(http, 95):.1f} ms; HTTP answer → Originate "
          f"p50 {pct(after, 50):.1f} ms, p95 {pct(after, 95):.1f} ms"
          + (f"; problems: {', '.join(f'{p} ×{problems.count(p)}' for p in sorted(set(problems)))}" if problems else ""))
    return p95 <= P95_TARGET_MS and not problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clicks", type=int, default=200, help="clicks per round")
    ap.add_argument("--load-rate", type=float, default=20.0, help="background calls per second in the second round")
    ap.add_argument("--spacing", type=float, default=0.15, help="seconds between two clicks (± 50 %%)")
    args = ap.parse_args()

    from sqlalchemy import create_engine, select, text

    name = f"hotline_bench_originate_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    work = Path(tempfile.mkdtemp(prefix="hotline-bench-originate-"))
    procs: list[subprocess.Popen[bytes]] = []
    server = BenchPbx(username=AMI_USER, secret=AMI_SECRET, interval=1.0 / max(args.load_rate, 0.1),
                      queue="hotline", agents=[f"Local/agent{n}@agents/n" for n in range(1, 13)], seed=17,
                      max_talk=30)
    rng = random.Random(17)
    try:
        seed(url, work / "data")
        server.start()
        env = environment(url, work / "data")
        port = free_port()
        procs.append(start([sys.executable, "-m", "hotline", "serve", "--host", "127.0.0.1", "--port", str(port)],
                           env))  # as production starts it (uvicorn, uvloop and httptools when installed)
        procs.append(start([sys.executable, "-m", "hotline", "ami"],
                           {**env, "HOTLINE_AMI_HOST": "127.0.0.1", "HOTLINE_AMI_PORT": str(server.port),
                            "HOTLINE_AMI_USERNAME": AMI_USER, "HOTLINE_AMI_SECRET": AMI_SECRET}))
        wait_ready(port, procs[0])
        if not server.wait_for_login(1, 60):
            raise SystemExit("the listener did not log in to the simulator within 60 s")
        total = 2 * args.clicks + 10
        missed_calls(server, url, total)

        from callbacks import service as callbacks
        from callbacks.models import CallbackItem
        from hotline.db import session_scope

        with session_scope() as db:
            made = callbacks.build(db)
        with session_scope() as db:
            items = list(db.scalars(select(CallbackItem.id).where(CallbackItem.status == "open")
                                    .order_by(CallbackItem.id)))
        if len(items) < total:
            raise SystemExit(f"only {len(items)} callback items were made ({made.as_dict()}); {total} needed")
        print(f"click → Originate: 1 web process (hotline serve), 1 hotline ami listener process, PostgreSQL, Redis "
              f"{REDIS_URL}; AMI simulator in the bench process; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}")
        clicks(f"http://127.0.0.1:{port}", server, items[:10], args.spacing, rng)  # warm-up, not counted
        idle = clicks(f"http://127.0.0.1:{port}", server, items[10:10 + args.clicks], args.spacing, rng)
        ok = report("idle", *idle)
        server.loading = True
        placed = server.calls_placed
        time.sleep(5)  # the load is on
        started = time.time()
        loaded = clicks(f"http://127.0.0.1:{port}", server, items[10 + args.clicks:total], args.spacing, rng)
        rate = (server.calls_placed - placed) / (time.time() - started + 5)
        server.loading = False
        ok = report(f"under load ({rate:.1f} new calls/s through the same listener, load average "
                    f"{os.getloadavg()[0]:.1f})", *loaded) and ok
        print(f"{'PASS' if ok else 'FAIL'}: target p95 ≤ {P95_TARGET_MS:g} ms in both rounds")
        return 0 if ok else 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
