"""Accounts benchmark: sign-in, the per-request cost of a server-side session, the audit log.

    .venv/bin/python bench/auth_bench.py                        # SQLite and PostgreSQL
    .venv/bin/python bench/auth_bench.py --backend sqlite --audit-rows 20000

Measures through the real application (Starlette TestClient, in process):
  * sign-in (POST /login, argon2id verify + session row) p50/p95;
  * GET / signed in (cookie → session lookup → redirect) against GET / anonymous: the session cost;
  * audit.record() rate inside one transaction, and audit.search() p95 over --audit-rows entries.
Targets: sign-in p95 ≤ 250 ms; session cost p95 ≤ 10 ms; audit search p95 ≤ 50 ms.
Prints the figures; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "bench password 123"
TARGETS = {"login_p95_ms": 250.0, "session_cost_p95_ms": 10.0, "audit_search_p95_ms": 50.0}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def configure(url: str, data_dir: str) -> None:
    for key in list(os.environ):
        if key.startswith("HOTLINE_"):
            del os.environ[key]
    os.environ.update({"HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": data_dir, "HOTLINE_ENVIRONMENT": "test",
                       "HOTLINE_SECRET_KEY": "bench-secret", "HOTLINE_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
                       "HOTLINE_LOG_FORMAT": "console", "HOTLINE_LOG_LEVEL": "WARNING",
                       "HOTLINE_ENV_FILE": os.path.join(data_dir, "none.env")})
    from hotline.settings import reset_settings

    reset_settings()


def run(backend: str, url: str, data_dir: str, logins: int, requests: int, audit_rows: int) -> dict[str, float]:
    from fastapi.testclient import TestClient

    from hotline import migrate
    from hotline.app import create_app
    from hotline.audit import service as audit
    from hotline.db import session_scope
    from tests.helpers import create_user, csrf_from

    configure(url, data_dir)
    migrate.upgrade(url)
    users = [f"user{i}" for i in range(logins)]
    for name in users:
        create_user(name, PASSWORD, "counsellor")
    figures: dict[str, float] = {}
    with TestClient(create_app()) as client:
        login_ms = []
        for name in users:  # each sign-in from a fresh browser: fetch the form, then time the POST
            client.cookies.clear()
            token = csrf_from(client.get("/login").text)
            t0 = time.perf_counter()
            r = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token},
                            follow_redirects=False)
            login_ms.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 303, f"sign-in failed: {r.status_code}"
        figures["login_p50_ms"], figures["login_p95_ms"] = pct(login_ms, .5), pct(login_ms, .95)
        assert client.get("/", follow_redirects=False).headers["location"] == "/live"  # a counsellor lands on the live screen
        signed_in = timed(lambda: client.get("/", follow_redirects=False), requests)
        cookie = client.cookies.pop("hotline_session")
        anonymous = timed(lambda: client.get("/", follow_redirects=False), requests)
        client.cookies.set("hotline_session", cookie)
        figures["signed_in_p50_ms"], figures["signed_in_p95_ms"] = pct(signed_in, .5), pct(signed_in, .95)
        figures["anonymous_p50_ms"], figures["anonymous_p95_ms"] = pct(anonymous, .5), pct(anonymous, .95)
        # paired difference, request by request, so that noise on a shared machine cancels out
        cost = [a - b for a, b in zip(sorted(signed_in), sorted(anonymous), strict=False)]
        figures["session_cost_p50_ms"], figures["session_cost_p95_ms"] = pct(cost, .5), pct(cost, .95)

    rnd = random.Random(5)
    actions = ["login.success", "record.view", "record.edit", "number.reveal", "export.csv", "logout"]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)

    class Actor:
        def __init__(self, i: int) -> None:
            self.id, self.username, self.role = i, f"user{i}", "counsellor"

    actors = [Actor(i) for i in range(50)]
    timed_rows = min(2000, audit_rows)
    t = time.perf_counter()
    with session_scope() as db:  # record() as views call it: one flushed row at a time
        for i in range(timed_rows):
            entry = audit.record(db, actor=rnd.choice(actors), action=rnd.choice(actions), object_type="call_record",
                                 object_id=rnd.randint(1, audit_rows // 5), detail={"n": i})
            entry.at = start + timedelta(seconds=i * 600)
    figures["audit_record_per_s"] = timed_rows / (time.perf_counter() - t)
    from hotline.audit.models import AuditEntry

    with session_scope() as db:  # the rest in bulk, spread over the year
        db.execute(AuditEntry.__table__.insert(), [
            {"at": start + timedelta(seconds=i * 600), "actor_id": (a := rnd.choice(actors)).id,
             "actor_username": a.username, "actor_role": a.role, "action": rnd.choice(actions),
             "object_type": "call_record", "object_id": str(rnd.randint(1, audit_rows // 5)), "ip": "10.0.0.1",
             "user_agent": "bench", "detail": {"n": i}}
            for i in range(timed_rows, audit_rows)])

    queries = [
        dict(actor="user7"), dict(action="record.*"), dict(action="number.reveal", actor="user3"),
        dict(object_type="call_record", object_id="17"),
        dict(since=start + timedelta(days=30), until=start + timedelta(days=60)),
        dict(action="login.success", since=start + timedelta(days=100), until=start + timedelta(days=101)),
    ]
    search_ms: list[float] = []
    per_query: dict[str, list[float]] = {}
    with session_scope() as db:
        for q in queries:
            audit.search(db, limit=200, **q)  # warm
        for _ in range(10):
            for i, q in enumerate(queries):
                ms = timed(lambda q=q: audit.search(db, limit=200, **q), 1)
                search_ms += ms
                per_query.setdefault(f"audit_q{i + 1}_p50_ms", []).extend(ms)
    figures["audit_search_p50_ms"], figures["audit_search_p95_ms"] = pct(search_ms, .5), pct(search_ms, .95)
    figures.update({k: pct(v, .5) for k, v in per_query.items()})
    return figures


def pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--logins", type=int, default=40)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--audit-rows", type=int, default=50_000)
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    missed = False
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                url, drop = f"sqlite:///{tmp}/bench.sqlite3", None
            else:
                if not pg_reachable():
                    print("postgresql: not reachable on 127.0.0.1:5432, skipped")
                    continue
                from sqlalchemy import create_engine, text

                name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
                admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                url, drop = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", name
            try:
                figures = run(backend, url, tmp, args.logins, args.requests, args.audit_rows)
            finally:
                from hotline.db import reset_engine

                reset_engine()
                if drop:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))
                    admin.dispose()
        print(f"{backend}:")
        for key, value in figures.items():
            target = TARGETS.get(key)
            flag = ""
            if target is not None:
                ok = value <= target
                missed |= not ok
                flag = f"  (target ≤ {target:g}: {'ok' if ok else 'MISSED'})"
            print(f"  {key:<22} {value:10.1f}{flag}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
