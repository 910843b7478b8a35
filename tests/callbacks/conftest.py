"""Set-up for the callback worklist tests: the live tests' staff (centre A with tvv1, tvv2, gs1, admin1;
centre B), missed calls fed through the ingestor, and a clock inside the callback hours."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.spool import submit
from tests.ami.conftest import rig  # noqa: F401  (fixture re-exported)
from tests.live.conftest import Staff, call_id, feed_call, sign_in, staff  # noqa: F401  (fixtures re-exported)

# 09:00 in Hanoi: inside the default callback hours (07:30-21:00)
MORNING = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)


_seq = itertools.count(1)


def missed(caller: str = "0912345678", at: datetime | None = None, *, agent: str | None = None) -> int:
    """A call that nobody answered, through the ingestor: the caller hung up in the queue (abandoned),
    or after ``agent``'s phone rang unanswered; returns its id."""
    t = at or MORNING
    key = f"cb-missed-{next(_seq)}-{t.timestamp()}"
    events = [CallEvent(Kind.STARTED, "asterisk", key, t, channel=key, caller=caller, dialed="1800"),
              CallEvent(Kind.QUEUED, "asterisk", key, t + timedelta(seconds=1), queue="hotline")]
    if agent:
        events += [CallEvent(Kind.OFFERED, "asterisk", key, t + timedelta(seconds=2), agent=agent),
                   CallEvent(Kind.OFFER_MISSED, "asterisk", key, t + timedelta(seconds=20), agent=agent)]
    events += [CallEvent(Kind.ABANDONED, "asterisk", key, t + timedelta(seconds=30), wait_seconds=29),
               CallEvent(Kind.ENDED, "asterisk", key, t + timedelta(seconds=31), channel=key)]
    submit([RawIn("asterisk", f"{key}-{i}", t, f"test {key} {i}", event_type="test", events=[e])
            for i, e in enumerate(events)])
    return call_id(key)


def answered(caller: str = "0912345678", at: datetime | None = None) -> int:
    return call_id(feed_call(agent="PJSIP/tvv1", caller=caller, answered=True, at=at or MORNING, ended=True))


@pytest.fixture
def clock(client):
    """Frozen at 09:10 in Hanoi; after the app is made (some of its imports cannot happen under freezegun)."""
    from freezegun import freeze_time

    client.get("/no-such-page")  # FastAPI reads the routes' parameter types on the first request: not under freezegun
    with freeze_time(MORNING + timedelta(minutes=10)) as frozen:
        yield frozen
