"""Referral delivery benchmark: 1,000 referrals queued, two ``hotline worker`` processes (RQ on
Redis), one local webhook receiver that verifies every signature.

Target: all 1,000 delivered within 60 s, and the receiver never accepts one delivery twice.
A share of the first tries is answered with HTTP 503 (``--flaky``), so retries with backoff are
part of the run.

    .venv/bin/python bench/referral_bench.py                      # PostgreSQL if reachable, else SQLite
    .venv/bin/python bench/referral_bench.py --backend sqlite --count 1000 --flaky 50
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-webhook-secret-0123456789"
PG_ADMIN = os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def make_database(backend: str, tmp: Path) -> tuple[str, object]:
    from sqlalchemy import create_engine, text

    from hotline import migrate

    if backend == "postgresql":
        name = f"hotline_bench_referral_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"

        def drop() -> None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        url = f"sqlite:///{tmp / 'bench.sqlite3'}"

        def drop() -> None:
            pass
    migrate.upgrade(url)
    return url, drop


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default=None)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--flaky", type=int, default=50, help="how many first tries the receiver answers with 503")
    ap.add_argument("--redis", default=os.environ.get("HOTLINE_BENCH_REDIS", "redis://127.0.0.1:6379/2"))
    ap.add_argument("--target", type=float, default=60.0)
    ap.add_argument("--fork", action="store_true",
                    help="run `hotline worker --fork` (a forked child per job) to see the fork's cost")
    args = ap.parse_args()
    backend = args.backend or ("postgresql" if reachable(5432) else "sqlite")
    if not reachable(6379):
        print("Redis is not reachable on 127.0.0.1:6379: start it (the benchmark runs real RQ workers)")
        return 1

    tmp = Path(tempfile.mkdtemp(prefix="referral-bench-"))
    url, drop = make_database(backend, tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({"HOTLINE_ENV_FILE": str(tmp / "none.env"), "HOTLINE_ENVIRONMENT": "test", "HOTLINE_DATABASE_URL": url,
                "HOTLINE_DATA_DIR": str(tmp / "data"), "HOTLINE_SECRET_KEY": "bench-secret-key-not-for-production",
                "HOTLINE_REDIS_URL": args.redis, "HOTLINE_LOG_FORMAT": "console", "HOTLINE_LOG_LEVEL": "ERROR",
                "HOTLINE_PUBLIC_BASE_URL": "https://hotline.example.org", "HOTLINE_REFERRAL_RETRY_SECONDS": "1,2,4,8"})
    os.environ.update(env)
    for k in [k for k in os.environ if k.startswith("HOTLINE_") and k not in env]:
        del os.environ[k]

    import redis

    from hotline.settings import reset_settings

    reset_settings()
    redis.Redis.from_url(args.redis).flushdb()
    from tests.referral.peers import Receiver

    receiver = Receiver(SECRET).start()
    receiver.fail_next = args.flaky
    workers: list[subprocess.Popen[bytes]] = []
    try:
        print(f"backend {backend}, {args.count} referrals, {args.workers} workers"
              f"{' (a forked child per job)' if args.fork else ''}, {args.flaky} first tries answered 503")
        ids = setup(receiver.url, args.count)
        cmd = [sys.executable, "-m", "hotline", "--log-format", "console", "worker", *(["--fork"] if args.fork else [])]
        for _ in range(args.workers):
            workers.append(subprocess.Popen(cmd,
                                            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True))
        time.sleep(2.0)  # let the workers start and register
        from referral import jobs

        t0 = time.perf_counter()
        for delivery_id in ids:
            jobs.queue_delivery(delivery_id)
        t_queued = time.perf_counter() - t0
        delivered_at = None
        at_target = None
        while time.perf_counter() - t0 < args.target * 3:
            with receiver.lock:
                n = len(receiver.accepted)
            if at_target is None and time.perf_counter() - t0 >= args.target:
                at_target = n
            if n >= args.count:
                delivered_at = time.perf_counter() - t0
                break
            time.sleep(0.1)
        if at_target is None:
            at_target = args.count
        time.sleep(1.0)  # anything late (a duplicate) would arrive now
        states = db_states()
        with receiver.lock:
            dupes = sum(1 for c in receiver.accepted.values() if c > 1)
            accepted = len(receiver.accepted)
            requests = len(receiver.requests)
            bad = receiver.bad_signatures
        print(f"queued {args.count:,} jobs in {t_queued:.2f} s (the workers start on them at once)")
        print(f"delivered within {args.target:.0f} s: {at_target}/{args.count}")
        if delivered_at:
            print(f"all {accepted} delivered (receiver accepted) in {delivered_at:.1f} s "
                  f"-> {accepted / delivered_at:.1f} per second")
        else:
            print(f"not all delivered within {args.target * 3:.0f} s: {accepted}/{args.count}")
        print(f"receiver requests {requests} (503 answers {args.flaky}), bad signatures {bad}, "
              f"duplicate deliveries accepted {dupes}")
        print(f"referral states in the database: {states}")
        ok = delivered_at is not None and delivered_at <= args.target and dupes == 0 and bad == 0 \
            and states.get("delivered", 0) == args.count
        print(("target met" if ok else "TARGET MISSED") + f": all {args.count} delivered within {args.target:.0f} s, "
              "no duplicate accepted")
        return 0 if ok else 1
    finally:
        for w in workers:
            try:
                os.killpg(w.pid, signal.SIGTERM)
                w.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(w.pid, signal.SIGKILL)
        receiver.stop()
        from hotline.db import reset_engine

        reset_engine()
        drop()


def setup(receiver_url: str, count: int) -> list[str]:
    """A centre, a counsellor, a webhook shelter and ``count`` consented records, each referred."""
    from directory import service as directory
    from hotline.auth import service as accounts
    from hotline.auth.deps import Principal
    from hotline.calls.models import CallRecord
    from hotline.centres.service import ensure_default_centre
    from hotline.db import session_scope, utcnow
    from referral import service

    with session_scope() as db:
        centre = ensure_default_centre(db, code="default", name="Trung tâm", timezone="Asia/Ho_Chi_Minh")
        user = accounts.create_user(db, username="bench", password="bench-password-long-enough", role="counsellor",
                                    centre_id=centre.id)
        rec, _ = directory.validate({"id": "bench-shelter", "organization": "Bench shelter", "name": "Bench shelter",
                                     "service_type": "shelter", "province": "toàn quốc", "referral_method": "webhook",
                                     "referral_webhook_url": receiver_url, "referral_webhook_secret": SECRET})
        directory.save(db, record=rec, actor="bench", action="create")
        actor = Principal(id=user.id, username="bench", display_name="", role="counsellor", centre_id=centre.id,
                          language="vi")
        centre_id = centre.id
    ids: list[str] = []
    t0 = time.perf_counter()
    for start in range(0, count, 100):
        with session_scope() as db:
            for _ in range(min(100, count - start)):
                r = CallRecord(centre_id=centre_id, counsellor_id=actor.id, channel="walk_in", state="draft", version=1,
                               primary_issue="dv.physical", consent_referral=True, consent_callback=True,
                               callback_safe_method="sms", callback_safe_time="sau 20 giờ", created_at=utcnow())
                db.add(r)
                db.flush()
                [ref] = service.create(db, record_id=r.id, actor=actor, data={
                    "service_ids": ["bench-shelter"], "urgency": "urgent", "ask": "Tiếp nhận tạm lánh"})
                ids.append(ref.delivery.delivery_id)
    print(f"created {count} referrals (consent checked, content built, audited) in {time.perf_counter() - t0:.1f} s")
    return ids


def db_states() -> dict[str, int]:
    from datetime import datetime, timedelta, timezone

    from hotline.db import session_scope
    from referral import service

    now = datetime.now(timezone.utc)
    with session_scope() as db:
        return {k: v for k, v in service.counts_by_state(db, centre_id=None, since=now - timedelta(days=1),
                                                         until=now + timedelta(days=1)).items() if v}


if __name__ == "__main__":
    sys.exit(main())
