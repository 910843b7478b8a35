"""Several PBXes (one Asterisk per regional centre, one ``hotline ami`` listener each): a call to
place goes out only on the PBX that serves it, through two AMI simulators' real sockets.

- a callback for centre A is originated on A's PBX only (the centre's PBX, or its line's);
- a listen-in on a call that came through PBX B goes to B (the call's source);
- a pause goes to the PBX where the counsellor's queue member lives;
- a command for a PBX without a listener fails after ``pbx_pending_seconds`` naming the PBX;
- nothing named (one PBX): any listener takes it, as before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from hotline.calls.models import Call
from hotline.centres.models import Centre, Line
from hotline.centres.service import add_line, create_centre, map_agent, set_centre_pbx
from hotline.db import session_scope, utcnow
from hotline.i18n import translator
from hotline.ingest.providers.asterisk.simulator import synthetic_call
from hotline.pbx import service as pbx
from hotline.pbx.models import PbxCommand
from tests.ami.conftest import SECRET, USER, Rig, wait_for
from tests.helpers import create_user

PASSWORD = "Several-Pbx-Pass-2026!"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Who:
    id: int
    username: str
    role: str
    centre_id: int | None


def _centre(code: str, number: str, *, pbx_name: str = "", line_pbx: str = "") -> int:
    with session_scope() as db:
        centre = create_centre(db, code=code, name=f"Trung tâm {code}", pbx=pbx_name)
        add_line(db, centre=centre, provider="asterisk", kind="number", identifier=number, pbx=line_pbx)
        return centre.id


def _person(username: str, code: str, phone: str, role: str = "counsellor") -> Who:
    uid = create_user(username, PASSWORD, role, centre_code=code)
    with session_scope() as db:
        centre = db.scalar(select(Centre).where(Centre.code == code))
        map_agent(db, centre=centre, provider="asterisk", identity=phone, user_id=uid)
        return Who(uid, username, role, centre.id)


def _place(who: Who, ref: str, number: str = "0912 345 678") -> int:
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


@pytest.fixture
def two(rig: Rig):
    """Two PBXes, ``north`` and ``south``, each with its own listener (named as hotline-ami@NAME names it)."""
    north, south = rig.server(), rig.server()
    ln, ls = rig.listener(north, source="north"), rig.listener(south, source="south")
    wait_for(lambda: ln.stats.resyncs >= 1 and ls.stats.resyncs >= 1, what="both listeners")
    return north, south


def test_a_centres_callback_goes_out_only_on_its_own_pbx(env, two) -> None:
    north, south = two
    _centre("hn", "+842473001111", pbx_name="north")
    _centre("hcm", "+842873002222", pbx_name="south")
    a, b = _person("tvv_hn", "hn", "PJSIP/hn101"), _person("tvv_hcm", "hcm", "PJSIP/hcm101")
    ids_a = [_place(a, f"cb:{n}") for n in range(1, 6)]
    ids_b = [_place(b, f"cb:{n}") for n in range(11, 16)]
    for i in ids_a + ids_b:
        assert _ended(i).status == "placed"
    assert sorted(o["ActionID"] for o in _originates(north)) == sorted(f"hotline-pbx-{i}" for i in ids_a)
    assert sorted(o["ActionID"] for o in _originates(south)) == sorted(f"hotline-pbx-{i}" for i in ids_b)
    assert {o["Channel"] for o in _originates(north)} == {"PJSIP/hn101"}
    assert {o["CallerID"] for o in _originates(south)} == {"02873002222"}  # the centre's own number, on its trunk
    with session_scope() as db:
        claimed = dict(db.execute(select(PbxCommand.id, PbxCommand.claimed_by)).all())
    assert {claimed[i] for i in ids_a} == {"north"} and {claimed[i] for i in ids_b} == {"south"}


def test_a_lines_pbx_wins_over_its_centres(env, two) -> None:
    north, south = two
    _centre("hn", "+842473001111", pbx_name="north", line_pbx="south")
    a = _person("tvv_hn", "hn", "PJSIP/hn101")
    assert _ended(_place(a, "cb:7")).status == "placed"
    assert len(_originates(south)) == 1 and _originates(north) == []


def test_listen_in_goes_to_the_pbx_the_call_is_on(env, two) -> None:
    north, south = two
    _centre("hn", "+842473001111", pbx_name="north")
    supervisor = _person("gs_hn", "hn", "PJSIP/hn900", role="supervisor")
    _person("tvv_hn", "hn", "Local/agent1@agents/n")
    # a call answered on the south PBX (phases: arrival, answer; not yet hung up)
    call = synthetic_call(outcome="answered", wait=1, talk=600)
    south.push(b"".join(frame for offset, frame in call.frames if offset < call.wait + call.talk))

    def talking() -> Call | None:
        with session_scope() as db:
            row = db.scalar(select(Call).where(Call.provider_key == call.linkedid))
            return row if row is not None and row.answered_at is not None else None

    found = wait_for(talking, what="the south call in progress")
    assert found.source == "south"
    with session_scope() as db:
        # the call belongs to the default centre (its line is unknown here): an administrator may listen in
        admin = Who(supervisor.id, supervisor.username, "administrator", supervisor.centre_id)
        command_id = pbx.listen_in(db, actor=admin, call_id=found.id, mode="listen").id
    assert _ended(command_id).status == "placed"
    [sent] = _originates(south)
    assert sent["ActionID"] == f"hotline-pbx-{command_id}" and sent["Application"] == "ChanSpy"
    assert _originates(north) == []
    assert _cmd(command_id).pbx == "south"


def test_a_pbx_without_a_listener_fails_naming_it_and_nobody_else_sends_it(env, two) -> None:
    north, south = two
    _centre("dn", "+842363003333", pbx_name="central")
    c = _person("tvv_dn", "dn", "PJSIP/dn101")
    command_id = _place(c, "cb:21")
    # a few polls of both listeners: neither takes it
    two_polls = utcnow() + timedelta(seconds=2.5)
    wait_for(lambda: utcnow() > two_polls, timeout=5, what="two polls")
    assert _cmd(command_id).status == "pending"
    with session_scope() as db:
        assert pbx.expire_stale(db, now=utcnow() + timedelta(seconds=31)) == 1
    cmd = _cmd(command_id)
    assert cmd.status == "failed" and cmd.dial_number is None
    assert translator("en")(cmd.reason) == ("the PBX central did not take the call (is its AMI listener, "
                                            "hotline-ami@central, running?)")
    assert "tổng đài central không nhận" in translator("vi")(cmd.reason)
    assert _originates(north) == [] and _originates(south) == []


def test_nothing_named_any_listener_takes_it_once(env, two) -> None:
    north, south = two
    _centre("hn", "+842473001111")
    a = _person("tvv_hn", "hn", "PJSIP/hn101")
    ids = [_place(a, f"cb:{n}") for n in range(30, 36)]
    for i in ids:
        assert _ended(i).status == "placed"
    sent = [o["ActionID"] for o in _originates(north) + _originates(south)]
    assert sorted(sent) == sorted(f"hotline-pbx-{i}" for i in ids)  # each exactly once, on either


def test_a_pause_goes_to_the_pbx_where_the_member_lives(env, two) -> None:
    north, south = two
    _centre("hn", "+842473001111", pbx_name="north")
    _centre("hcm", "+842873002222", pbx_name="south")
    _centre("any", "+842363003333")
    a, b = _person("tvv_hn", "hn", "PJSIP/hn101"), _person("tvv_hcm", "hcm", "PJSIP/hcm101")
    c = _person("tvv_any", "any", "PJSIP/any101")
    from hotline.live.models import CounsellorPresence

    with session_scope() as db:
        for who in (a, b, c):
            db.add(CounsellorPresence(user_id=who.id, centre_id=who.centre_id, state="away", changed_at=utcnow()))

    def paused(server) -> set[str]:
        return {x["Interface"] for x in list(server.actions) if x.get("Action") == "QueuePause"}

    wait_for(lambda: paused(north) == {"PJSIP/hn101", "PJSIP/any101"}, what="north's pauses")
    wait_for(lambda: paused(south) == {"PJSIP/hcm101", "PJSIP/any101"}, what="south's pauses")
    # the fast path (the bus) follows the same rule
    from hotline import bus

    bus.publish("ami-commands", {"action": "QueuePause", "interface": "PJSIP/hcm101", "paused": True,
                                 "reason": "break"})
    wait_for(lambda: any(x.get("Reason") == "break" for x in list(south.actions)), what="the bus pause on south")
    assert not any(x.get("Reason") == "break" for x in list(north.actions))
    # moving the centre to the other PBX moves its pauses with it (on the next poll)
    with session_scope() as db:
        set_centre_pbx(db, db.scalar(select(Centre).where(Centre.code == "hn")), "south")
    wait_for(lambda: "PJSIP/hn101" in paused(south), what="hn's pause on south")


def test_a_pause_also_goes_where_the_pbx_lists_the_member(env, rig: Rig, two) -> None:
    """A counsellor of a centre on north who is also a member of a queue on south (heard from south's
    member events) is paused on both."""
    from hotline.ingest.providers.asterisk.simulator import message
    from hotline.live.models import CounsellorPresence

    north, south = two
    _centre("hn", "+842473001111", pbx_name="north")
    a = _person("tvv_hn", "hn", "PJSIP/hn101")
    # south rings the member for a caller in its overflow queue (AgentCalled names queue member and interface)
    south.push(message(("Event", "AgentCalled"), ("Privilege", "agent,all"), ("Channel", "PJSIP/trunk-00000001"),
                       ("Uniqueid", "1764900000.501"), ("Linkedid", "1764900000.501"), ("CallerIDNum", "0912345678"),
                       ("DestChannel", "PJSIP/hn101-00000002"), ("Queue", "hotline-overflow"),
                       ("Interface", "PJSIP/hn101"), ("MemberName", "TVV Ha Noi")))
    [on_south] = [lst for lst in rig.listeners if lst.source == "south"]
    wait_for(lambda: on_south.mapper.members.get("TVV Ha Noi") == "PJSIP/hn101", what="south hears its member")
    with session_scope() as db:
        db.add(CounsellorPresence(user_id=a.id, centre_id=a.centre_id, state="away", changed_at=utcnow()))

    def paused(server) -> set[str]:
        return {x["Interface"] for x in list(server.actions) if x.get("Action") == "QueuePause"}

    wait_for(lambda: paused(north) == {"PJSIP/hn101"} and paused(south) == {"PJSIP/hn101"},
             what="the pause on both PBXes")
    assert paused(north) == paused(south) == {"PJSIP/hn101"}


def test_line_names_are_checked(env) -> None:
    _centre("hn", "+842473001111")
    with session_scope() as db:
        centre = db.scalar(select(Centre).where(Centre.code == "hn"))
        with pytest.raises(ValueError, match="invalid PBX name"):
            set_centre_pbx(db, centre, "bad name; rm")
        with pytest.raises(ValueError, match="invalid PBX name"):
            add_line(db, centre=centre, provider="asterisk", kind="queue", identifier="q", pbx="x" * 65)
        assert db.scalar(select(Line.pbx).where(Line.identifier == "+842473001111")) == ""


def _ami_process(port: int, **named: str) -> subprocess.Popen[bytes]:
    """``hotline ami`` as its own process, named as the unit names it (``HOTLINE_AMI_NAME``) or
    with ``--name``."""
    env = {**os.environ, "HOTLINE_AMI_HOST": "127.0.0.1", "HOTLINE_AMI_PORT": str(port),
           "HOTLINE_AMI_USERNAME": USER, "HOTLINE_AMI_SECRET": SECRET, "HOTLINE_AMI_KEEPALIVE_SECONDS": "1",
           "HOTLINE_AMI_RECONNECT_MAX_SECONDS": "0.5", "HOTLINE_REDIS_URL": "", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "hotline", "--log-format", "json", "ami"]
    if "env" in named:
        env["HOTLINE_AMI_NAME"] = named["env"]
    if "flag" in named:
        argv += ["--name", named["flag"]]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)


def test_two_listener_processes_named_as_their_units_name_them(sqlite_env, rig: Rig) -> None:
    north, south = rig.server(), rig.server()
    _centre("hn", "+842473001111", pbx_name="north")
    _centre("hcm", "+842873002222", pbx_name="south")
    a, b = _person("tvv_hn", "hn", "PJSIP/hn101"), _person("tvv_hcm", "hcm", "PJSIP/hcm101")
    procs = [_ami_process(north.port, env="north"), _ami_process(south.port, flag="south")]
    try:
        assert north.wait_for_login(1, 30) and south.wait_for_login(1, 30)
        first, second = _place(b, "cb:1"), _place(a, "cb:2")
        assert _ended(first).status == _ended(second).status == "placed"
        assert [o["ActionID"] for o in _originates(north)] == [f"hotline-pbx-{second}"]
        assert [o["ActionID"] for o in _originates(south)] == [f"hotline-pbx-{first}"]
        assert (_cmd(first).claimed_by, _cmd(second).claimed_by) == ("south", "north")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.communicate(timeout=20)


def test_a_bad_pbx_name_stops_the_listener_with_the_reason(sqlite_env) -> None:
    proc = _ami_process(5038, flag="north; rm")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "invalid PBX name" in err.decode()
