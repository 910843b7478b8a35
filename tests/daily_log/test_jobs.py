"""The schedule: the day that just ended is queued after each local midnight (also on daylight-
saving switch days), missed days are caught up when a worker starts, failures are recorded and
cleared, and the real worker on the real Redis builds the days."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from daily_log import jobs, service
from daily_log.models import DailyLog, DailyLogFailure
from hotline import queue
from hotline.centres import service as centres
from hotline.centres.models import Centre
from hotline.cli import build_parser
from hotline.db import session_scope
from hotline.settings import get_settings, reset_settings
from tests.daily_log.conftest import add_call, utc
from tests.helpers import wait_for

build_parser()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_leases():
    queue._local_leases.clear()
    yield
    queue._local_leases.clear()


def make_centre(code: str, tz: str, created: datetime) -> int:
    with session_scope() as db:
        c = centres.create_centre(db, code=code, name=f"Centre {code}", timezone=tz)
        c.created_at = created
        return c.id


def built_days(centre_id: int) -> list[date]:
    with session_scope() as db:
        return sorted(db.scalars(select(DailyLog.day).where(DailyLog.centre_id == centre_id)))




def test_catch_up_after_the_worker_was_down_three_days(env):
    cid = make_centre("qn", "Asia/Ho_Chi_Minh", utc(2026, 11, 10, 3))
    with freeze_time("2026-11-17 17:30:00", tick=True):  # 00:30 on the 18th in Hồ Chí Minh City
        assert jobs.queue_missing_days() == [(cid, f"2026-11-{d}") for d in range(10, 18)]
        wait_for(lambda: len(built_days(cid)) == 8, what='eight built days')
    add_call(cid, utc(2026, 11, 18, 5))  # the worker is down from here ...
    add_call(cid, utc(2026, 11, 20, 16, 59))  # 23:59 on the 20th
    queue._local_leases.clear()
    with freeze_time("2026-11-20 17:05:00", tick=True):  # ... until 00:05 on the 21st
        jobs.on_worker_start()
        wait_for(lambda: len(built_days(cid)) == 11, what='eleven built days')
        assert built_days(cid)[-3:] == [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
        with session_scope() as db:
            c = db.get(Centre, cid)
            assert service.get_log(db, centre=c, day=date(2026, 11, 18)).summary["totals"]["received"] == 1
            assert service.get_log(db, centre=c, day=date(2026, 11, 20)).summary["totals"]["received"] == 1
            assert service.get_log(db, centre=c, day=date(2026, 11, 9)) is None  # before the centre existed
        queue._local_leases.clear()
        assert jobs.queue_missing_days() == []  # nothing left, nothing rebuilt


def test_a_centre_in_a_daylight_saving_timezone_on_its_switch_days(env):
    cid = make_centre("berlin", "Europe/Berlin", utc(2026, 1, 1))
    # spring forward, 29 March 2026: 23 hours, from 23:00 UTC on the 28th to 22:00 UTC on the 29th
    add_call(cid, utc(2026, 3, 28, 22, 59))  # 23:59 CET on the 28th
    add_call(cid, utc(2026, 3, 28, 23, 0))  # 00:00 CET on the 29th
    add_call(cid, utc(2026, 3, 29, 1, 30))  # 03:30 CEST (02:00-03:00 never happened)
    add_call(cid, utc(2026, 3, 29, 21, 59))  # 23:59 CEST
    add_call(cid, utc(2026, 3, 29, 22, 0))  # 00:00 CEST on the 30th
    # fall back, 25 October 2026: 25 hours, 02:00-03:00 happens twice
    add_call(cid, utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    add_call(cid, utc(2026, 10, 25, 1, 30))  # 02:30 CET, an hour later
    add_call(cid, utc(2026, 10, 25, 22, 59))  # 23:59 CET
    add_call(cid, utc(2026, 10, 25, 23, 0))  # 00:00 on the 26th
    with freeze_time("2026-03-29 21:55:00"):  # 23:55 CEST: the 29th has not ended
        assert ("2026-03-29" not in [d for _c, d in jobs.queue_missing_days()])
    queue._local_leases.clear()
    with freeze_time("2026-03-29 22:01:00", tick=True):  # 00:01 CEST on the 30th: it has
        assert (cid, "2026-03-29") in jobs.queue_missing_days()
        wait_for(lambda: date(2026, 3, 29) in built_days(cid))
    with freeze_time("2026-10-27 12:00:00"):
        with session_scope() as db:
            c = db.get(Centre, cid)
            spring = service.build_day(db, centre=c, day=date(2026, 3, 29)).summary
            autumn = service.build_day(db, centre=c, day=date(2026, 10, 25)).summary
    assert spring["window"]["hours"] == 23 and spring["totals"]["received"] == 3
    assert [x["time"] for x in spring["calls"]] == ["00:00", "03:30", "23:59"]
    assert autumn["window"]["hours"] == 25 and autumn["totals"]["received"] == 3
    assert [x["time"] for x in autumn["calls"]] == ["02:30", "02:30", "23:59"]


def test_a_failed_build_is_recorded_and_cleared_by_the_next_success(env):
    cid = make_centre("bad", "Asia/Ho_Chi_Minh", utc(2026, 1, 1))
    with session_scope() as db:
        db.get(Centre, cid).timezone = "Mars/Olympus_Mons"
    for _ in range(2):
        with pytest.raises(Exception, match="Mars/Olympus_Mons"):
            jobs.build_day_job(cid, "2026-11-20")
    with session_scope() as db:
        failure = db.scalar(select(DailyLogFailure))
        assert (failure.attempts, failure.resolved_at) == (2, None) and "Mars/Olympus_Mons" in failure.reason
        assert service.open_failures(db)[0]["centre"] == "bad"
    assert jobs.queue_missing_days() == []  # the scan of a broken centre is logged, the others go on
    with session_scope() as db:
        db.get(Centre, cid).timezone = "Asia/Ho_Chi_Minh"
    assert jobs.build_day_job(cid, "2026-11-20").startswith("bad 2026-11-20")
    with session_scope() as db:
        assert service.open_failures(db) == []
    assert "còn ở tương lai" in jobs.build_day_job(cid, "2099-01-01")  # refused, not retried


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the production pair: RQ workers on PostgreSQL
def test_the_worker_builds_days_on_the_real_redis(env, redis_url, monkeypatch):
    import redis
    from rq.job import Job

    hcm = ZoneInfo("Asia/Ho_Chi_Minh")
    today = datetime.now(hcm).date()
    cid = make_centre("rq", "Asia/Ho_Chi_Minh", datetime.now(timezone.utc) - timedelta(days=3))
    yesterday_9 = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=hcm) + timedelta(hours=9)
    add_call(cid, yesterday_9.astimezone(timezone.utc), record={})
    monkeypatch.setenv("HOTLINE_REDIS_URL", redis_url)
    reset_settings()
    default = [c for c, _d in jobs.queue_missing_days() if c != cid]
    expected = [today - timedelta(days=n) for n in (3, 2, 1)]
    conn = redis.Redis.from_url(redis_url)
    job = Job.fetch(f"daily-log-{cid}-{expected[0].isoformat()}", connection=conn)
    assert job.retries_left == 3 and job.retry_intervals == [30, 120, 600]
    assert built_days(cid) == []
    environ = {k: v for k, v in os.environ.items()}
    environ.update({"HOTLINE_REDIS_URL": redis_url, "HOTLINE_DATABASE_URL": get_settings().database_url})
    proc = subprocess.run([sys.executable, "-m", "hotline", "worker", "--burst"], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert built_days(cid) == expected
    with session_scope() as db:
        log = service.get_log(db, centre=db.get(Centre, cid), day=expected[-1])
        assert log.summary["totals"]["received"] == 1 and log.built_by == "worker"
    # the worker's own scan ran under the cluster-wide lease; a second worker queues nothing again
    assert conn.ttl("hotline:periodic:daily_log.scan") > 0
    proc = subprocess.run([sys.executable, "-m", "hotline", "worker", "--burst"], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    with session_scope() as db:
        assert db.scalar(select(DailyLog.build_count).where(DailyLog.centre_id == cid,
                                                            DailyLog.day == expected[-1])) == 1
    assert default == []
