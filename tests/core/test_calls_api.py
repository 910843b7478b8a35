"""Reading calls back: ``GET /api/calls`` and ``hotline calls export``, numbers always masked."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

from hotline.centres.service import add_line, create_centre
from hotline.cli import main
from hotline.db import session_scope
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.ingest.spool import submit

AUTH = {"Authorization": "Bearer test-api-token"}
# 23 Nov 2026 08:30 in Hà Nội time is 01:30 UTC; 24 Nov 06:00 local is 23 Nov 23:00 UTC.
DAY1 = datetime(2026, 11, 23, 1, 30, tzinfo=timezone.utc)
DAY2 = datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)


def _call(key: str, at: datetime, caller: str, *, answered: bool, queue: str = "hotline") -> None:
    evs = [CallEvent(Kind.STARTED, "asterisk", key, at, caller=caller),
           CallEvent(Kind.QUEUED, "asterisk", key, at + timedelta(seconds=1), queue=queue)]
    if answered:
        evs += [CallEvent(Kind.ANSWERED, "asterisk", key, at + timedelta(seconds=5), agent="PJSIP/a"),
                CallEvent(Kind.ENDED, "asterisk", key, at + timedelta(seconds=65))]
    else:
        evs += [CallEvent(Kind.ABANDONED, "asterisk", key, at + timedelta(seconds=20), wait_seconds=19)]
    submit([RawIn("asterisk", f"{key}-{i}", at, "x", events=[e]) for i, e in enumerate(evs)])


def _seed() -> None:
    with session_scope() as s:
        centre = create_centre(s, code="qn", name="CTXH Quảng Ngãi")
        add_line(s, centre=centre, provider="asterisk", kind="queue", identifier="hotline")
    _call("A", DAY1, "0912345678", answered=True)
    _call("B", DAY2, "0987654321", answered=False)
    _call("C", DAY2 + timedelta(minutes=5), "anonymous", answered=True, queue="other")


def test_api_requires_the_token(client):
    assert client.get("/api/calls").status_code == 401
    assert client.get("/api/calls", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_api_lists_filters_and_masks(client):
    _seed()
    body = client.get("/api/calls", headers=AUTH).json()
    assert [c["provider_key"] for c in body["calls"]] == ["C", "B", "A"]
    text = json.dumps(body)
    assert "912345678" not in text and "987654321" not in text
    a = next(c for c in body["calls"] if c["provider_key"] == "A")
    assert a["caller_masked"] == "0912 *** 678" and a["status"] == "completed" and a["line"] == "hotline"
    assert a["talk_seconds"] == 60 and a["centre"] == "qn"
    c = next(c for c in body["calls"] if c["provider_key"] == "C")
    assert c["unrouted"] is True and c["centre"] == "default" and c["caller_id_status"] == "withheld"

    # Local days: DAY2 (23:00 UTC on the 23rd) is the 24th in Asia/Ho_Chi_Minh.
    day = client.get("/api/calls", params={"since": "2026-11-24", "until": "2026-11-24"}, headers=AUTH).json()
    assert sorted(c["provider_key"] for c in day["calls"]) == ["B", "C"]
    st = client.get("/api/calls", params={"status": "abandoned"}, headers=AUTH).json()
    assert [c["provider_key"] for c in st["calls"]] == ["B"]
    line = client.get("/api/calls", params={"line": "hotline"}, headers=AUTH).json()
    assert sorted(c["provider_key"] for c in line["calls"]) == ["A", "B"]


def test_api_rejects_bad_filters_with_a_reason(client):
    r = client.get("/api/calls", params={"status": "lost"}, headers=AUTH)
    assert r.status_code == 422 and "unknown status lost" in r.text
    r = client.get("/api/calls", params={"line": "nope"}, headers=AUTH)
    assert r.status_code == 404 and "no line" in r.text
    r = client.get("/api/calls", params={"since": "2026-11-30", "until": "2026-11-01"}, headers=AUTH)
    assert r.status_code == 422


def test_cli_export_jsonl_and_csv(env, tmp_path, capsys):
    _seed()
    out = tmp_path / "calls.jsonl"
    assert main(["calls", "export", "--since", "2026-11-23", "--until", "2026-11-23", "--format", "jsonl",
                 "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["provider_key"] for r in rows] == ["A"]
    assert "exported 1 calls" in capsys.readouterr().err

    assert main(["calls", "export", "--format", "csv"]) == 0
    printed = capsys.readouterr().out
    table = list(csv.DictReader(io.StringIO(printed)))
    assert [r["provider_key"] for r in table] == ["A", "B", "C"]
    assert "912345678" not in printed and table[0]["caller_masked"] == "0912 *** 678"


def test_cli_export_refuses_bad_input(env, capsys):
    assert main(["calls", "export", "--status", "lost"]) == 2
    assert "unknown status" in capsys.readouterr().err
    assert main(["calls", "export", "--centre", "nowhere"]) == 2
    assert "no centre with code 'nowhere'" in capsys.readouterr().err


def test_each_centre_sees_only_its_own_calls(client):
    from tests.helpers import create_user, login

    _seed()
    with session_scope() as s:
        other = create_centre(s, code="kt", name="CTXH khác")
        add_line(s, centre=other, provider="asterisk", kind="queue", identifier="other")
    # Call C's queue "other" is claimed only after the line exists: a new call on it.
    _call("D", DAY2 + timedelta(minutes=9), "0977000111", answered=False, queue="other")
    create_user("gs_qn", "mat-khau-dai-1", "supervisor", centre_code="qn")
    create_user("gs_kt", "mat-khau-dai-2", "supervisor", centre_code="kt")

    login(client, "gs_qn", "mat-khau-dai-1")
    page = client.get("/calls")
    assert page.status_code == 200
    assert "0912 *** 678" in page.text and "0977 *** 111" not in page.text
    assert "0912345678" not in page.text

    client.cookies.clear()
    login(client, "gs_kt", "mat-khau-dai-2")
    page = client.get("/calls")
    assert "0977 *** 111" in page.text and "0912 *** 678" not in page.text
