"""Calls hotline places itself (``hotline.pbx``) reach the PBX as ``Originate`` through the AMI
listener's real socket, exactly once, and end placed or failed with the PBX's reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from hotline import domains
from hotline.centres.service import add_line, ensure_default_centre, map_agent
from hotline.db import session_scope, utcnow
from hotline.errors import NotAllowed, NotFound
from hotline.pbx import service as pbx
from hotline.pbx.models import PbxCommand
from hotline.settings import get_settings, reset_settings
from tests.ami.conftest import Rig, wait_for
from tests.helpers import create_user

HOTLINE_NUMBER = "+842873001111"


@dataclass(frozen=True)
class Who:
    id: int
    username: str
    role: str
    centre_id: int | None


def _setup(*, phone: str | None = "PJSIP/tvv1", role: str = "counsellor", username: str = "tvv1") -> Who:
    uid = create_user(username, "Originate-Pass-2026!", role)
    s = get_settings()
    with session_scope() as db:
        centre = ensure_default_centre(db, code=s.default_centre_code, name=s.default_centre_name,
                                       timezone=s.default_timezone)
        if not centre.lines:
            add_line(db, centre=centre, provider="asterisk", kind="number", identifier=HOTLINE_NUMBER)
        if phone:
            map_agent(db, centre=centre, provider="asterisk", identity=phone, user_id=uid)
        return Who(uid, username, role, centre.id)


def _place(who: Who, number: str = "0912 345 678", ref: str = "cb:41") -> int:
    with session_scope() as db:
        return pbx.place_call(db, actor=who, centre_id=who.centre_id or 0, number=number, ref=ref).id


def _cmd(command_id: int) -> PbxCommand:
    with session_scope() as db:
        cmd = pbx.command(db, command_id)
        db.expunge(cmd)
        return cmd


def _ended(command_id: int) -> PbxCommand:
    return wait_for(lambda: (c := _cmd(command_id)).status in ("placed", "failed") and c, timeout=15,
                    what="the command's end")


def _originates(server) -> list[dict[str, str]]:
    return [a for a in list(server.actions) if a.get("Action") == "Originate"]


def _ready(rig: Rig):
    server = rig.server()
    listener = rig.listener(server)
    wait_for(lambda: listener.stats.resyncs >= 1, what="the first resync")
    return server, listener


@pytest.fixture
def heard(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """The result hook a domain (the callback worklist) registers for ``cb:`` refs."""
    got: list[tuple[str, str, str]] = []
    hooks = {"cb": lambda session, cmd: got.append((cmd.ref, cmd.status, cmd.reason))}
    monkeypatch.setattr(domains, "pbx_result_hooks", lambda: hooks)
    return got


def test_a_callback_rings_the_counsellor_then_the_number_with_the_hotline_number(env, rig: Rig, heard) -> None:
    who = _setup()
    server, _listener = _ready(rig)
    command_id = _place(who)
    cmd = _ended(command_id)
    assert (cmd.status, cmd.reason) == ("placed", "")
    assert cmd.call_uid  # the counsellor channel's Uniqueid: the linkedid of the callback call
    assert cmd.dial_number is None  # the number is kept only until the call is placed
    [sent] = _originates(server)
    assert sent["ActionID"] == f"hotline-pbx-{command_id}"
    assert sent["Channel"] == "PJSIP/tvv1"  # the counsellor's own phone first
    assert (sent["Context"], sent["Exten"], sent["Priority"]) == ("hotline-callback", "0912345678", "1")
    assert sent["CallerID"] == "02873001111" and sent["Async"] == "true"
    assert sent["Variable"] == "HOTLINE_CALLBACK=cb:41,HOTLINE_CALLERID=02873001111"
    assert sent["Timeout"] == str(get_settings().pbx_ring_seconds * 1000)
    assert heard == [("cb:41", "placed", "")]
    # the listener asks Asterisk for OriginateResponse events through its filter
    assert any(a.get("Action") == "Filter" and a.get("Filter") == "Event: OriginateResponse" for a in server.actions)


@pytest.mark.parametrize(("code", "reason"), [("3", pbx.NO_ANSWER), ("5", pbx.BUSY), ("8", pbx.CONGESTED),
                                              ("1", pbx.REFUSED), ("0", pbx.UNREACHABLE)])
def test_the_pbx_reason_ends_the_command_failed(sqlite_env, rig: Rig, heard, code: str, reason: str) -> None:
    who = _setup()
    server, _listener = _ready(rig)
    server.originate_reasons["PJSIP/tvv1"] = code
    cmd = _ended(_place(who))
    assert (cmd.status, cmd.reason) == ("failed", reason)
    assert heard == [("cb:41", "failed", reason)]


def test_an_originate_refused_by_asterisk_fails_with_the_reason(sqlite_env, rig: Rig, heard) -> None:
    who = _setup()
    server, _listener = _ready(rig)
    server.originate_refusal = "Permission denied"
    cmd = _ended(_place(who))
    assert (cmd.status, cmd.reason) == ("failed", pbx.REFUSED_BY_PBX)
    assert len(_originates(server)) == 1


def test_sent_exactly_once_by_two_listeners_and_after_a_restart(env, rig: Rig, heard) -> None:
    who = _setup()
    # asked for while no listener runs: sent once one connects (found by the poll, not the bus)
    first = _place(who, ref="cb:1")
    server = rig.server()
    a, b = rig.listener(server), rig.listener(server)
    wait_for(lambda: a.stats.resyncs >= 1 and b.stats.resyncs >= 1, what="both listeners")
    assert _ended(first).status == "placed"
    ids = [_place(who, ref=f"cb:{n}") for n in range(2, 7)]
    for i in ids:
        assert _ended(i).status == "placed"
    sent = [o["ActionID"] for o in _originates(server)]
    assert sorted(sent) == sorted(f"hotline-pbx-{i}" for i in [first, *ids])  # each once, two listeners
    assert sorted(h[0] for h in heard) == [f"cb:{n}" for n in range(1, 7)]


def test_a_command_nobody_takes_fails_and_never_goes_out_later(sqlite_env, rig: Rig, heard) -> None:
    who = _setup()
    command_id = _place(who)
    with session_scope() as db:
        assert pbx.expire_stale(db, now=utcnow() + timedelta(seconds=31)) == 1
    cmd = _cmd(command_id)
    assert (cmd.status, cmd.reason) == ("failed", pbx.NOT_TAKEN)
    server, listener = _ready(rig)
    listener.wait_applied(lambda s: False, timeout=1.5)  # a poll or two
    assert _originates(server) == []


def test_bad_requests_are_refused_with_a_reason(sqlite_env) -> None:
    who = _setup()
    nophone = _setup(phone=None, username="tvv9")
    with session_scope() as db:
        for actor, number, ref, cls, words in [
            (who, "12", "cb:1", pbx.PbxError, "not a valid phone number"),
            (who, "113", "cb:1", pbx.PbxError, "short codes"),
            (who, "0912345678", "no ref", pbx.PbxError, "reference"),
            (nophone, "0912345678", "cb:1", pbx.PbxError, "no phone mapped"),
            (Who(who.id, "x", "partner", who.centre_id), "0912345678", "cb:1", NotAllowed, "may not place"),
            (Who(who.id, "x", "counsellor", (who.centre_id or 0) + 99), "0912345678", "cb:1", NotFound, "centre"),
        ]:
            with pytest.raises(cls) as err:
                pbx.place_call(db, actor=actor, centre_id=who.centre_id or 0, number=number, ref=ref)
            assert words in err.value.detail("en"), err.value.detail("en")


def test_a_wrap_up_that_has_run_its_time_unpauses_the_member(sqlite_env, rig: Rig, monkeypatch) -> None:
    """#13: wrap-up pauses the queue member until ``until``; then the listener unpauses it from the
    stored presence, even when nobody (no worker, no screen) stored "available" meanwhile."""
    monkeypatch.setenv("HOTLINE_WRAP_UP_SECONDS", "2")
    reset_settings()
    who = _setup()
    from hotline.live.models import CounsellorPresence

    with session_scope() as db:
        db.add(CounsellorPresence(user_id=who.id, centre_id=who.centre_id, state="wrap_up", changed_at=utcnow()))
    server, _listener = _ready(rig)

    def pauses() -> list[tuple[str, str, str]]:
        return [(a["Interface"], a["Paused"], a.get("Reason", "")) for a in list(server.actions)
                if a.get("Action") == "QueuePause"]

    wait_for(lambda: ("PJSIP/tvv1", "true", "wrap_up") in pauses(), what="the wrap-up pause")
    wait_for(lambda: pauses()[-1][:2] == ("PJSIP/tvv1", "false"), timeout=10, what="the unpause after wrap-up")
    with session_scope() as db:
        assert db.get(CounsellorPresence, who.id).state == "wrap_up"  # stored as it was: only its time ran
