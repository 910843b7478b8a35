"""Data protection costs on PostgreSQL: encryption on the ingest path, key rotation, retention.

    .venv/bin/python bench/security_bench.py [--calls 5000] [--events 30000] [--pg URL]

1. Ingest: the same synthetic AMI events (shaped like the Asterisk 22 captures) ingested
   in-process in batches of 500, with encryption and with encryption switched off, alternately
   (best of two each), so machine load hits both alike.  Reports the cost of encryption.
2. Rotation: ``--calls`` calls, each with its record (note, safe call-back time, referral text), a
   revision and two raw events, written under one key; then ``rotate_keys`` under a new key.
3. Retention: the same rows made older than both periods; ``run_retention`` removes text and numbers.

Creates a fresh database next to the given one and drops it at the end.
Targets: encryption costs at most 20 % of ingest CPU throughput; rotation ≥ 1,000 rows/s;
retention ≥ 200 calls/s (each: record, revision, call, two raw events).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402 - after the sys.path entry above

from hotline import migrate  # noqa: E402 - after the sys.path entry above

MAX_INGEST_COST = 0.20
MIN_ROTATION = 1_000  # rows/s
MIN_RETENTION = 200  # calls/s: a year-long backlog of 50,000 calls clears in about 4 minutes


def _ingest_rate(items: list, url: str, encrypt: bool) -> float:
    from hotline.ingest.service import ingest_and_commit
    from hotline.security import crypto

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE raw_events, dead_letters, call_keys, call_records, calls RESTART IDENTITY CASCADE"))
    engine.dispose()
    saved = crypto.Keyring.encrypt_text, crypto.Keyring.encrypt_bytes
    if not encrypt:
        crypto.Keyring.encrypt_text = lambda self, v: v
        crypto.Keyring.encrypt_bytes = lambda self, v: v
    try:
        started = time.process_time()
        for i in range(0, len(items), 500):
            ingest_and_commit(items[i:i + 500], publish=False)
        return len(items) / (time.process_time() - started)
    finally:
        crypto.Keyring.encrypt_text, crypto.Keyring.encrypt_bytes = saved


def _seed(n: int, at: datetime) -> int:
    from hotline.calls.models import Call, CallKey, CallRecord, RawEvent
    from hotline.centres.service import ensure_default_centre
    from hotline.db import session_scope
    from hotline.phone import mask
    from hotline.records.models import CallRecordRevision
    from hotline.security import crypto

    hashes = crypto.hash_keyring()
    with session_scope() as db:
        centre = ensure_default_centre(db, code="default", name="Bench", timezone="Asia/Ho_Chi_Minh").id
    rows = 0
    for start in range(0, n, 1000):
        with session_scope() as db:
            calls = []
            for i in range(start, min(n, start + 1000)):
                number = f"+849{i:08d}"[:12]
                key = f"bench-{i}"
                call = Call(provider="asterisk", provider_key=key, centre_id=centre, received_at=at, status="completed",
                            caller_raw="0" + number[3:], caller_number=number, caller_masked=mask(number),
                            caller_id_status="present", number_hash=hashes.hash(number), facts={}, source="bench")
                call.keys = [CallKey(provider="asterisk", key=key, kind="call")]
                calls.append(call)
                for j in range(2):
                    db.add(RawEvent(provider="asterisk", dedupe_key=f"{key}-{j}", event_type="Newchannel",
                                    provider_key=key, received_at=at,
                                    payload=f"Event: Newchannel\r\nChannel: PJSIP/trunk-{i:08x}\r\nCallerIDNum: "
                                            f"0{number[3:]}\r\nCallerIDName: 0{number[3:]}\r\nLinkedid: {key}\r\n"
                                            f"Uniqueid: {key}.{j}\r\nExten: 1800\r\nContext: from-trunk\r\n"))
            db.add_all(calls)
            db.flush()
            for call in calls:
                note = f"Chị gọi lúc chồng đi vắng, cần chỗ tạm lánh; cuộc gọi {call.id}. " * 4
                record = CallRecord(call_id=call.id, centre_id=centre, state="completed", notes=note,
                                    callback_safe_time="sau 18 giờ", created_at=at, primary_issue="dv.physical",
                                    consent_referral_scope={"to": "Nhà tạm lánh", "data": "địa chỉ nhà mẹ"})
                db.add(record)
                db.flush()
                db.add(CallRecordRevision(record_id=record.id, version=2, action="completed", at=at,
                                          changes={"notes": [None, note], "primary_issue": [None, "dv.physical"]}))
            rows += len(calls) * 8  # number, raw, 2 payloads, note, safe time, scope, revision
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5_000)
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--pg", default=os.environ.get("HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()

    name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    ok = True
    try:
        migrate.upgrade(url)
        from hotline.security import crypto

        old_key, new_key = crypto.generate_key(), crypto.generate_key()
        os.environ.update(HOTLINE_DATABASE_URL=url, HOTLINE_DATA_DIR=tempfile.mkdtemp(prefix="hotline-bench-"),
                          HOTLINE_ENV_FILE=os.devnull, HOTLINE_SECRET_KEY="bench-secret-key-" + "x" * 32,
                          HOTLINE_ENCRYPTION_KEYS=old_key, HOTLINE_LOG_LEVEL="WARNING")
        from hotline.settings import reset_settings

        reset_settings()

        # 1. ingest with and without encryption
        from hotline.ingest.providers.asterisk.simulator import synthetic_stream
        from hotline.ingest.providers.asterisk.translator import AmiMapper, parse_frame, split_frames

        mapper, now = AmiMapper("bench"), datetime.now(timezone.utc)
        items = [mapper.to_raw(raw, now, parse_frame(raw)) for block in synthetic_stream(args.events)
                 for raw in split_frames(block)[0]]
        runs = [(encrypt, _ingest_rate(items, url, encrypt)) for encrypt in (False, True, False, True)]
        plain = max(r for e, r in runs if not e)
        enc = max(r for e, r in runs if e)
        cost = 1 - enc / plain
        print(f"ingest ({len(items)} AMI events, batches of 500, in-process, CPU time of this process): "
              f"{plain:,.0f} events per CPU s without encryption, {enc:,.0f} with (cost {cost:.1%}); "
              f"target ≤ {MAX_INGEST_COST:.0%}: {'met' if cost <= MAX_INGEST_COST else 'MISSED'}")
        ok &= cost <= MAX_INGEST_COST

        # 2. rotation
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE raw_events, dead_letters, call_keys, call_record_revisions, call_records, "
                              "calls RESTART IDENTITY CASCADE"))
        engine.dispose()
        old_at = datetime.now(timezone.utc) - timedelta(days=800)
        started = time.perf_counter()
        rows = _seed(args.calls, old_at)
        print(f"seeded {args.calls} calls ({rows} encrypted values) in {time.perf_counter() - started:.1f} s")
        os.environ["HOTLINE_ENCRYPTION_KEYS"] = f"{new_key},{old_key}"
        reset_settings()
        from hotline.db import session_scope
        from hotline.security.service import key_status, rotate_keys, run_retention

        started = time.perf_counter()
        result = rotate_keys(batch_size=500)
        took = time.perf_counter() - started
        done = sum(result.reencrypted.values())
        with session_scope() as db:
            left = key_status(db).rows_left()
        rate = done / took
        print(f"rotation: {done} values re-encrypted in {took:.1f} s = {rate:,.0f} rows/s ({left} left); "
              f"target ≥ {MIN_ROTATION:,}: {'met' if rate >= MIN_ROTATION and not left else 'MISSED'}")
        ok &= rate >= MIN_ROTATION and not left

        # 3. retention
        started = time.perf_counter()
        report = run_retention()
        took = time.perf_counter() - started
        rate = len(report.calls) / took
        print(f"retention: {len(report.records)} records, {report.revisions} revisions, {len(report.calls)} calls, "
              f"{report.raw_events} raw events in {took:.1f} s = {rate:,.0f} calls/s; "
              f"target ≥ {MIN_RETENTION:,}: {'met' if rate >= MIN_RETENTION else 'MISSED'}")
        ok &= rate >= MIN_RETENTION and len(report.calls) == args.calls
        print(f"machine load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        from hotline.db import reset_engine

        reset_engine()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print("every target met" if ok else "targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
