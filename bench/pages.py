"""Every page's server time with a realistic amount of data (issue #13): 10,000 calls, 50,000 services.

    .venv/bin/python bench/pages.py                         # 10,000 calls, 50,000 services, 20 requests a page
    .venv/bin/python bench/pages.py --calls 2000 --services 5000 --requests 5   # quick look
    .venv/bin/python bench/pages.py --explain               # also EXPLAIN ANALYZE of each page's slowest statement

A scratch PostgreSQL database (created, migrated with the real migrations, dropped), loaded with:
``--calls`` calls over the last 30 days in two centres (a tenth of them today; 85 % answered with
a completed record: issues, notes encrypted at rest, caller numbers encrypted and hashed, a few
callers calling many times), ``--services`` directory services imported from an HSDS 3.0 package
(``bench/directory_bench.py``'s generator through the real importer), the daily logs of the last
week built, and people of every role.  Then, through the real application in process
(``TestClient``: the request's whole server side, no network), each page is asked ``--requests``
times by a signed-in user of the role that uses it, after one warm-up request; the table shows
p50/p95/max and the SQL statements per request (a SQLAlchemy event counts them: an N+1 shows as a
count growing with the rows shown).

Target: p95 ≤ 300 ms for every page.  Exits 1 when a page misses it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG_ADMIN_URL = os.environ.get("HOTLINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_P95_MS = 300.0
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
PASSWORD = "Correct-Horse-Battery-9"
ISSUES = ["dv.physical", "dv.psychological", "dv.sexual", "dv.economic", "gbv.rape", "gbv.sexual_harassment",
          "child_abuse.physical", "marriage_family.divorce", "mental_health.distress", "legal_info",
          "nc.silent", "nc.prank"]
SEXES = ["female", "female", "female", "male", "other", "unknown"]
AGES = ["under_16", "16_17", "18_29", "30_59", "60_plus", "unknown"]
ROLES = ["survivor", "survivor", "family_member", "neighbour", "official", "other"]
OUTCOMES = ["resolved", "referred", "follow_up", "caller_declined", "call_dropped"]


def seed_people(db, centres: list) -> dict[str, int]:
    from hotline.auth import service as auth

    pw = auth.hash_password(PASSWORD)
    ids = {}
    for centre in centres:
        for n in range(1, 13):
            user = auth.create_user(db, username=f"tvv{n}-{centre.code}", password=PASSWORD, role="counsellor",
                                    centre_id=centre.id, display_name=f"Tư vấn viên {n}")
            user.password_hash = pw
            db.flush()
            ids[user.username] = user.id
    for name, role, centre in (("gs1", "supervisor", centres[0]), ("admin1", "administrator", centres[0])):
        user = auth.create_user(db, username=name, password=PASSWORD, role=role, centre_id=centre.id,
                                display_name=name.upper())
        user.password_hash = pw
        db.flush()
        ids[name] = user.id
    return ids


def seed_calls(db, centres: list, people: dict[str, int], n: int) -> None:
    """``n`` calls over 30 days ending now, a tenth today, with records; ORM inserts so numbers and
    notes are encrypted and hashed as the application does."""
    from sqlalchemy import insert, select

    from hotline.calls.models import Call, CallRecord, CallRecordIssue
    from hotline.phone import parse_caller
    from hotline.security.crypto import hash_keyring

    rnd = random.Random(13)
    now = datetime.now(timezone.utc)
    keyring = hash_keyring()
    regulars = [f"+849{rnd.randrange(10**7, 10**8)}" for _ in range(40)]
    rows = []
    for i in range(n):
        centre = centres[0] if i % 3 else centres[1]
        ago = timedelta(seconds=rnd.randrange(0, 86400)) if i % 10 == 0 else timedelta(seconds=rnd.randrange(0, 30 * 86400))
        at = now - ago
        status = rnd.choices(["completed", "missed", "abandoned"], [85, 9, 6])[0]
        number = rnd.choice(regulars) if rnd.random() < 0.2 else f"+849{rnd.randrange(10**7, 10**8)}"
        caller = parse_caller(number)
        wait = rnd.randrange(0, 180)
        talk = rnd.randrange(30, 1800) if status == "completed" else None
        counsellor = people[f"tvv{rnd.randrange(1, 13)}-{centre.code}"] if status == "completed" else None
        rows.append({"provider": "asterisk", "provider_key": f"p{i}", "centre_id": centre.id, "unrouted": False,
                     "caller_id_status": "present", "caller_number": caller.normalized,
                     "caller_masked": caller.masked, "number_hash": keyring.hash(caller.normalized or ""),
                     "received_at": at, "queued_at": at,
                     "answered_at": at + timedelta(seconds=wait) if talk else None,
                     "ended_at": min(now, at + timedelta(seconds=wait + (talk or 0))), "queue_wait_seconds": wait,
                     "talk_seconds": talk, "abandoned": status == "abandoned", "status": status, "source": "bench",
                     "facts": {}, "counsellor_id": counsellor, "answered_by": None, "created_at": at,
                     "updated_at": at})
    for chunk in range(0, n, 2000):
        db.execute(insert(Call), rows[chunk:chunk + 2000])
    done = db.execute(select(Call.id, Call.centre_id, Call.counsellor_id, Call.ended_at)
                      .where(Call.status == "completed")).all()
    records = []
    for cid, centre_id, counsellor, ended in done:
        primary = rnd.choice(ISSUES)
        records.append({"call_id": cid, "centre_id": centre_id, "counsellor_id": counsellor, "channel": "telephony",
                        "state": "completed", "version": 2, "caller_role": rnd.choice(ROLES),
                        "caller_sex": rnd.choice(SEXES), "caller_age_group": rnd.choice(AGES),
                        "province_code": f"{rnd.randrange(1, 64):02d}", "consent_record": True,
                        "consent_statistics": rnd.random() > 0.05, "consent_callback": rnd.random() < 0.3,
                        "consent_referral": False, "consent_referral_scope": {}, "primary_issue": primary,
                        "service_level": 0 if primary.startswith("nc") else rnd.randrange(1, 7),
                        "outcome": "non_counselling" if primary.startswith("nc") else rnd.choice(OUTCOMES),
                        "follow_up_needed": False,
                        "notes": "Người gọi kể về bạo lực trong gia đình; đã hướng dẫn số khẩn cấp và địa chỉ tin cậy.",
                        "references_given": [], "created_at": ended, "updated_at": ended, "completed_at": ended})
    for chunk in range(0, len(records), 2000):
        db.execute(insert(CallRecord), records[chunk:chunk + 2000])
    rec = db.execute(select(CallRecord.id, CallRecord.primary_issue)).all()
    issues = [{"record_id": rid, "code": code, "is_primary": True} for rid, code in rec]
    issues += [{"record_id": rid, "code": "legal_info", "is_primary": False} for rid, code in rec
               if code != "legal_info" and rnd.random() < 0.3]
    db.execute(insert(CallRecordIssue), issues)
    db.commit()


def seed(url: str, data_dir: str, calls: int, services: int) -> dict[str, object]:
    os.environ.update({"HOTLINE_DATABASE_URL": url, "HOTLINE_REDIS_URL": "", "HOTLINE_ENV_FILE": os.devnull,
                       "HOTLINE_DATA_DIR": data_dir, "HOTLINE_ENVIRONMENT": "test",
                       "HOTLINE_SECRET_KEY": "bench-secret-key", "HOTLINE_LOG_LEVEL": "WARNING"})
    from sqlalchemy import select, text

    from hotline import migrate
    from hotline.calls.models import Call, CallRecord
    from hotline.centres import service as centres_service
    from hotline.db import session_scope
    from hotline.settings import get_settings, reset_settings

    reset_settings()
    migrate.upgrade(url)
    settings = get_settings()
    t0 = time.perf_counter()
    with session_scope() as db:
        main_centre = centres_service.ensure_default_centre(db, code=settings.default_centre_code,
                                                            name=settings.default_centre_name, timezone="Asia/Ho_Chi_Minh")
        other = centres_service.create_centre(db, code="mien-nam", name="Trung tâm miền Nam")
        centres_service.add_line(db, centre=main_centre, provider="asterisk", kind="queue", identifier="hotline",
                                 label="Đường dây nóng")
        for centre in (main_centre, other):  # the centres have been taking calls for a year
            centre.created_at = datetime.now(timezone.utc) - timedelta(days=365)
        people = seed_people(db, [main_centre, other])
        db.commit()
        seed_calls(db, [main_centre, other], people, calls)
        centre_ids = (main_centre.id, other.id)
    print(f"seeded {calls:,} calls with records in {time.perf_counter() - t0:.1f} s")
    if services:
        t0 = time.perf_counter()
        from directory_bench import make_hsds

        from directory import importers

        folder = Path(data_dir) / "hsds"
        make_hsds(folder, services)
        with session_scope() as db:
            report = importers.import_path(db, path=folder / "datapackage.json")
            db.commit()
        print(f"imported {report.created:,} services in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    from daily_log import service as daily
    from hotline.centres.models import Centre

    with session_scope() as db:
        for cid in centre_ids:
            centre = db.get(Centre, cid)
            today = daily.local_today(centre)
            for back in range(1, 8):
                daily.build_day(db, centre=centre, day=today - timedelta(days=back), by="bench")
            db.commit()
        db.execute(text("ANALYZE"))
        db.commit()
        record_id = db.scalar(select(CallRecord.id).where(CallRecord.centre_id == centre_ids[0])
                              .order_by(CallRecord.id.desc()).limit(1))
        call = db.scalar(select(CallRecord.call_id).where(CallRecord.id == record_id))
        number_hash = db.scalar(select(Call.number_hash).where(Call.id == call))
        regular = db.scalar(select(CallRecord.id).join(Call, Call.id == CallRecord.call_id)
                            .where(Call.number_hash.in_(
                                select(Call.number_hash).group_by(Call.number_hash)
                                .having(text("count(*) > 20")).scalar_subquery()),
                                CallRecord.centre_id == centre_ids[0]).limit(1))
        code = db.get(Centre, centre_ids[0]).code
        day = (daily.local_today(db.get(Centre, centre_ids[0])) - timedelta(days=1)).isoformat()
    print(f"built 14 daily logs in {time.perf_counter() - t0:.1f} s")
    del number_hash
    return {"record": record_id, "call": call, "regular_record": regular or record_id, "centre_code": code, "day": day}


def pages(ids: dict[str, object]) -> list[tuple[str, str]]:
    r, rr, c = ids["record"], ids["regular_record"], ids["call"]
    day = f"/daily-log/{ids['centre_code']}/{ids['day']}"
    return [
        ("counsellor", "/"), ("counsellor", "/live"), ("counsellor", "/calls"), ("counsellor", "/records"),
        ("counsellor", f"/records/{r}"), ("counsellor", f"/records/{rr}"), ("counsellor", f"/records/{rr}/history"),
        ("counsellor", "/records/new"), ("supervisor", f"/live/calls/{c}/pop"),
        ("counsellor", "/directory?q=nh%C3%A0+t%E1%BA%A1m+l%C3%A1nh+kon+tum"), ("counsellor", "/directory?q=cong+an"),
        ("counsellor", "/directory/panel?q=tro+giup+phap+ly"), ("counsellor", "/legal?q=b%E1%BA%A1o+l%E1%BB%B1c"),
        ("counsellor", "/referrals"), ("counsellor", "/callbacks"), ("counsellor", "/callbacks/follow-ups"),
        ("counsellor", "/notifications"), ("counsellor", "/account"),
        ("supervisor", "/"), ("supervisor", "/live"), ("supervisor", "/live/wallboard"),
        ("supervisor", "/live/wallboard.json"), ("supervisor", "/calls"), ("supervisor", "/calls?page=5"),
        ("supervisor", "/records"), ("supervisor", f"/records/{rr}"), ("supervisor", "/daily-log"),
        ("supervisor", day), ("supervisor", "/reports"), ("supervisor", "/blocking"), ("supervisor", "/callbacks"),
        ("supervisor", "/referrals"), ("administrator", "/admin/agents"),
        ("administrator", "/"), ("administrator", "/calls"), ("administrator", "/admin/users"),
        ("administrator", "/admin/audit"), ("administrator", "/admin/retention"), ("administrator", "/admin/lines"),
        ("administrator", "/directory/admin"), ("administrator", "/directory/admin/stale"),
        ("administrator", "/directory/admin/history"), ("administrator", "/legal/admin"),
        ("administrator", "/referrals/admin/partners"), ("administrator", "/daily-log/failures"),
        ("administrator", "/reports"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--services", type=int, default=50_000)
    ap.add_argument("--requests", type=int, default=20, help="timed requests per page (after one warm-up)")
    ap.add_argument("--only", default="", help="only pages whose path contains this")
    args = ap.parse_args()

    from sqlalchemy import create_engine, event, text

    name = f"hotline_bench_pages_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    data_dir = tempfile.mkdtemp(prefix="hotline-bench-pages-")
    try:
        ids = seed(url, data_dir, args.calls, args.services)
        from fastapi.testclient import TestClient

        from hotline.app import create_app
        from hotline.auth import service as auth
        from hotline.auth.deps import SESSION_COOKIE
        from hotline.db import get_engine, session_scope

        statements = [0]
        event.listen(get_engine(), "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
        users = {"counsellor": "tvv1-" + str(ids["centre_code"]), "supervisor": "gs1", "administrator": "admin1"}
        cookies = {}
        with session_scope() as db:
            for role, username in users.items():
                cookies[role] = auth.start_session(db, user=auth.require_user(db, username=username)).cookie_value
        print(f"PostgreSQL, in-process TestClient, {args.requests} requests a page after one warm-up; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"{'role':<14} {'page':<52} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'SQL/req':>8}")
        missed = []
        with TestClient(create_app()) as client:
            for role, path in pages(ids):
                if args.only and args.only not in path:
                    continue
                client.cookies.set(SESSION_COOKIE, cookies[role])
                first = client.get(path, follow_redirects=False)
                times = []
                statements[0] = 0
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    resp = client.get(path, follow_redirects=False)
                    times.append((time.perf_counter() - t0) * 1000)
                ms = sorted(times)
                p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
                flag = "  MISSED" if p95 > TARGET_P95_MS else ""
                if flag:
                    missed.append(f"{role} {path}")
                print(f"{role:<14} {path[:52]:<52} {resp.status_code:>6} {statistics.median(ms):8.1f} {p95:8.1f} "
                      f"{ms[-1]:8.1f} {statements[0] / args.requests:8.1f}{flag}"
                      + ("" if first.status_code == resp.status_code else f"  (first answer {first.status_code})"))
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        if missed:
            print(f"FAIL: p95 > {TARGET_P95_MS:g} ms: {', '.join(missed)}")
            return 1
        print(f"PASS: every page p95 ≤ {TARGET_P95_MS:g} ms")
        return 0
    finally:
        try:
            from hotline.db import get_engine

            get_engine().dispose()
        except Exception:  # noqa: BLE001 - the scratch database is dropped with FORCE anyway
            pass
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
