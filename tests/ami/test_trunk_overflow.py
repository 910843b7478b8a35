"""A line's overflow to another PBX over a trunk is ONE call (issue #17 part 4, several PBXes).

The captures ``tests/fixtures/ami/trunk_overflow*`` come from two real Asterisk 22 joined by an IAX2
trunk (``scripts/asterisk/record.py``): the caller waits in the line's queue on ``north``, which
sends them over the trunk to the overflow centre's queue on ``south``, where a counsellor of that
centre answers.  Each PBX's stream (``north/``, ``south/``) is replayed byte for byte to its own
``hotline ami`` listener (named as ``hotline-ami@NAME`` names it) over a real socket.

- with the samples' dial plans (``HOTLINE_ORIGIN`` crosses the trunk): one call, the line's centre's,
  overflowed to the other centre, answered by its counsellor, whichever PBX's events arrive first;
  both centres' supervisors see it, each daily log counts it once (overflow out / overflow in);
  a caller who gives up in the other PBX's queue is one abandoned call;
- without it (an unconfigured trunk): two calls, as documented (deploy/asterisk/README.md);
- an origin naming another PBX than the one the call came through links nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daily_log.service import summarise
from hotline.calls.models import Call, CallKey, CallPart, CallRecord, RawEvent
from hotline.calls.service import CallFilter, list_calls
from hotline.centres.models import Centre
from hotline.centres.service import add_line, create_centre, ensure_default_centre, map_agent
from hotline.db import session_scope
from hotline.ingest.events import Kind
from hotline.ingest.providers.asterisk.simulator import Capture
from hotline.ingest.providers.asterisk.translator import AmiMapper
from hotline.records import service as records
from hotline.settings import get_settings
from tests.ami.conftest import Rig, count, wait_for
from tests.helpers import create_user

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
LINKED, UNLINKED = FIXTURES / "trunk_overflow", FIXTURES / "trunk_overflow_unlinked"
ABANDONED, AT_ONCE = FIXTURES / "trunk_overflow_abandoned", FIXTURES / "trunk_overflow_at_once"
PASSWORD = "Trunk-Overflow-Pass-2026!"


@dataclass(frozen=True)
class Who:
    id: int
    username: str
    role: str
    centre_id: int | None


def spec(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def setup(env) -> dict[str, int]:
    """The line's centre (default, queue line ``hotline``, PBX north) and the overflow centre hcm
    (queue line ``hotline-hcm``, PBX south), each with its counsellor and supervisor."""
    settings = get_settings()
    with session_scope() as db:
        home = ensure_default_centre(db, code=settings.default_centre_code, name="Trung tâm Đà Nẵng",
                                     timezone=settings.default_timezone)
        home.pbx = "north"
        hcm = create_centre(db, code="hcm", name="Trung tâm TP. Hồ Chí Minh", pbx="south")
        add_line(db, centre=home, provider="asterisk", kind="queue", identifier="hotline")
        add_line(db, centre=hcm, provider="asterisk", kind="queue", identifier="hotline-hcm")
        ids = {"home": home.id, "hcm": hcm.id}
    for username, code, phone in (("tvv1", None, "Local/tvv1@phones/n"), ("tvv4", "hcm", "Local/tvv4@phones/n")):
        ids[username] = create_user(username, PASSWORD, "counsellor", centre_code=code)
        with session_scope() as db:
            centre = db.get(Centre, ids[code or "home"])
            map_agent(db, centre=centre, provider="asterisk", identity=phone, user_id=ids[username])
    ids["gs_home"] = create_user("gs_home", PASSWORD, "supervisor")
    ids["gs_hcm"] = create_user("gs_hcm", PASSWORD, "supervisor", centre_code="hcm")
    return ids


def _replay(rig: Rig, path: Path, name: str) -> None:
    """One PBX's stream to a listener named ``name``; returns once every event of it is stored."""
    before = count(RawEvent)
    server = rig.server(replay=path)
    listener = rig.listener(server, source=name)
    capture = Capture.load(path)
    wait_for(lambda: listener.stats.frames_received >= len(capture.frames) and listener.stats.resyncs >= 1,
             what=f"the replay of {path.parent.name}/{path.name}")
    # every distinct event frame, plus the resync snapshot
    wait_for(lambda: count(RawEvent) >= before + len(set(capture.event_frames())) + 1, what=f"{name}'s raw events")


def _replay_both(rig: Rig, folder: Path, stream: str, order: str, names: tuple[str, str] = ("north", "south")) -> None:
    north, south = folder / "north" / stream, folder / "south" / stream
    if order == "together":  # two listeners at once: the streams interleave as they come
        total = sum(len(set(Capture.load(p).event_frames())) + 1 for p in (north, south))
        listeners = []
        for path, name in ((north, names[0]), (south, names[1])):
            listeners.append((rig.listener(rig.server(replay=path), source=name), Capture.load(path)))
        wait_for(lambda: all(lst.stats.frames_received >= len(cap.frames) and lst.stats.resyncs >= 1
                             for lst, cap in listeners), what="both replays")
        wait_for(lambda: count(RawEvent) >= total, what="both PBXes' raw events")
        return
    first, second = ((north, names[0]), (south, names[1])) if order == "north_first" else \
        ((south, names[1]), (north, names[0]))
    _replay(rig, *first)
    _replay(rig, *second)


def _calls() -> list[Call]:
    with session_scope() as db:
        found = list(db.scalars(select(Call).order_by(Call.id)))
        for c in found:
            db.expunge(c)
        return found


def _closed() -> list[Call]:
    found = _calls()
    return found if found and all(c.status not in ("ringing", "queued", "in_progress") for c in found) else []


def _day(call: Call) -> Any:
    from zoneinfo import ZoneInfo

    return call.received_at.astimezone(ZoneInfo(get_settings().default_timezone)).date()


@pytest.mark.parametrize("stream", ["filtered.ami", "all.ami"])
@pytest.mark.parametrize("order", ["together", "north_first", "south_first"])
def test_a_call_overflowed_over_a_trunk_is_one_call(setup, rig: Rig, stream: str, order: str) -> None:
    want = spec(LINKED)
    (exp,) = want["calls"]
    _replay_both(rig, LINKED, stream, order)
    # two listeners may each store their half at the same moment: they are joined within seconds
    (call,) = wait_for(lambda: len(c := _closed()) == 1 and c, what="one call, closed")
    assert call.provider_key == exp["linkedid"] and call.source == "north"
    with session_scope() as db:
        keys = set(db.scalars(select(CallKey.key).where(CallKey.call_id == call.id)))
        parts = list(db.scalars(select(CallPart).where(CallPart.call_id == call.id)))
    assert {exp["linkedid"], exp["peer_linkedid"]} <= keys  # south's half is this call
    # the line's centre keeps it; it overflowed to hcm, whose counsellor answered
    assert (call.centre_id, call.overflow_centre_id) == (setup["home"], setup["hcm"])
    assert call.queue == "hotline" and call.facts["overflow_queue"] == "hotline-hcm"
    assert call.status == exp["status"] == "completed"
    assert call.answered_by == exp["answered_by"] and call.counsellor_id == setup["tvv4"]
    assert abs(call.queue_wait_seconds - exp["wait_s"]) <= 1, (call.queue_wait_seconds, exp["wait_s"], call.facts,
                                                               call.queued_at, call.answered_at)
    assert abs(call.talk_seconds - exp["talk_s"]) <= 1, (call.talk_seconds, exp["talk_s"])
    # the trunk is nobody's part of the call: tvv4's only
    assert [p.counsellor_id for p in parts] == [setup["tvv4"]], [(p.agent, p.leg) for p in parts]
    # both centres' supervisors see it, and tvv4 may record it (the record stays the line's centre's)
    for who in ("gs_home", "gs_hcm"):
        centre = setup["home"] if who == "gs_home" else setup["hcm"]
        with session_scope() as db:
            seen = list_calls(db, flt=CallFilter(centre_ids=[centre], with_overflow=True))
        assert [c.id for c in seen] == [call.id], who
    with session_scope() as db:
        tvv4 = Who(setup["tvv4"], "tvv4", "counsellor", setup["hcm"])
        record = records.open_for_call(db, actor=tvv4, call_id=call.id)
        assert (record.centre_id, record.overflow_centre_id) == (setup["home"], setup["hcm"])
    # each centre's daily log counts it once, as overflow out (the line's) and in (the other's)
    with session_scope() as db:
        home = summarise(db, centre=db.get(Centre, setup["home"]), day=_day(call))["totals"]
        hcm = summarise(db, centre=db.get(Centre, setup["hcm"]), day=_day(call))["totals"]
    assert (home["received"], home["answered"], home["overflow_out"], home["overflow_in"]) == (1, 1, 1, 0)
    assert (hcm["received"], hcm["overflow_out"], hcm["overflow_in"]) == (0, 0, 1)


@pytest.mark.parametrize("order", ["together", "north_first", "south_first"])
def test_a_caller_who_gives_up_in_the_other_pbxs_queue_abandoned_one_call(setup, rig: Rig, order: str) -> None:
    """Nobody answers on either PBX; the caller hangs up while waiting on south: one call, abandoned
    (north's queue timeout is why it overflowed, not how it ended), the line's centre's."""
    (exp,) = spec(ABANDONED)["calls"]
    _replay_both(rig, ABANDONED, "filtered.ami", order)
    (call,) = wait_for(lambda: len(c := _closed()) == 1 and c, what="one call, closed")
    assert call.provider_key == exp["linkedid"]
    assert (call.centre_id, call.overflow_centre_id) == (setup["home"], setup["hcm"])
    assert call.status == exp["status"] == "abandoned"
    assert call.answered_at is None and call.counsellor_id is None
    assert abs(call.queue_wait_seconds - exp["wait_s"]) <= 1, (call.queue_wait_seconds, exp["wait_s"])
    with session_scope() as db:
        home = summarise(db, centre=db.get(Centre, setup["home"]), day=_day(call))["totals"]
        hcm = summarise(db, centre=db.get(Centre, setup["hcm"]), day=_day(call))["totals"]
    assert (home["received"], home["abandoned"], home["missed"], home["overflow_out"]) == (1, 1, 0, 1)
    assert (hcm["received"], hcm["overflow_in"]) == (0, 1)


@pytest.mark.parametrize("order", ["together", "north_first", "south_first"])
def test_a_caller_sent_over_at_once_is_the_lines_call(setup, rig: Rig, order: str) -> None:
    """No counsellor of the line's centre ready: the caller crosses the trunk at once and never joins a
    queue on north, whose events know the call only by the number dialled.  A real trunk's channel
    names it on ``Newchannel`` (``Exten``); the recorder's Local-channel caller names ``caller``, so
    the stream is replayed with the number a trunk would give: one call, the line's centre's (its
    number line), overflowed to hcm, waiting from the queue join on south."""
    (exp,) = spec(AT_ONCE)["calls"]
    with session_scope() as db:
        add_line(db, centre=db.get(Centre, setup["home"]), provider="asterisk", kind="number", identifier="18001234")
    as_trunk = (AT_ONCE / "north" / "filtered.ami").read_bytes().replace(b"\r\nExten: caller\r\n",
                                                                        b"\r\nExten: 18001234\r\n")
    north, south = ("north", as_trunk), ("south", (AT_ONCE / "south" / "filtered.ami").read_bytes())
    for name, data in ((south, north) if order == "south_first" else (north, south)):
        listener = rig.listener(rig.server(replay=data), source=name)
        if order != "together":
            wait_for(lambda lst=listener, d=data: lst.stats.frames_received >= len(Capture.load(d).frames),
                     what=f"{name}'s replay")
    (call,) = wait_for(lambda: len(c := _closed()) == 1 and c[0].provider_key == exp["linkedid"]
                       and c[0].counsellor_id is not None and c, what="one call, north's, answered on south")
    assert call.status == "completed"
    assert (call.centre_id, call.overflow_centre_id, call.counsellor_id) == (setup["home"], setup["hcm"], setup["tvv4"])
    assert abs(call.queue_wait_seconds - exp["wait_s"]) <= 1 and abs(call.talk_seconds - exp["talk_s"]) <= 1


def test_a_caller_sent_over_at_once_without_the_number_is_the_other_centres(setup, rig: Rig) -> None:
    """The same stream as recorded (north never names the number dialled, nor a queue): north's
    events make no call, and south's half is one call of hcm's own, not marked as overflow (as on one
    PBX without a number line: deploy/asterisk/README.md)."""
    _replay_both(rig, AT_ONCE, "filtered.ami", "north_first")
    (call,) = wait_for(lambda: len(c := _closed()) == 1 and c, what="one call, closed")
    assert (call.centre_id, call.overflow_centre_id, call.source) == (setup["hcm"], None, "south")


def test_without_the_origin_the_trunk_gives_two_calls(setup, rig: Rig) -> None:
    """An unconfigured trunk (no HOTLINE_ORIGIN): nothing ties the halves, hotline does not guess
    (a caller number and a time are no proof: see deploy/asterisk/README.md)."""
    want = spec(UNLINKED)
    (exp,) = want["calls"]
    _replay_both(rig, UNLINKED, "filtered.ami", "together")
    found = wait_for(lambda: len(c := _closed()) == 2 and c, what="two calls closed")
    by_key = {c.provider_key: c for c in found}
    north, south = by_key[exp["linkedid"]], by_key[exp["peer_linkedid"]]
    assert (north.centre_id, north.overflow_centre_id, north.source) == (setup["home"], None, "north")
    assert (south.centre_id, south.overflow_centre_id, south.source) == (setup["hcm"], None, "south")
    assert south.status == "completed" and south.counsellor_id == setup["tvv4"]
    # north only saw its caller bridged to the trunk channel when south answered
    assert north.status == "completed" and north.counsellor_id is None
    assert (north.answered_by or "").startswith("IAX2/hotline-south")


def test_an_origin_naming_another_pbx_links_nothing(setup, rig: Rig) -> None:
    """Linkedids are unique per PBX only: the origin says north, the call came through a PBX named
    otherwise: two calls, never a merge of strangers."""
    _replay_both(rig, LINKED, "filtered.ami", "north_first", names=("east", "south"))
    found = wait_for(lambda: len(c := _closed()) == 2 and c, what="two calls closed")
    assert {c.source for c in found} == {"east", "south"}
    assert all(c.overflow_centre_id is None for c in found)
    with session_scope() as db:
        assert db.scalar(select(CallRecord.id)) is None


def test_the_translator_links_once_and_gives_the_trunk_no_part() -> None:
    at = datetime(2026, 12, 5, tzinfo=timezone.utc)
    (exp,) = spec(LINKED)["calls"]
    events = {}
    for side in ("north", "south"):
        mapper = AmiMapper(side)
        events[side] = [e for raw in Capture.load(LINKED / side / "all.ami").frames
                        for e in mapper.to_raw(raw, at).events]
    links = [e for e in events["south"] if e.kind is Kind.ALIAS]
    assert [(e.key, e.alias_key, e.reason) for e in links] == [
        (exp["linkedid"], exp["peer_linkedid"], "overflow_from:north")]
    # north: the caller's only bridge partner is the trunk channel, which is nobody's part
    assert not [e for e in events["north"] if e.kind in (Kind.PART_STARTED, Kind.ALIAS)]
    assert {e.agent for e in events["south"] if e.kind is Kind.PART_STARTED} == {"Local/tvv4@phones"}


def test_check_names_a_lines_overflow_across_a_trunk(setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``hotline check`` (pbx-routing) says which lines overflow to a centre served by another PBX:
    their callers cross a trunk, one call only with HOTLINE_ORIGIN in both dial plans."""
    from hotline.centres.models import Line
    from hotline.ops.check import check_pbx_routing
    from hotline.settings import reset_settings

    for name in ("north", "south"):
        (tmp_path / f"{name}.env").write_text("HOTLINE_AMI_HOST=127.0.0.1\nHOTLINE_AMI_PORT=5038\n"
                                              "HOTLINE_AMI_USERNAME=hotline\nHOTLINE_AMI_SECRET=s3cret-for-tests\n")
    monkeypatch.setenv("HOTLINE_AMI_PBX_DIR", str(tmp_path))
    reset_settings()
    state = {"db_ok": True, "migrated": True}
    [before] = check_pbx_routing(get_settings(), state)
    assert before.status == "ok" and "trunk" not in before.message
    with session_scope() as db:
        line = db.scalar(select(Line).where(Line.identifier == "hotline"))
        line.overflow_centre_id = setup["hcm"]
    [after] = check_pbx_routing(get_settings(), state)
    assert after.status == "ok"
    assert "line hotline overflows from north to south over a trunk (HOTLINE_ORIGIN" in after.message
    assert after.details["overflow_trunks"] == [["hotline", "north", "south"]]


def test_a_link_stored_while_the_other_listener_created_the_call_is_applied_by_the_sweep(setup) -> None:
    """The race two listeners can run into (PostgreSQL, the same instant): south's listener keeps its
    link as a waiting event because north's call is not committed yet, while north's listener
    creates the call without seeing it.  ``adopt_waiting`` (each listener, every few seconds)
    applies it: one call."""
    from hotline.calls.models import PendingCallEvent
    from hotline.ingest.service import adopt_waiting, ingest_and_commit

    (exp,) = spec(LINKED)["calls"]
    at = datetime(2026, 12, 5, tzinfo=timezone.utc)
    items = {side: [AmiMapper(side).to_raw(raw, at) for raw in Capture.load(LINKED / side / "filtered.ami").frames]
             for side in ("north", "south")}
    links = [e for item in items["south"] for e in item.events if e.kind is Kind.ALIAS]
    for item in items["south"]:
        item.events = [e for e in item.events if e.kind is not Kind.ALIAS]
    ingest_and_commit(items["north"], publish=False)
    ingest_and_commit(items["south"], publish=False)
    assert len(_calls()) == 2  # each listener's half, the link not seen by the one creating the call
    with session_scope() as db:
        db.add_all(PendingCallEvent(provider="asterisk", key=e.key, event=e.to_json()) for e in links)
    with session_scope() as db:
        assert adopt_waiting(db).touched
    (call,) = _calls()
    assert call.provider_key == exp["linkedid"] and call.status == "completed"
    assert (call.centre_id, call.overflow_centre_id, call.counsellor_id) == (setup["home"], setup["hcm"], setup["tvv4"])
    assert abs(call.queue_wait_seconds - exp["wait_s"]) <= 1 and abs(call.talk_seconds - exp["talk_s"]) <= 1
    with session_scope() as db:
        assert db.scalar(select(PendingCallEvent.id).where(PendingCallEvent.key == exp["linkedid"])) is None
        assert not adopt_waiting(db).touched  # nothing left
