#!/usr/bin/env python3
"""Record real Asterisk AMI streams for hotline's conformance tests (issue #16).

Starts an already-installed Asterisk (22.x; ASTERISK_ROOT is its install prefix, default
/tmp/asterisk-root) with a throw-away configuration made from deploy/asterisk/*.conf, plays one
scenario per Asterisk start, and writes for each scenario into tests/fixtures/ami/<scenario>/:

  filtered.ami   the bytes a connection logged in exactly as ``hotline ami`` does received (the
                 sample manager.conf user, ``Events: call,agent``, one ``Filter`` per event name
                 the listener filters on, then its resync actions and keepalive pings), byte for
                 byte, banner first;
  all.ami        the bytes of a second connection with all events on and no filter;
  filtered-2.ami / all-2.ami   the next connection segment, in the outage/restart scenarios;
  queue_log      what app_queue wrote to its queue_log file during the scenario;
  expected.json  the truth from the scenario script (one record per real call);
  README.md      what happened, with the timeline the script followed.

Callers are Local channels (``Local/caller@caller-phone/n``): the ``;2`` half is the caller's
phone (answers, hangs up after HANGUP_AFTER s), the ``;1`` half enters the sample [hotline-in]
dial plan like a trunk call.  Counsellors are static queue members ``Local/tvvN@phones/n`` (the
stand-in for ``PJSIP/tvvN``); [phones] rings, answers after RING s, and hangs up after TALK s,
as the script sets per counsellor through global variables.  Transfers, pickups and the
conference are driven with AMI actions (BlindTransfer, Atxfer, PlayDTMF, Hangup, Originate).
Calls hotline places itself (``callback``, ``listen_in``) are sent on the filtered connection as
``hotline ami`` sends them, built by ``hotline.pbx.asterisk.originate``.
Trunk scenarios (``trunk_overflow*``) start TWO Asterisks, ``north`` and ``south`` (``systemname``,
``HOTLINE_PBX``), joined by the sample IAX2 trunk (deploy/asterisk/iax.conf on loopback ports;
needs chan_iax2, res_crypto and func_dialplan, which build.sh enables): the caller calls north,
whose overflow branch dials south's queue; each PBX's streams and queue_log go to <scenario>/north/
and <scenario>/south/ (expected.json: ``pbxes``, ``trunk``, each call's ``peer_linkedid``).

Build:  ASTERISK_SRC=<a clone of github.com/asterisk/asterisk> bash scripts/asterisk/build.sh  (22.10.1, ~6 min)
Usage:  .venv/bin/python scripts/asterisk/record.py [--list] [SCENARIO ...]
No Asterisk source or binary is part of the repository: install Asterisk 22 yourself (its own
documentation), with at least app_queue, app_dial, app_directed_pickup, app_playback,
app_originate, app_chanspy, func_callerid, func_global, func_strings, func_logic, pbx_config,
bridge_simple, bridge_builtin_features, res_timing_timerfd and the core Local channels;
no PJSIP, no sound packages (the few prompts the transfer features play are written as silence).
The dialplan's HTTP lookups (blocking check, the line's route, callback request) reach HotlineHttp, a
stand-in for hotline inside this script answering as the scenario says (kept in expected.json "http").
Options: --list; --hotline DIR also runs this checkout's `hotline ami` against every scenario
(SQLite in DIR) and compares `hotline calls export` with expected.json (fixtures untouched).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "deploy" / "asterisk"
OUT = REPO / "tests" / "fixtures" / "ami"
ROOT = Path(os.environ.get("ASTERISK_ROOT", "/tmp/asterisk-root"))
RECORDER_SECRET = "recorder-secret"
HOTLINE_SECRET = "hotline-secret"

AGENTS = {  # member interface -> (hotline user name, member name)
    "tvv1": "Tư vấn viên 1",
    "tvv2": "Tư vấn viên 2",
    "tvv3": "Tư vấn viên 3",
    "tvv4": "TP.HCM Tư vấn viên 4",  # a counsellor of the overflow centre (scenario overflow)
    "gs1": "Giám sát viên 1",  # a supervisor (the supervisors' queue)
}


def iface(agent: str) -> str:
    return f"Local/{agent}@phones/n"


def listener_filter() -> tuple[str, list[str]]:
    """The login event classes and Filter event names ``hotline ami`` uses, from its own code."""
    sys.path.insert(0, str(REPO))
    try:
        from hotline.ingest.providers.asterisk import translator as proto
    except ImportError:
        from hotline.ingest.ami import protocol as proto
    try:
        from hotline.ingest.providers.asterisk import listener as lst
    except ImportError:
        from hotline.ingest.ami import listener as lst
    import inspect

    events = inspect.signature(lst.AmiListener.__init__).parameters["events"].default
    return events, [*proto.CALL_EVENT_NAMES, *getattr(lst, "ACTION_EVENT_NAMES", ())]


# ---------------------------------------------------------------------- configuration
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PHONES = r"""
; ---- recording stand-ins (scripts/asterisk/record.py), not part of the shipped sample ----
[trunk-sim]
; what a trunk would deliver: number, presentation and name of the scenario's caller
; (AMI shows the presentation only in NewCallerid, sent when the number or name changes: with
; PRES_LATE=1 it is set after them, as on a trunk that sets it when the channel is created)
exten => s,1,Set(CALLERID(num)=${CALLER_NUM})
 same => n,ExecIf($["${CALLER_PRES}" != "" & "${PRES_LATE}" != "1"]?Set(CALLERID(num-pres)=${CALLER_PRES}))
 same => n,ExecIf($["${CALLER_PRES}" != "" & "${PRES_LATE}" != "1"]?Set(CALLERID(name-pres)=${CALLER_PRES}))
 same => n,ExecIf($["${CALLER_NAME}" != ""]?Set(CALLERID(name)=${CALLER_NAME}))
 same => n,ExecIf($["${CALLER_PRES}" != "" & "${PRES_LATE}" = "1"]?Set(CALLERID(num-pres)=${CALLER_PRES}))
 same => n,ExecIf($["${CALLER_PRES}" != "" & "${PRES_LATE}" = "1"]?Set(CALLERID(name-pres)=${CALLER_PRES}))
 same => n,Goto(hotline-in,18001234,1)

[caller-phone]
; the caller's phone: answers at once, hangs up after HANGUP_AFTER s (CALLER_AUDIO=1: sends silent
; audio meanwhile, so a key the script presses (PlayDTMF) gets through the Local channel)
exten => caller,1,Answer()
 same => n,GotoIf($["${CALLER_AUDIO}" = "1"]?audio)
 same => n,Wait(${HANGUP_AFTER})
 same => n,Hangup()
 same => n(audio),Set(TIMEOUT(absolute)=${HANGUP_AFTER})
 same => n,Playback(silence30)
 same => n,Wait(3600)

[phones]
; a counsellor's phone (stands for PJSIP/tvvN): busy, rings RING s then answers and talks
; TALK s, or rings until the caller or the queue gives up (MODE=noanswer)
exten => _[gt][sv][v0-9]!,1,Set(MODE=${GLOBAL(PHONE_${EXTEN}_MODE)})
 same => n,ExecIf($["${GLOBAL(FIRST_NOANSWER)}" = "1"]?Set(MODE=noanswer))
 same => n,Set(GLOBAL(FIRST_NOANSWER)=0)
 same => n,GotoIf($["${MODE}" = "busy"]?busy)
 same => n,Ringing()
 same => n,GotoIf($["${MODE}" = "noanswer"]?forever)
 same => n,Wait(${GLOBAL(PHONE_${EXTEN}_RING)})
 same => n,Answer()
; MODE=audio: the phone sends 30 s of (silent) audio: DTMF from the phone (transfer codes) only
; gets through a Local channel while frames flow
 same => n,ExecIf($["${MODE}" = "audio"]?Playback(silence30))
 same => n,Wait(${GLOBAL(PHONE_${EXTEN}_TALK)})
 same => n,Hangup()
 same => n(forever),Wait(3600)
 same => n,Hangup()
 same => n(busy),Busy(10)

[outside]
; an outside number a counsellor transfers to: answers after 2 s, talks OUTSIDE_TALK s
exten => _0X.,1,Ringing()
 same => n,Wait(2)
 same => n,Answer()
 same => n,Wait(${GLOBAL(OUTSIDE_TALK)})
 same => n,Hangup()

[supervisor-phone]
; a supervisor's own phone (stands for PJSIP/gs1): answers after 1 s and listens until the far end
; (ChanSpy) hangs up
exten => _gsX,1,Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait(3600)
 same => n,Hangup()

[pickup-phone]
; a counsellor's phone picking up a ringing colleague's call (directed pickup)
exten => _tvvX,1,Answer()
 same => n,PickupChan(${PICK_TARGET})
 same => n,Hangup()

[idle]
exten => wait,1,Answer()
 same => n,Wait(3600)
"""


def make_config(work: Path, port: int, sc: Scenario, side: Side | None = None) -> Path:
    """The scenario's configuration; ``side``: one of the two PBXes of a trunk scenario."""
    etc = work / "etc"
    for d in ("etc", "log", "run", "spool", "lib", "db", "keys"):
        (work / d).mkdir(parents=True, exist_ok=True)
    # 0.2 s of silence for the prompts the transfer features play (no sound packages are installed;
    # without "pbx-transfer" an attended transfer is cancelled at once)
    for lang in ("", "en", "vi"):
        sounds = work / "data" / "sounds" / lang
        sounds.mkdir(parents=True, exist_ok=True)
        for prompt in ("pbx-transfer", "pbx-invalid", "beep"):
            (sounds / f"{prompt}.sln").write_bytes(bytes(3200))
        (sounds / "silence30.sln").write_bytes(bytes(16000 * 30))
    # the XML documentation of a build with docs (stasis refuses to start without its types' docs)
    for docs in (ROOT / "var" / "lib" / "asterisk" / "documentation", ROOT / "share" / "asterisk" / "documentation"):
        if docs.is_dir() and not (work / "data" / "documentation").exists():
            (work / "data" / "documentation").symlink_to(docs)
    (etc / "asterisk.conf").write_text(f"""[directories]
astetcdir => {etc}
astmoddir => {ROOT}/lib/asterisk/modules
astvarlibdir => {work}/lib
astdbdir => {work}/db
astkeydir => {work}/keys
astdatadir => {work}/data
astagidir => {work}/lib/agi-bin
astspooldir => {work}/spool
astrundir => {work}/run
astlogdir => {work}/log
astsbindir => {ROOT}/sbin
[options]
nocolor = yes
verbose = 3
""" + (f"systemname = {side.name}\n" if side is not None else ""))
    # systemname: two PBXes number channels <epoch>.<counter> each, so the first channels of one second
    # get the same Uniqueid on both (seen: a caller sent over the trunk within the second); the name
    # makes them north-…, south-… (deploy/asterisk/README.md)
    # Asterisk built with its XML documentation refuses to start (stasis) without it in astdatadir
    docs = ROOT / "var" / "lib" / "asterisk" / "documentation"
    if docs.is_dir() and not (work / "data" / "documentation").exists():
        (work / "data" / "documentation").symlink_to(docs)
    # the messages a caller must hear out before pressing a key (Read() hangs up on a missing file)
    for prompt in ("closed", "callback-thanks", "blocked", "goodbye"):  # hotline/…, 1 s of silence
        (work / "data" / "sounds" / "vi" / "hotline").mkdir(parents=True, exist_ok=True)
        (work / "data" / "sounds" / "vi" / "hotline" / f"{prompt}.sln").write_bytes(bytes(16000))
    (etc / "modules.conf").write_text("[modules]\nautoload = yes\nnoload => res_musiconhold.so\n"
                                        + "".join(f"noload => {m}.so\n" for m in (
                                            "app_mixmonitor", "app_stack", "cdr_csv", "cdr_custom", "cel_custom"))
                                        + ("" if side else "noload => chan_iax2.so\n"))
    if side is not None:  # the IAX2 trunk between the two PBXes: the sample, on loopback
        iax = (SAMPLES / "iax.conf").read_text(encoding="utf-8")
        iax = re.sub(r"(?m)^bindport = .*$", f"bindport = {side.iax_port}", iax)
        iax = re.sub(r"(?m)^bindaddr = .*$", "bindaddr = 127.0.0.1", iax)
        iax = re.sub(r"(?m)^host = .*$", f"host = 127.0.0.1\nport = {side.peer_iax_port}", iax)
        iax = re.sub(r"(?m)^secret = .*$", "secret = recorder-trunk-secret", iax)
        if side.name != "north":  # the other PBX's copy: the section names north, which calls as south
            iax = iax.replace("[hotline-south]", "[hotline-north]").replace(
                "username = hotline-north", "username = hotline-south")
        (etc / "iax.conf").write_text(iax, encoding="utf-8")
    shutil.copy(SAMPLES / "logger.conf", etc / "logger.conf")
    shutil.copy(SAMPLES / "features.conf", etc / "features.conf")
    (etc / "cdr.conf").write_text("[general]\nenable = no\n")
    (etc / "confbridge.conf").write_text("[general]\n[default_user]\ntype = user\nquiet = yes\n"
                                         "[default_bridge]\ntype = bridge\n")
    # manager.conf: the sample, on loopback and a free port, plus the recorder's own user
    manager = (SAMPLES / "manager.conf").read_text(encoding="utf-8")
    manager = re.sub(r"(?m)^port = .*$", f"port = {port}", manager)
    manager = re.sub(r"(?m)^bindaddr = .*$", "bindaddr = 127.0.0.1", manager)
    manager = re.sub(r"(?m)^permit = .*$", "permit = 127.0.0.1/255.255.255.255", manager)
    manager = re.sub(r"(?m)^secret = .*$", f"secret = {HOTLINE_SECRET}", manager)
    manager += (f"\n[recorder]\nsecret = {RECORDER_SECRET}\ndeny = 0.0.0.0/0.0.0.0\n"
                "permit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\nwritetimeout = 5000\n")
    (etc / "manager.conf").write_text(manager, encoding="utf-8")
    # queues.conf: the sample with the scenario's members (Local stand-ins for PJSIP/tvvN)
    queues = (SAMPLES / "queues.conf").read_text(encoding="utf-8")
    queues = re.sub(r"(?m)^member => .*\n", "", queues)
    for key, value in sc.queue_options.items():
        queues = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", queues)
    # each queue's members in its own section (the sample ends with [hotline-supervisors])
    queues = queues.replace("\n[hotline]\n", "\n[hotline]\n" + "".join(
        f"member => {iface(a)},0,{AGENTS[a]}\n" for a in (side.members if side else sc.members)), 1)
    queues = queues.replace("\n[hotline-supervisors]\n", "\n[hotline-supervisors]\n" + "".join(
        f"member => {iface(a)},0,{AGENTS[a]}\n" for a in sc.supervisors), 1)
    for name, members in (side.queues if side else sc.other_queues).items():  # another centre's queue
        queues += (f"\n[{name}]\nstrategy = rrmemory\ntimeout = 20\ntimeoutpriority = app\nretry = 2\n"
                   "joinempty = yes\nleavewhenempty = no\nringinuse = no\nautopause = no\n"
                   + "".join(f"member => {iface(a)},0,{AGENTS[a]}\n" for a in members))
    (etc / "queues.conf").write_text(queues, encoding="utf-8")
    # extensions.conf: the sample's [hotline-in], counsellors reached through [phones]
    ext = (SAMPLES / "extensions.conf").read_text(encoding="utf-8")
    ext = re.sub(r"(?m)^HOTLINE_QUEUE_TIMEOUT=.*$", f"HOTLINE_QUEUE_TIMEOUT={sc.queue_timeout}", ext)
    if side is not None:
        ext = re.sub(r"(?m)^HOTLINE_PBX=.*$", f"HOTLINE_PBX={side.name}", ext)
        if not sc.trunk_origin:  # a dial plan that does not pass the call's identity across the trunk
            ext = re.sub(r"(?m)^(exten => [^,]+,1|\s*same => n),(?!NoOp).*HOTLINE_ORIGIN.*$",
                         r"\1,NoOp(no HOTLINE_ORIGIN across the trunk)", ext)
    if HTTP is not None:  # the dialplan's lookups reach the recorder's stand-in for hotline
        ext = re.sub(r"(?m)^HOTLINE_URL=.*$", f"HOTLINE_URL={HTTP.url}", ext)
        ext = re.sub(r"(?m)^HOTLINE_API_TOKEN=.*$", f"HOTLINE_API_TOKEN={HTTP.TOKEN}", ext)
    ext = re.sub(r"Dial\(PJSIP/(tvv\d+),30\)", r"Dial(Local/\1@phones/n,30)", ext)
    # callbacks dial the number through the trunk: here the [outside] stand-in
    ext = ext.replace("Dial(PJSIP/${EXTEN}@${HOTLINE_TRUNK},30)", "Dial(Local/${EXTEN}@outside/n,30)")
    ext += "[counsellors]\nexten => _0X.,1,Dial(Local/${EXTEN}@outside/n,30)\n same => n,Hangup()\n"
    ext += PHONES
    (etc / "extensions.conf").write_text(ext, encoding="utf-8")
    return etc / "asterisk.conf"


# ---------------------------------------------------------------------- AMI connections
def parse(frame: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in frame.decode("utf-8", "replace").split("\r\n"):
        if ": " in line:
            k, v = line.split(": ", 1)
            out.setdefault(k, v)
    return out


class Ami:
    """One AMI connection; keeps every byte received, parses frames for the script."""

    def __init__(self, port: int, name: str):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(None)
        self.data = bytearray()
        self.frames: list[dict[str, str]] = []
        self.cv = threading.Condition()
        self.closed = False
        self._n = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        banner = False
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cv:
                    self.closed = True
                    self.cv.notify_all()
                return
            with self.cv:
                self.data += chunk
                buf += chunk
                if not banner and b"\r\n" in buf:
                    buf = buf.split(b"\r\n", 1)[1]
                    banner = True
                while b"\r\n\r\n" in buf:
                    frame, buf = buf.split(b"\r\n\r\n", 1)
                    self.frames.append(parse(frame))
                self.cv.notify_all()

    def send(self, name: str, action_id: str | None = None, **keys: str) -> str:
        with self._lock:
            self._n += 1
            aid = action_id or f"rec-{self.name}-{self._n}"
        lines = [f"Action: {name}", f"ActionID: {aid}"] + [f"{k}: {v}" for k, v in keys.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        return aid

    def wait(self, pred: Callable[[dict[str, str]], bool], timeout: float = 10, start: int = 0) -> dict[str, str]:
        end = time.monotonic() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.frames):
                    if pred(self.frames[i]):
                        return self.frames[i]
                    i += 1
                left = end - time.monotonic()
                if left <= 0 or self.closed:
                    raise TimeoutError(f"{self.name}: nothing matched")
                self.cv.wait(left)

    def action(self, name: str, timeout: float = 10, **keys: str) -> dict[str, str]:
        aid = self.send(name, **keys)
        return self.wait(lambda f: f.get("ActionID") == aid and "Response" in f, timeout)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class ListenerConn(Ami):
    """Logs in and filters exactly as hotline ami's listener does, and pings like it."""

    def __init__(self, port: int, n0: int = 0):
        super().__init__(port, "filtered")
        self._id = n0
        events, names = listener_filter()
        self.send("Login", self._next("login"), Username="hotline", Secret=HOTLINE_SECRET, Events=events)
        self.wait(lambda f: f.get("Response") is not None)
        for name in names:
            self.send("Filter", self._next("filter"), Operation="Add", Filter=f"Event: {name}")
        self.send("CoreShowChannels", self._next("resync"))
        self.send("QueueStatus", self._next("resync"))
        self._stop = threading.Event()
        threading.Thread(target=self._ping, daemon=True).start()

    def _next(self, kind: str) -> str:
        self._id += 1
        return f"hotline-{kind}-{self._id}"

    def _ping(self) -> None:
        while not self._stop.wait(10.0):
            try:
                self.send("Ping", self._next("ping"))
            except OSError:
                return

    def originate(self, **keys: str) -> dict[str, str]:
        """An Originate built by hotline's own code (hotline.pbx.asterisk), as hotline ami sends it;
        returns its OriginateResponse."""
        action_id = keys.pop("ActionID")
        self.send("Originate", action_id, **keys)
        return self.wait(lambda f: f.get("Event") == "OriginateResponse" and f.get("ActionID") == action_id, 60)

    def queue_pause(self, agent: str, paused: bool) -> None:
        self.send("QueuePause", self._next("pause"), Interface=iface(agent), Paused="true" if paused else "false")

    def close(self) -> None:
        self._stop.set()
        super().close()


def all_conn(port: int) -> Ami:
    a = Ami(port, "all")
    a.send("Login", "login-1", Username="recorder", Secret=RECORDER_SECRET, Events="on")
    a.wait(lambda f: f.get("Response") is not None)
    return a


# ---------------------------------------------------------------------- Asterisk process
class Pbx:
    def __init__(self, sc: Scenario, side: Side | None = None):
        self.work = Path(tempfile.mkdtemp(prefix=f"ast-{sc.name}-{side.name + '-' if side else ''}"))
        self.port = free_port()
        self.side = side
        self.conf = make_config(self.work, self.port, sc, side)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.work / "console.log", "ab")  # noqa: SIM115 - kept open for the process
        self.proc = subprocess.Popen([str(ROOT / "sbin" / "asterisk"), "-C", str(self.conf), "-f", "-n", "-g"],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_up()

    def wait_up(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                a = Ami(self.port, "probe")
                a.send("Login", "probe", Username="recorder", Secret=RECORDER_SECRET, Events="system")
                a.wait(lambda f: f.get("Status") == "Fully Booted" or f.get("Event") == "FullyBooted", 3)
                a.close()
                return
            except (OSError, TimeoutError):
                time.sleep(0.3)
        raise RuntimeError(f"Asterisk did not come up; see {self.work}/console.log")

    def cli(self, command: str) -> str:
        return subprocess.run([str(ROOT / "sbin" / "asterisk"), "-C", str(self.conf), "-rx", command],
                              capture_output=True, text=True, timeout=30).stdout

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.cli("core stop now")
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------- scenarios
@dataclass
class Scenario:
    name: str
    title: str
    play: Callable[[Run], None]
    members: tuple[str, ...] = ("tvv1", "tvv2")
    queue_timeout: int = 180
    queue_options: dict[str, str] = field(default_factory=dict)
    # what the recorder's stand-in for hotline answers the dialplan (see HotlineHttp)
    route: str = "route=open&queue=hotline&wait=&overflow="
    blocked: tuple[str, ...] = ()  # caller numbers /api/blocking/check says are blocked
    supervisors: tuple[str, ...] = ()  # members of [hotline-supervisors]
    other_queues: dict[str, tuple[str, ...]] = field(default_factory=dict)  # another centre's queue: members
    centres: dict[str, dict[str, Any]] = field(default_factory=dict)  # expected.json: centre code -> queues, agents
    # Two PBXes joined by an IAX2 trunk (the line's overflow centre on the other PBX): each PBX's
    # name, queue members and other queues; the caller calls the first.
    pbxes: tuple[Side, ...] = ()
    trunk_origin: bool = True  # the dial plans pass HOTLINE_ORIGIN across the trunk (the samples do)


@dataclass
class Side:
    """One PBX of a trunk scenario (its name is HOTLINE_PBX and its listener's, hotline-ami@NAME)."""

    name: str
    members: tuple[str, ...] = ()  # of its [hotline] queue
    queues: dict[str, tuple[str, ...]] = field(default_factory=dict)  # its other queues: members
    iax_port: int = 0
    peer_iax_port: int = 0


class HotlineHttp:
    """A stand-in for hotline's HTTP lookups the dialplan makes with func_curl (the recorder does
    not run ``hotline web``): /api/blocking/check, /api/blocking/pressed, /api/lines/route and
    /api/lines/callback-request answer as hotline would for the scenario, and every request is
    kept (expected.json "http", the README's timeline)."""

    TOKEN = "recorder-api-token"

    def __init__(self) -> None:
        self.scenario: Scenario | None = None
        self.requests: list[dict[str, Any]] = []
        self.on_request: Callable[[str], None] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                text = outer.answer(parts.path, query, self.headers.get("Authorization", ""))
                outer.requests.append({"method": self.command, "path": parts.path, "query": query, "body": body,
                                       "answer": text})
                if outer.on_request:
                    outer.on_request(f"hotline (stand-in) {self.command} {parts.path} {parts.query} -> {text}")
                data = text.encode()
                self.send_response(200 if text != "unauthorised" else 401)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, query: dict[str, str], auth: str) -> str:
        if auth != f"Bearer {self.TOKEN}":
            return "unauthorised"
        sc = self.scenario
        if path == "/api/blocking/check":
            return "blocked=1" if sc and query.get("number") in sc.blocked else "blocked=0"
        if path == "/api/lines/route":
            return sc.route if sc else "route=open&queue=hotline&wait=&overflow="
        if path in ("/api/blocking/pressed", "/api/lines/callback-request"):
            return "ok"
        return "not found"


HTTP: HotlineHttp | None = None


class HotlineAmi:
    """``hotline ami`` itself (the --hotline check), against the scenario's Asterisk."""

    def __init__(self, env: dict[str, str], port: int, log: Path, name: str = ""):
        self.env, self.port, self.log, self.name = env, port, log, name  # name: the PBX's (trunk scenarios)
        self.proc: subprocess.Popen[bytes] | None = None

    def wait_connected(self, pbx: Pbx, timeout: float = 60) -> None:
        """Until hotline ami has a session (besides the recorder's own `hotline` login)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            sessions = [ln for ln in pbx.cli("manager show connected").splitlines() if ln.split()[:1] == ["hotline"]]
            if len(sessions) >= 2:
                time.sleep(1.0)  # its filters and resync
                return
            time.sleep(0.3)
        print("  !! hotline ami did not connect")

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - kept open for the process
        self.proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "hotline"), "--log-format", "json", "ami",
                                      "--port", str(self.port), *(["--name", self.name] if self.name else [])],
                                     env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     cwd=self.env["HOTLINE_DATA_DIR"])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


HOTLINE_ENV: dict[str, str] | None = None


def hotline_env(data: Path) -> dict[str, str]:
    """A fresh SQLite hotline with the queue line and the three counsellors mapped."""
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOTLINE_DATA_DIR": str(data), "HOTLINE_DATABASE_URL": os.environ.get(
        "HOTLINE_LIVE_DATABASE_URL", f"sqlite:///{data}/hotline.db"), "HOTLINE_REDIS_URL": "",
        # no wrap-up pause from hotline's presence (it needs `hotline worker` to end it): the
        # queue's own wrapuptime paces the counsellors in the scenarios
        "HOTLINE_WRAP_UP_SECONDS": os.environ.get("HOTLINE_WRAP_UP_SECONDS", "0"),
        "HOTLINE_AMI_USERNAME": "hotline", "HOTLINE_AMI_SECRET": HOTLINE_SECRET, "HOTLINE_AMI_HOST": "127.0.0.1"}
    hl = str(REPO / ".venv" / "bin" / "hotline")

    def run(*args: str, stdin: str | None = None) -> None:
        r = subprocess.run([hl, *args], env=env, cwd=data, capture_output=True, text=True, input=stdin)
        if r.returncode:
            print(f"  hotline {' '.join(args)}: rc={r.returncode} {r.stderr.strip()[-300:]}")

    run("db", "upgrade")
    run("centre", "add", "default", "Default centre")
    run("line", "add", "--centre", "default", "--provider", "asterisk", "--kind", "queue", "hotline")
    # the overflow centre's queue (overflow, trunk_overflow*): calls there are that centre's, or the
    # line's centre's overflowed to it
    for code, centre in OVERFLOW_CENTRES.items():
        run("centre", "add", code, centre["name"])
        for q in centre["queues"]:
            run("line", "add", "--centre", code, "--provider", "asterisk", "--kind", "queue", q)
    for a, name in AGENTS.items():
        run("user", "create", "--role", "counsellor", "--centre", "default", "--name", name, "--password-stdin", a,
            stdin="Recorder-Pass-2026!\n")
        run("agent", "map", "--centre", "default", "--provider", "asterisk", iface(a), "--username", a)
    return env


class Run:
    def __init__(self, sc: Scenario, pbx: Pbx, parent: Run | None = None):
        self.sc, self.pbx = sc, pbx
        self.label = f"[{pbx.side.name}] " if pbx.side else ""
        self.peer: Run | None = None  # a trunk scenario's other PBX (its own connections)
        # one hotline ami per PBX, named as hotline-ami@NAME names it (a trunk scenario's two PBXes)
        self.hotline = HotlineAmi(HOTLINE_ENV, pbx.port, pbx.work / "hotline-ami.log",
                                  pbx.side.name if pbx.side else "") if HOTLINE_ENV else None
        if self.hotline:
            self.hotline.start()
        self.t0 = parent.t0 if parent else time.monotonic()
        self.timeline: list[str] = parent.timeline if parent else []
        self.calls: list[dict[str, Any]] = parent.calls if parent else []
        self.segments: dict[str, list[bytes]] = {"filtered": [], "all": []}
        self.gaps: list[dict[str, float]] = []
        self.n = 0
        self.connect()
        if self.hotline:
            self.hotline.wait_connected(pbx)

    # connections
    def connect(self) -> None:
        self.listener = ListenerConn(self.pbx.port, n0=100 * len(self.segments["filtered"]))
        self.all = all_conn(self.pbx.port)
        self.ctl = Ami(self.pbx.port, "ctl")
        self.ctl.send("Login", "ctl", Username="recorder", Secret=RECORDER_SECRET, Events="call")
        self.ctl.wait(lambda f: f.get("Response") is not None)
        time.sleep(0.5)

    def finish_segment(self, which: str) -> None:
        conn = self.listener if which == "filtered" else self.all
        conn.close()
        time.sleep(0.2)
        self.segments[which].append(bytes(conn.data))

    def disconnect_listener(self) -> None:
        self.finish_segment("filtered")
        self.gaps.append({"listener_away_from_s": round(time.monotonic() - self.t0, 2)})
        if self.hotline:
            self.hotline.stop()
        self.log("the listener's connection is closed (hotline ami away)")

    def reconnect_listener(self) -> None:
        self.listener = ListenerConn(self.pbx.port, n0=100 * len(self.segments["filtered"]))
        self.gaps[-1]["listener_back_at_s"] = round(time.monotonic() - self.t0, 2)
        if self.hotline:
            self.hotline.start()
            self.hotline.wait_connected(self.pbx)
        self.log("the listener logs in again (filtered-2.ami): filters, CoreShowChannels, QueueStatus")

    def restart_pbx(self) -> None:
        self.log("core restart now (all connections drop)")
        self.ctl.send("Command", Command="core restart now")
        for conn in (self.listener, self.all, self.ctl):
            with conn.cv:
                end = time.monotonic() + 20
                while not conn.closed and time.monotonic() < end:
                    conn.cv.wait(0.5)
        self.segments["filtered"].append(bytes(self.listener.data))
        self.segments["all"].append(bytes(self.all.data))
        self.gaps.append({"pbx_restart_at_s": round(time.monotonic() - self.t0, 2)})
        self.pbx.wait_up()
        self.connect()
        if self.hotline:
            self.hotline.wait_connected(self.pbx)
        self.gaps[-1]["reconnected_at_s"] = round(time.monotonic() - self.t0, 2)
        self.log("Asterisk is back; the listener and the all-events connection log in again")

    def log(self, text: str) -> None:
        line = f"t+{time.monotonic() - self.t0:5.1f} s  {self.label}{text}"
        self.timeline.append(line)
        print(f"  {line}", flush=True)

    def sleep(self, s: float) -> None:
        time.sleep(s)

    # counsellors
    def phone(self, agent: str, mode: str = "answer", ring: float = 2, talk: float = 3600) -> None:
        for k, v in (("MODE", mode), ("RING", ring), ("TALK", talk)):
            r = self.ctl.action("Setvar", Variable=f"PHONE_{agent}_{k}", Value=str(v))
            assert r.get("Response") == "Success", r
        what = {"answer": f"answers after {ring:g} s and hangs up after {talk:g} s of talk",
                "audio": f"answers after {ring:g} s and sends audio (so its DTMF transfer codes get through)",
                "noanswer": "rings without answering", "busy": "is busy"}[mode]
        self.log(f"{agent}'s phone {what}" if not (mode == "answer" and talk >= 3600)
                 else f"{agent}'s phone answers after {ring:g} s (the other side ends the call)")

    def pause(self, agent: str, paused: bool) -> None:
        self.listener.queue_pause(agent, paused)
        self.log(f"QueuePause {iface(agent)} Paused={'true' if paused else 'false'} (sent as the listener does)")

    # callers
    def caller(self, number: str, name: str = "", pres: str = "", hangup_after: float = 3600,
               pres_late: bool = False, audio: bool = False) -> str:
        """pres: Asterisk's name for the presentation (``prohib``, ``unavailable`` …; "prohibited" is
        not one: Asterisk logs an error and keeps "allowed")."""
        self.n += 1
        variables = (f"CALLER_NUM={number},CALLER_NAME={name},CALLER_PRES={pres},HANGUP_AFTER={hangup_after:g},"
                     f"PRES_LATE={int(pres_late)},CALLER_AUDIO={int(audio)}")
        r = self.ctl.action("Originate", Channel="Local/caller@caller-phone/n", Context="trunk-sim", Exten="s",
                            Priority="1", Async="true", Variable=variables,
                            CallerID=f'"{name}" <{number}>' if name and (not pres or pres_late) else number)
        assert r.get("Response") == "Success", r
        bits = [f"caller {number}"] + ([f'name "{name}"'] if name else []) + ([f"presentation {pres}"] if pres else [])
        self.log(", ".join(bits) + " calls the hotline"
                 + (f" (hangs up after {hangup_after:g} s)" if hangup_after < 3600 else ""))
        return number

    def press(self, key: str) -> None:
        """The caller presses a key on their phone (DTMF from the caller's side of the Local channel)."""
        chan = self.channel("Local/caller@caller-phone-", ";2")
        self.act("PlayDTMF", Channel=chan, Digit=key, Duration="250")

    # channels
    def channel(self, prefix: str, suffix: str = ";1") -> str:
        """The newest live channel whose name starts with prefix."""
        live: dict[str, str] = {}
        with self.ctl.cv:
            for f in self.ctl.frames:
                if f.get("Event") == "Newchannel":
                    live[f["Channel"]] = f.get("Uniqueid", "")
                elif f.get("Event") == "Hangup":
                    live.pop(f.get("Channel", ""), None)
        names = [c for c in live if c.startswith(prefix) and c.endswith(suffix)]
        if not names:
            raise RuntimeError(f"no live channel {prefix}…{suffix}: {list(live)}")
        return names[-1]

    def agent_channel(self, agent: str) -> str:
        return self.channel(f"Local/{agent}@phones-", ";1")

    def act(self, name: str, **keys: str) -> dict[str, str]:
        r = self.ctl.action(name, **keys)
        self.log(f"AMI {name} {' '.join(f'{k}={v}' for k, v in keys.items())} -> {r.get('Response')}"
                 + (f" ({r.get('Message')})" if r.get("Response") != "Success" else ""))
        return r

    # truth
    def expect(self, number: str, status: str, wait_s: float | None, talk_s: float | None,
               answered_by: str | None, name: str = "", pres: str = "allowed", parts: list[dict[str, Any]] | None = None,
               notes: str = "", **extra: Any) -> None:
        rec: dict[str, Any] = {
            "status": status, "wait_s": wait_s, "talk_s": talk_s,
            "answered_by": iface(answered_by) if answered_by and answered_by != "?" else answered_by,
            "answered_by_user": answered_by,
            "parts": [{"agent": iface(p["agent"]), "user": p["agent"], "talk_s": p["talk_s"]} for p in parts or []],
            "caller": {"number": number, "presentation": pres, "name": name or None},
            "notes": notes,
        }
        rec.update(extra)
        self.calls.append(rec)


def s_answered(r: Run) -> None:
    r.phone("tvv1", "answer", ring=2)
    r.caller("0901234567", "Nguyen Van A", hangup_after=8)
    r.sleep(11)
    r.expect("0901234567", "completed", 2, 6, "tvv1", name="Nguyen Van A",
             notes="tvv1 answers after ringing 2 s; the caller hangs up after 6 s of talk "
                   "(AgentComplete Reason: caller).")


def s_agent_hangup(r: Run) -> None:
    r.phone("tvv1", "answer", ring=2, talk=6)
    r.caller("0901234568", "Nguyen Van E")
    r.sleep(11)
    r.expect("0901234568", "completed", 2, 6, "tvv1", name="Nguyen Van E",
             notes="tvv1 answers after ringing 2 s, talks 6 s and hangs up first (AgentComplete Reason: agent); "
                   "the caller's channel is hung up by Asterisk after it.")


def s_abandoned(r: Run) -> None:
    r.pause("tvv1", True)
    r.pause("tvv2", True)
    r.sleep(1)
    r.caller("0912345678", "Tran Thi B", hangup_after=8)
    r.sleep(11)
    r.expect("0912345678", "abandoned", 8, None, None, name="Tran Thi B",
             notes="All counsellors away (paused through QueuePause, as hotline's presence does); the caller "
                   "waits 8 s and hangs up. The caller's HangupRequest comes before QueueCallerAbandon.")


def s_abandoned_ringing(r: Run) -> None:
    r.phone("tvv1", "noanswer")
    r.pause("tvv2", True)
    r.sleep(1)
    r.caller("0987654321", "Le Van C", hangup_after=7)
    r.sleep(10)
    r.expect("0987654321", "abandoned", 7, None, None, name="Le Van C",
             notes="tvv1's phone rings (AgentCalled) and is never answered; the caller hangs up after 7 s "
                   "while it rings (AgentRingNoAnswer follows the caller's hangup).", offered_to=[iface("tvv1")])


def s_queue_timeout(r: Run) -> None:
    r.phone("tvv1", "noanswer")
    r.pause("tvv2", True)
    r.sleep(1)
    r.caller("0903333444", "Pham Van D")
    r.sleep(18)
    r.expect("0903333444", "missed", 12, None, None, name="Pham Van D",
             notes="Queue(hotline,t,,,12): tvv1 rings and never answers; at 12 s the queue times out "
                   "(QUEUESTATUS=TIMEOUT). Asterisk sends QueueCallerAbandon although the caller did not hang up; "
                   "the caller's channel stays up and goes to the overflow branch (Playback) before hanging up.",
             offered_to=[iface("tvv1")])


def s_joinempty(r: Run) -> None:
    r.pause("tvv1", True)
    r.pause("tvv2", True)
    r.sleep(1)
    r.caller("0904444555", "Hoang Van F")
    r.sleep(5)
    r.expect("0904444555", "missed", 0, None, None, name="Hoang Van F",
             notes="joinempty = paused,unavailable,invalid and every counsellor away: Queue() returns at once "
                   "with QUEUESTATUS=JOINEMPTY, there is no QueueCallerJoin at all, the caller hears the overflow "
                   "message. The call reached the hotline and nobody could answer: missed.")


def s_leavewhenempty(r: Run) -> None:
    r.phone("tvv1", "noanswer")
    r.pause("tvv2", True)
    r.sleep(1)
    r.caller("0904444666", "Hoang Thi G")
    r.sleep(5)
    r.pause("tvv1", True)
    r.sleep(22)
    r.expect("0904444666", "missed", 20, None, None, name="Hoang Thi G",
             notes="leavewhenempty = paused,unavailable,invalid: tvv1 rings, and goes away (paused) after 5 s "
                   "while the phone still rings; when the ring times out (member timeout 20 s) the last "
                   "available counsellor is gone, the caller is taken out of the queue "
                   "(QUEUESTATUS=LEAVEEMPTY, QueueCallerAbandon although the caller did not hang up) and hears "
                   "the overflow message.", offered_to=[iface("tvv1")])


def s_next_answers(r: Run) -> None:
    # whoever Asterisk rings first does not answer (FIRST_NOANSWER), the next one does
    r.phone("tvv1", "answer", ring=2)
    r.phone("tvv2", "answer", ring=2)
    r.act("Setvar", Variable="FIRST_NOANSWER", Value="1")
    r.caller("0905555111", "Vu Van H", hangup_after=30)
    r.sleep(33)
    r.expect("0905555111", "completed", 24, 6, "?", name="Vu Van H",
             notes="The first counsellor rung lets the phone ring for the member timeout (20 s) without answer "
                   "(AgentRingNoAnswer); after retry = 2 s the next one's rings and is answered after 2 s; the "
                   "caller hangs up after about 6 s of talk. Which counsellor was rung first is Asterisk's "
                   "choice (strategy rrmemory): answered_by and missed_by are read from the recording.",
             missed_by="?")


def s_blind_transfer(r: Run) -> None:
    r.phone("tvv1", "answer", ring=2)
    r.phone("tvv2", "answer", ring=1)
    r.caller("0906666111", "Do Thi K", hangup_after=16)
    r.sleep(7.2)
    r.act("BlindTransfer", Channel=r.agent_channel("tvv1"), Exten="102", Context="counsellors")
    r.sleep(12)
    r.expect("0906666111", "completed", 2, 14.5, "tvv1", name="Do Thi K",
             parts=[{"agent": "tvv1", "talk_s": 5.2}, {"agent": "tvv2", "talk_s": 8.3}],
             notes="tvv1 answers after 2 s, talks 5 s and blind-transfers the caller to extension 102 (tvv2) "
                   "(AMI BlindTransfer, as the phone's transfer key does). tvv2's phone rings 1 s "
                   "(Dial from [counsellors], no queue events for tvv2) and answers; the caller hangs up after "
                   "about 8 s with tvv2. Call talk time 14.5 s = 5.2 (tvv1) + 1 ringing + 8.3 (tvv2); figures from the "
                   "recorded BridgeEnter/BlindTransfer/Hangup times.")


def s_attended_transfer(r: Run) -> None:
    r.phone("tvv1", "audio", ring=2)
    r.phone("tvv2", "answer", ring=2)
    r.caller("0906666222", "Do Van L", hangup_after=24)
    r.sleep(7.2)
    r.act("Atxfer", Channel=r.agent_channel("tvv1"), Exten="102", Context="counsellors")
    r.sleep(6)
    r.act("Hangup", Channel=r.channel("Local/tvv1@phones-", ";1"))
    r.sleep(14)
    r.expect("0906666222", "completed", 2, 22.5, "tvv1", name="Do Van L",
             parts=[{"agent": "tvv1", "talk_s": 11.2}, {"agent": "tvv2", "talk_s": 11.3}],
             notes="tvv1 answers after 2 s and talks 5 s, then makes an attended transfer to tvv2 (AMI Atxfer, "
                   "i.e. the *2 feature code): the caller is held while tvv2 rings 2 s and consults with tvv1 "
                   "4 s; tvv1 hangs up, which completes the transfer (AttendedTransfer). The caller talks with "
                   "tvv2 about 11 s and hangs up. tvv1's part 11.2 s = 5.6 with the caller + 2 ringing + 3.6 consult "
                   "(caller on hold); tvv2's part 11.3 s with the caller (after 3.6 s of consultation). The "
                   "transfer target leg is Local/102@counsellors (what the atxfer feature dials), which dials "
                   "tvv2's phone.")


def s_transfer_outside(r: Run) -> None:
    r.phone("tvv1", "answer", ring=2)
    r.act("Setvar", Variable="OUTSIDE_TALK", Value="6")
    r.caller("0906666333", "Bui Van M")
    r.sleep(7.2)
    r.act("BlindTransfer", Channel=r.agent_channel("tvv1"), Exten="0911222333", Context="counsellors")
    r.sleep(11)
    r.expect("0906666333", "completed", 2, 13.7, "tvv1", name="Bui Van M",
             parts=[{"agent": "tvv1", "talk_s": 5.2}], transferred_to="0911222333", outside_talk_s=6.5,
             notes="tvv1 answers after 2 s, talks 5 s and blind-transfers the caller to the outside number "
                   "0911222333 (e.g. a shelter); it answers after 2 s, talks 6 s and hangs up. Only tvv1 is a "
                   "counsellor part; the outside leg is 6 s.")


def s_conference(r: Run) -> None:
    r.phone("tvv1", "audio", ring=2)
    r.phone("tvv2", "answer", ring=2)
    r.caller("0906666444", "Ngo Thi N", hangup_after=25)
    r.sleep(6.2)
    r.act("Atxfer", Channel=r.agent_channel("tvv1"), Exten="102", Context="counsellors")
    r.sleep(5)
    r.act("PlayDTMF", Channel=r.channel("Local/tvv1@phones-", ";2"), Digit="*", Duration="100")
    r.sleep(0.3)
    r.act("PlayDTMF", Channel=r.channel("Local/tvv1@phones-", ";2"), Digit="3", Duration="100")
    r.sleep(15)
    r.expect("0906666444", "completed", 2, 23.5, "tvv1", name="Ngo Thi N",
             parts=[{"agent": "tvv1", "talk_s": 23.5}, {"agent": "tvv2", "talk_s": 13.6}],
             notes="tvv1 answers after 2 s and talks 4 s, starts an attended transfer to tvv2 (caller held), "
                   "tvv2 answers after 2 s, after 3 s of consultation tvv1 presses *3 (atxferthreeway): caller, "
                   "tvv1 and tvv2 talk together until the caller hangs up (about 25 s after calling). AttendedTransfer "
                   "DestType: Threeway. tvv1's part 23.5 s (whole call, incl. 5 s consult), tvv2's 13.6 s in the "
                   "three-way (after 3 s of consultation). After the caller leaves, tvv1 and tvv2 stay bridged.")


def s_pickup(r: Run) -> None:
    r.phone("tvv1", "noanswer")
    r.pause("tvv2", True)
    r.sleep(1)
    r.caller("0907777111", "Dinh Van P", hangup_after=10)
    r.sleep(3.2)
    target = r.agent_channel("tvv1")
    r.act("Originate", Channel="Local/tvv2@pickup-phone/n", Application="Wait", Data="3600",
          Variable=f"PICK_TARGET={target}",
          CallerID='"Tư vấn viên 2" <tvv2>', Async="true")
    r.sleep(10)
    r.expect("0907777111", "completed", 3, 7, "tvv2", name="Dinh Van P",
             notes="tvv1's phone rings; after 3 s tvv2 picks the call up from their own phone (directed pickup, "
                   "PickupChan). The queue believes tvv1's member answered (AgentConnect names tvv1); the real "
                   "answerer is tvv2 (Pickup event). The caller hangs up after about 7 s of talk.",
             offered_to=[iface("tvv1")])


def s_withheld(r: Run) -> None:
    r.phone("tvv1", "answer", ring=2, talk=5)
    r.caller("0908888111", "anonymous", pres="prohib")
    r.sleep(25)  # wrapuptime 15 s
    r.caller("0908888222", "", pres="prohib", pres_late=True)
    r.sleep(9)
    r.expect("0908888111", "completed", 2, 5, "tvv1", pres="prohibited",
             notes="The trunk delivers a real number with CALLERID(num-pres)=prohib (the caller withheld "
                   "it) and the name 'anonymous': CallerIDNum carries the number; NewCallerid carries the "
                   "presentation (CID-CallingPres: 35), and the sample's [hotline-in] renames the caller "
                   "'withheld'. Show the call as withheld, keep only the hash. tvv1 hangs up after 5 s.")
    r.expect("0908888222", "completed", 2, 5, "tvv1", pres="prohibited",
             notes="The same, but the presentation is set after the number, with no name (as when a trunk sets "
                   "it at channel creation): Asterisk sends NewCallerid only when the number or name changes, "
                   "so without the sample's rename to 'withheld' in [hotline-in] no event would say "
                   "'prohibited' (QueueCallerJoin, Newchannel and CoreShowChannel carry no presentation).")


def s_vietnamese_name(r: Run) -> None:
    r.phone("tvv1", "answer", ring=2)
    r.caller("0909999111", "Nguyễn Thị Hồng Nhung", hangup_after=7)
    r.sleep(10)
    r.expect("0909999111", "completed", 2, 5, "tvv1", name="Nguyễn Thị Hồng Nhung",
             notes="The caller's name in UTF-8 (Vietnamese diacritics) in CallerIDName / ConnectedLineName.")


def s_pbx_prefixed(r: Run) -> None:
    r.pause("tvv1", True)
    r.pause("tvv2", True)
    r.sleep(1)
    for number in ("084912345678", "0084912345678", "00912345678"):
        r.caller(number, hangup_after=4)
        r.sleep(1)
    r.sleep(6)
    for number in ("084912345678", "0084912345678", "00912345678"):
        r.expect(number, "abandoned", 4, None, None, e164="+84912345678",
                 notes="A PBX that prefixes an outside-line 0: 0+84… (084912345678), 0+0084… and 0+0912… are all "
                       "+84912345678. No counsellor available; the caller hangs up after 4 s.")


def s_concurrent(r: Run) -> None:
    for a in ("tvv1", "tvv2", "tvv3"):
        r.phone(a, "answer", ring=2)
    for i, after in enumerate((10, 12, 14, 20, 8), 1):
        r.caller(f"090100000{i}", f"Caller {i}", hangup_after=after)
        r.sleep(0.05)
    r.sleep(24)
    for i, (st, wait, talk) in enumerate((("completed", 2, 8), ("completed", 2, 10), ("completed", 2, 12),
                                          ("completed", 14, 6), ("abandoned", 8, None)), 1):
        r.expect(f"090100000{i}", st, wait, talk, "?" if st == "completed" else None, name=f"Caller {i}",
                 notes="Five callers at once, three counsellors (autofill): callers 1-3 are rung at once and "
                       "answered after 2 s; caller 5 gives up after 8 s; caller 4 is answered when caller 1's "
                       "counsellor is free again (10 s + wrapuptime 2 s + 2 s ringing). Which counsellor took "
                       "which caller is Asterisk's choice: answered_by is read from the recording's AgentConnect.")


def s_listener_outage(r: Run) -> None:
    r.pause("tvv2", True)
    r.pause("tvv3", True)
    r.phone("tvv1", "answer", ring=2)
    r.sleep(0.5)
    r.caller("0902000001", "Caller A", hangup_after=14)       # talking at the disconnect
    r.sleep(3)
    r.phone("tvv2", "noanswer")
    r.pause("tvv2", False)
    r.sleep(0.5)
    r.caller("0902000002", "Caller B", hangup_after=7)        # ringing at the disconnect
    r.sleep(0.5)
    r.caller("0902000003", "Caller C", hangup_after=36)       # waiting at the disconnect
    r.sleep(1)
    r.disconnect_listener()                                   # t ~ 5.5
    r.phone("tvv2", "answer", ring=1)                          # takes C once B is gone
    r.phone("tvv1", "answer", ring=1, talk=3)                  # D, after A
    r.sleep(12)
    r.caller("0902000004", "Caller D")                        # begins and ends in the gap
    r.sleep(8)
    r.reconnect_listener()                                    # gap ~ 20 s
    r.sleep(16)
    r.expect("0902000001", "completed", 2, 12, "tvv1", name="Caller A",
             notes="Talking with tvv1 when the listener disconnects; the caller hangs up inside the gap.")
    r.expect("0902000002", "abandoned", 7, None, None, name="Caller B",
             notes="tvv2's phone rings at the disconnect; the caller hangs up inside the gap.",
             offered_to=[iface("tvv2")])
    r.expect("0902000003", "completed", 8, 28, "tvv2", name="Caller C",
             notes="Waiting (no free counsellor) at the disconnect; tvv2 answers inside the gap (1 s ring after "
                   "B leaves); still talking when the listener reconnects; hangs up about 36 s after calling.")
    r.expect("0902000004", "completed", 1, 3, "tvv1", name="Caller D",
             notes="Begins and ends inside the gap: tvv1 (free again after A, wrapuptime 1 s) answers after 1 s, "
                   "talks 3 s and hangs up. Only queue_log (and all.ami) show it.")


def s_pbx_restart(r: Run) -> None:
    r.phone("tvv1", "answer", ring=2)
    r.pause("tvv2", True)
    r.caller("0903000001", "Caller R1")
    r.sleep(1)
    r.caller("0903000002", "Caller R2")
    r.sleep(7)
    r.restart_pbx()
    r.phone("tvv1", "answer", ring=2)
    r.caller("0903000003", "Caller R3", hangup_after=7)
    r.sleep(10)
    r.expect("0903000001", "completed", 2, 6, "tvv1", name="Caller R1",
             notes="Talking with tvv1 when the PBX restarts (core restart now): the call is cut after about 6 s "
                   "of talk.", end_reason="pbx_restart")
    r.expect("0903000002", "missed", 7, None, None, name="Caller R2",
             notes="Waiting (tvv1 busy, tvv2 away) when the PBX restarts: the call is cut by the PBX after about "
                   "7 s; the caller did not give up and nobody answered.", end_reason="pbx_restart")
    r.expect("0903000003", "completed", 2, 5, "tvv1", name="Caller R3",
             notes="After the restart: tvv2's pause is gone (static members come back unpaused); the call "
                   "is answered normally. Reconnected connections are in filtered-2.ami / all-2.ami.")


def s_presence(r: Run) -> None:
    r.pause("tvv1", True)
    r.phone("tvv2", "answer", ring=2, talk=5)
    r.sleep(1)
    r.caller("0904000001", "Caller P1")
    r.sleep(9)
    r.pause("tvv1", False)
    r.pause("tvv2", True)
    r.phone("tvv1", "answer", ring=2, talk=5)
    r.sleep(1)
    r.caller("0904000002", "Caller P2")
    r.sleep(9)
    r.pause("tvv2", False)
    r.sleep(1)
    r.expect("0904000001", "completed", 2, 5, "tvv2", name="Caller P1",
             notes="tvv1 away (QueuePause Paused=true sent on the listener's connection, as hotline's presence "
                   "does): the call goes to tvv2, who hangs up after 5 s.")
    r.expect("0904000002", "completed", 2, 5, "tvv1", name="Caller P2",
             notes="tvv1 back (Paused=false), tvv2 away: the call goes to tvv1, who hangs up after 5 s.")


EMPTY = "paused,unavailable,invalid"
# ---------------------------------------------------------------------- routing (issue #17)
OVERFLOW_ROUTE = "route=open&queue=hotline&wait=8&overflow=hotline-hcm"
OVERFLOW_CENTRES = {"hcm": {"name": "Trung tâm TP. Hồ Chí Minh", "queues": ["hotline-hcm"], "agents": ["tvv4"]}}


def s_overflow(r: Run) -> None:
    r.phone("tvv1", "noanswer")
    r.phone("tvv4", "answer", ring=2)
    r.sleep(1)
    r.caller("0906666777", "Dang Thi K", hangup_after=22)
    r.sleep(25)
    r.expect("0906666777", "completed", 10, 12.5, "tvv4", name="Dang Thi K", overflow_to="hcm",
             notes=f"hotline's route for the line: {OVERFLOW_ROUTE}. tvv1 (the line's centre) rings and never "
                   "answers; after the line's 8 s the queue times out (QUEUESTATUS=TIMEOUT, QueueCallerAbandon) "
                   "and the dialplan puts the caller in the overflow centre's queue hotline-hcm, where tvv4 "
                   "answers after 2 s; the caller hangs up after about 12.5 s of talk. The call is the line's "
                   "centre's (default), overflowed to hcm; its wait runs from the first queue join.",
             offered_to=[iface("tvv1"), iface("tvv4")])


def s_out_of_hours(r: Run) -> None:
    r.caller("0908888999", "Bui Van L", hangup_after=30, audio=True)
    r.sleep(3)
    r.press("1")
    r.sleep(4)
    r.expect("0908888999", "missed", None, None, None, name="Bui Van L", out_of_hours=True,
             callback_requested="out_of_hours",
             notes="hotline's route for the line: route=closed&message=hotline/closed&callback=1. The caller "
                   "hears hotline/closed (the emergency numbers) in [hotline-closed], presses 1, the dialplan "
                   "POSTs /api/lines/callback-request?call=<uniqueid> and plays hotline/callback-thanks, then "
                   "hangs up. No queue is involved: AMI alone shows a call on the line 18001234 that nobody "
                   "answered (missed); hotline's lookups (expected.json \"http\") mark it out of hours with "
                   "a callback request.")


def s_blocked_to_supervisor(r: Run) -> None:
    r.phone("gs1", "answer", ring=2)
    r.caller("0907777888", "Ngo Van M", hangup_after=14, audio=True)
    r.sleep(3)
    r.press("5")
    r.sleep(14)
    r.expect("0907777888", "completed", 2, 8.5, "gs1", name="Ngo Van M",
             notes="/api/blocking/check says blocked=1: the caller hears hotline/blocked in [hotline-blocked], "
                   "presses 5 after 3 s, the dialplan POSTs /api/blocking/pressed and queues the caller in "
                   "hotline-supervisors, where the supervisor gs1 answers after 2 s; the caller hangs up.")
TRUNK_PBXES = (Side("north", members=("tvv1",)), Side("south", queues={"hotline-hcm": ("tvv4",)}))


def s_trunk_overflow(r: Run) -> None:
    south = r.peer
    assert south is not None
    r.phone("tvv1", "noanswer")
    south.phone("tvv4", "answer", ring=2)
    r.sleep(1)
    r.caller("0906666888", "Vu Thi T", hangup_after=24)
    r.sleep(28)
    r.expect("0906666888", "completed", 10, 14.5, "tvv4", name="Vu Thi T", overflow_to="hcm",
             notes=f"Two PBXes joined by an IAX2 trunk. hotline's route for the line on north: {OVERFLOW_ROUTE}. "
                   "tvv1 (north, the line's centre) rings and never answers; after 8 s north's queue times out "
                   "and [hotline-overflow-out] dials hotline-hcm over the trunk with HOTLINE_ORIGIN=north:<the "
                   "call's Linkedid> (IAXVAR, also on north's trunk channel); on south [hotline-overflow-in] "
                   "makes it a channel variable (its events carry it: channelvars) and queues the caller in "
                   "hotline-hcm, where tvv4 answers after 2 s; the caller hangs up on north. ONE call: the "
                   "line's centre's (default, on north), overflowed to hcm, answered by tvv4; its wait runs "
                   "from north's queue join to tvv4's answer on south.",
             offered_to=[iface("tvv1"), iface("tvv4")])


def s_trunk_overflow_unlinked(r: Run) -> None:
    south = r.peer
    assert south is not None
    r.phone("tvv1", "noanswer")
    south.phone("tvv4", "answer", ring=2)
    r.sleep(1)
    r.caller("0906666999", "Vu Van U", hangup_after=24)
    r.sleep(28)
    r.expect("0906666999", "completed", 10, 14.5, "tvv4", name="Vu Van U", overflow_to="hcm",
             notes="The same call as trunk_overflow, with dial plans that do not pass HOTLINE_ORIGIN (its lines "
                   "removed on both PBXes): the truth is the same one call, but nothing in either PBX's events "
                   "ties its two halves. North sees its caller wait 8 s in hotline, then bridged with the IAX2 "
                   "trunk channel until the caller hangs up; south sees a caller from the trunk queued in "
                   "hotline-hcm and answered by tvv4 after 2 s. hotline records two calls (see the README).",
             offered_to=[iface("tvv1"), iface("tvv4")])


def s_trunk_overflow_abandoned(r: Run) -> None:
    south = r.peer
    assert south is not None
    r.phone("tvv1", "noanswer")
    south.phone("tvv4", "noanswer")
    r.sleep(1)
    r.caller("0906666555", "Vu Van V", hangup_after=14)
    r.sleep(18)
    r.expect("0906666555", "abandoned", 14, None, None, name="Vu Van V", overflow_to="hcm",
             notes="As trunk_overflow, but nobody answers on either PBX: tvv1 (north) rings 8 s, the caller is "
                   "sent over the trunk to hotline-hcm on south, where tvv4 rings, and hangs up 14 s after calling "
                   "(about 6 s in south's queue). North's caller hangs up first (HangupRequest), the trunk tears "
                   "down south's caller, whose QueueCallerAbandon follows its HangupRequest: abandoned, not missed "
                   "(north's QUEUESTATUS=TIMEOUT is why it overflowed, not how it ended). One call, the line's "
                   "centre's, overflowed to hcm.",
             offered_to=[iface("tvv1"), iface("tvv4")])


def s_trunk_overflow_at_once(r: Run) -> None:
    south = r.peer
    assert south is not None
    r.pause("tvv1", True)
    south.phone("tvv4", "answer", ring=2)
    r.sleep(1)
    r.caller("0906666444", "Vu Thi X", hangup_after=12)
    r.sleep(16)
    r.expect("0906666444", "completed", 2, 10, "tvv4", name="Vu Thi X", overflow_to="hcm",
             notes="No counsellor of the line's centre is ready (tvv1 paused, as hotline's presence does): "
                   "[hotline-in] sends the caller over the trunk at once (QUEUE_MEMBER(hotline,ready) = 0), "
                   "so north never queues them: its events know the call only by the number dialled "
                   "(18001234, a number line of the line's centre in hotline). On south tvv4 answers after 2 s; "
                   "the caller hangs up 12 s after calling. One call, the line's centre's, overflowed to hcm.",
             offered_to=[iface("tvv4")])


def _pbx_command(**kw: Any) -> Any:
    sys.path.insert(0, str(REPO))
    from hotline.pbx.models import PbxCommand

    return PbxCommand(**kw)


def s_callback(r: Run) -> None:
    from hotline.pbx import asterisk as pbx_ami

    r.phone("tvv1", "answer", ring=2)
    r.act("Setvar", Variable="OUTSIDE_TALK", Value="8")
    cmd = _pbx_command(id=1, kind="call", provider="asterisk", ref="cb:1", device=iface("tvv1"),
                       dial_number="+84912345678", caller_id="18001234")
    keys = {"ActionID": pbx_ami.action_id(cmd), **pbx_ami.originate(cmd)}
    r.log("hotline ami sends " + " ".join(f"{k}={v}" for k, v in keys.items()))
    answer = r.listener.originate(**keys)
    r.log(f"OriginateResponse {answer.get('Response')} Reason={answer.get('Reason')} (tvv1 answered)")
    r.sleep(14)
    r.expect("0912345678", "completed", None, 8, "tvv1", fixed_linkedid=answer.get("Uniqueid"), callback="cb:1",
             notes="A callback placed by hotline: Originate (Async) of tvv1's own phone, which answers after 2 s; "
                   "[hotline-callback] then dials 0912345678 through the trunk (here [outside]: answers after 2 s, "
                   "talks 8 s and hangs up) with the hotline number 18001234 as caller ID. One call record, "
                   "marked as the callback cb:1, answered by tvv1, no queue wait.")


def s_listen_in(r: Run) -> None:
    from hotline.pbx import asterisk as pbx_ami

    r.phone("tvv1", "answer", ring=2)
    r.caller("0901234599", "Le Thi S", hangup_after=20)
    end = time.monotonic() + 30
    while True:  # the greeting and the queue take a few seconds; then tvv1's phone rings 2 s
        try:
            spied = r.agent_channel("tvv1")
            break
        except RuntimeError:
            if time.monotonic() > end:
                raise
            r.sleep(0.2)
    r.sleep(4)
    with r.ctl.cv:
        uid = next(f["Uniqueid"] for f in reversed(r.ctl.frames)
                   if f.get("Event") == "Newchannel" and f.get("Channel") == spied)
    cmd = _pbx_command(id=2, kind="spy", provider="asterisk", ref="spy:1", device="Local/gs1@supervisor-phone/n",
                       options={"channel": uid, "exact": True, "mode": "listen", "call_id": 1})
    keys = {"ActionID": pbx_ami.action_id(cmd), **pbx_ami.originate(cmd)}
    r.log(f"the supervisor listens in to {spied} ({uid}): " + " ".join(f"{k}={v}" for k, v in keys.items()))
    answer = r.listener.originate(**keys)
    r.log(f"OriginateResponse {answer.get('Response')} Reason={answer.get('Reason')} (the supervisor answered)")
    r.sleep(20)
    r.expect("0901234599", "completed", 2, 18, "tvv1", name="Le Thi S",
             notes="tvv1 answers after 2 s; 2 s later a supervisor's phone is rung by hotline (Originate, Async) "
                   "into ChanSpy(<tvv1's channel Uniqueid>,qESu), answers after 1 s and listens until the caller "
                   "hangs up (20 s after calling). The spying channel is not a call: one record only.")


SCENARIOS = [
    Scenario("answered", "A counsellor answers", s_answered, members=("tvv1",)),
    Scenario("abandoned", "The caller gives up while waiting", s_abandoned),
    Scenario("abandoned_ringing", "The caller hangs up while a counsellor's phone rings", s_abandoned_ringing),
    Scenario("queue_timeout", "Nobody answers before the queue's timeout", s_queue_timeout, queue_timeout=12),
    Scenario("joinempty", "No counsellor available: the caller cannot join (joinempty)", s_joinempty,
             queue_options={"joinempty": EMPTY}),
    Scenario("leavewhenempty", "The last counsellor goes away while a caller waits (leavewhenempty)",
             s_leavewhenempty, queue_options={"leavewhenempty": EMPTY}),
    Scenario("next_answers", "A counsellor does not answer and another does", s_next_answers),
    Scenario("agent_hangup", "The counsellor hangs up first", s_agent_hangup, members=("tvv1",)),
    Scenario("blind_transfer", "Blind transfer to another counsellor", s_blind_transfer, members=("tvv1",)),
    Scenario("attended_transfer", "Attended (consultative) transfer", s_attended_transfer, members=("tvv1",)),
    Scenario("transfer_outside", "Transfer to an outside number", s_transfer_outside, members=("tvv1",)),
    Scenario("conference", "Three-party conference", s_conference, members=("tvv1",)),
    Scenario("pickup", "Call pickup by another counsellor", s_pickup),
    Scenario("withheld", "Withheld caller ID with a real number", s_withheld, members=("tvv1",)),
    Scenario("vietnamese_name", "A Vietnamese UTF-8 caller name", s_vietnamese_name, members=("tvv1",)),
    Scenario("pbx_prefixed", "PBX-prefixed numbers", s_pbx_prefixed),
    Scenario("concurrent", "Five concurrent calls", s_concurrent, members=("tvv1", "tvv2", "tvv3"),
             queue_options={"wrapuptime": "2"}),
    Scenario("listener_outage", "The listener is away while calls ring, wait and talk", s_listener_outage,
             members=("tvv1", "tvv2", "tvv3"), queue_options={"wrapuptime": "1"}),
    Scenario("pbx_restart", "Asterisk restarted during calls", s_pbx_restart),
    Scenario("presence", "A counsellor paused and unpaused through presence", s_presence),
    Scenario("overflow", "The line's overflow: the queue times out, another centre's queue answers", s_overflow,
             members=("tvv1",), route=OVERFLOW_ROUTE, other_queues={"hotline-hcm": ("tvv4",)},
             centres=OVERFLOW_CENTRES),
    Scenario("out_of_hours", "Out of hours: the closed message, a key asks for a callback", s_out_of_hours,
             members=("tvv1",), route="route=closed&message=hotline/closed&callback=1",
             centres={"default": {"numbers": ["18001234"], "hours": {}}}),
    Scenario("blocked_to_supervisor", "A blocked caller presses a key and a supervisor answers",
             s_blocked_to_supervisor, members=("tvv1",), blocked=("0907777888",), supervisors=("gs1",)),
    Scenario("callback", "hotline calls a caller back: the counsellor's phone first, then the number",
             s_callback, members=("tvv1",)),
    Scenario("listen_in", "A supervisor listens in to a call in progress (ChanSpy)", s_listen_in,
             members=("tvv1",)),
    Scenario("trunk_overflow", "The line's overflow to another PBX's queue over an IAX2 trunk: one call",
             s_trunk_overflow, route=OVERFLOW_ROUTE, centres=OVERFLOW_CENTRES, pbxes=TRUNK_PBXES),
    Scenario("trunk_overflow_unlinked", "The same overflow over a trunk that does not pass the call's identity",
             s_trunk_overflow_unlinked, route=OVERFLOW_ROUTE, centres=OVERFLOW_CENTRES, pbxes=TRUNK_PBXES,
             trunk_origin=False),
    Scenario("trunk_overflow_abandoned", "Overflow over the trunk; the caller gives up in the other PBX's queue",
             s_trunk_overflow_abandoned, route=OVERFLOW_ROUTE, centres=OVERFLOW_CENTRES, pbxes=TRUNK_PBXES),
    Scenario("trunk_overflow_at_once", "Nobody ready on the line's PBX: over the trunk at once, answered there",
             s_trunk_overflow_at_once, route=OVERFLOW_ROUTE, pbxes=TRUNK_PBXES,
             centres={**OVERFLOW_CENTRES, "default": {"numbers": ["18001234"], "queues": ["hotline"]}}),
]


# ---------------------------------------------------------------------- summary & output
def summary(data: bytes) -> list[str]:
    """Queue-relevant events of a recorded stream, for the README and a sanity check."""
    keep = {"QueueCallerJoin": ("CallerIDNum", "Position"), "AgentCalled": ("Interface",),
            "AgentRingNoAnswer": ("Interface", "RingTime"), "AgentConnect": ("Interface", "HoldTime", "RingTime"),
            "AgentComplete": ("Interface", "HoldTime", "TalkTime", "Reason"),
            "QueueCallerAbandon": ("Position", "HoldTime"), "QueueCallerLeave": ("Position",),
            "BlindTransfer": ("Result", "TransfereeChannel", "Extension"),
            "AttendedTransfer": ("Result", "DestType"), "Pickup": ("Channel", "TargetChannel"),
            "QueueMemberPause": ("Interface", "Paused"), "HangupRequest": ("Channel",),
            "Hangup": ("Channel", "Cause-txt")}
    out: list[str] = []
    first: float | None = None
    for raw in data.split(b"\r\n\r\n"):
        f = parse(raw)
        ev = f.get("Event")
        if ev not in keep:
            continue
        ts = float(f.get("Timestamp", "0") or 0)
        first = first if first is not None else ts
        out.append(f"{ts - first:6.2f} {ev} " + " ".join(f"{k}={f.get(k, '')}" for k in keep[ev])
                   + f" Linkedid={f.get('Linkedid', '')}")
    return out


def linkedids(data: bytes) -> dict[str, list[str]]:
    """CallerIDNum -> Linkedids of its calls, in order (to name the calls in expected.json): the
    caller channel's first event that carries the number (QueueCallerJoin, or NewCallerid when the
    call never joined the queue)."""
    found: dict[str, list[str]] = {}
    for raw in data.split(b"\r\n\r\n"):
        f = parse(raw)
        chan = f.get("Channel", "")
        if f.get("Event") in ("QueueCallerJoin", "NewCallerid", "Newexten") \
                and chan.startswith("Local/caller@caller-phone-") and chan.endswith(";1") \
                and f.get("CallerIDNum") not in (None, "", "<unknown>"):
            ids = found.setdefault(f["CallerIDNum"], [])
            if f.get("Linkedid") not in ids:
                ids.append(f.get("Linkedid", ""))
    return found


def observed(data: bytes, linkedid: str | None) -> dict[str, float | None]:
    """Wait and talk of one call by the clock of its events (Timestamp), caller's channel end."""
    join = connect = leave = end = None
    caller_chan = None
    for raw in data.split(b"\r\n\r\n"):
        f = parse(raw)
        if not linkedid or f.get("Linkedid") != linkedid or "Timestamp" not in f:
            continue
        ts, ev = float(f["Timestamp"]), f.get("Event")
        if ev == "QueueCallerJoin" and join is None:
            join, caller_chan = ts, f.get("Channel")
        elif ev == "AgentConnect" and connect is None:
            connect = ts
        elif ev in ("QueueCallerAbandon", "QueueCallerLeave") and leave is None and connect is None:
            leave = ts
        elif ev == "Hangup" and f.get("Channel") == caller_chan:
            end = ts
    if join is None:
        return {"wait_s": None, "talk_s": None}
    wait = (connect or leave or end or join) - join
    talk = (end - connect) if (connect and end) else None
    return {"wait_s": round(wait, 1), "talk_s": round(talk, 1) if talk is not None else None}


def observed_trunk(data: bytes, linkedid: str | None, peer: bytes, peer_linkedid: str | None
                   ) -> dict[str, float | None]:
    """Wait and talk of a call sent over the trunk: from the queue join on the first PBX to the
    answer on the other (AgentConnect), then to the caller's hangup on the first."""
    join = end = connect = None
    for raw in data.split(b"\r\n\r\n"):
        f = parse(raw)
        if not linkedid or f.get("Linkedid") != linkedid or "Timestamp" not in f:
            continue
        if f.get("Event") == "QueueCallerJoin" and join is None:
            join = float(f["Timestamp"])
        elif f.get("Event") == "Hangup" and f.get("Uniqueid") == linkedid:  # the caller's channel
            end = float(f["Timestamp"])
    for raw in peer.split(b"\r\n\r\n"):
        f = parse(raw)
        if peer_linkedid and f.get("Linkedid") == peer_linkedid and f.get("Event") == "AgentConnect":
            connect = connect or float(f["Timestamp"])
        elif peer_linkedid and f.get("Linkedid") == peer_linkedid and f.get("Event") == "QueueCallerJoin":
            join = join if join is not None else float(f["Timestamp"])  # sent at once: no queue on the first
    if join is None:
        return {"wait_s": None, "talk_s": None}
    wait = (connect or end or join) - join
    talk = (end - connect) if (connect and end) else None
    return {"wait_s": round(wait, 1), "talk_s": round(talk, 1) if talk is not None else None}


def no_answers(data: bytes) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for raw in data.split(b"\r\n\r\n"):
        f = parse(raw)
        if f.get("Event") == "AgentRingNoAnswer":
            out.setdefault(f.get("Linkedid", ""), set()).add(f.get("Interface", ""))
    return out


def connects(data: bytes) -> dict[str, str]:
    """Linkedid -> Interface of its AgentConnect."""
    out: dict[str, str] = {}
    for raw in data.split(b"\r\n\r\n"):
        f = parse(raw)
        if f.get("Event") == "AgentConnect":
            out.setdefault(f.get("Linkedid", ""), f.get("Interface", ""))
    return out


def write(sc: Scenario, r: Run, version: str) -> Path:
    out = OUT / sc.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # a trunk scenario: each PBX's streams and queue_log in a folder named after it
    runs = [(out, r)] if r.peer is None else [(out / run.pbx.side.name, run) for run in (r, r.peer)
                                              if run is not None and run.pbx.side is not None]
    for where, run in runs:
        where.mkdir(parents=True, exist_ok=True)
        for which, segs in run.segments.items():
            for i, data in enumerate(segs):
                (where / (f"{which}.ami" if i == 0 else f"{which}-{i + 1}.ami")).write_bytes(data)
        ql = run.pbx.work / "log" / "queue_log"
        if ql.exists():
            shutil.copy(ql, where / "queue_log")
    every = b"".join(r.segments["all"])
    peer_every = b"".join(r.peer.segments["all"]) if r.peer else b""
    ids = linkedids(every)
    used: dict[str, int] = {}
    for c in r.calls:
        num = c["caller"]["number"]
        cand = ids.get(num, [])
        i = used.get(num, 0)
        c["linkedid"] = c.pop("fixed_linkedid", None) or (cand[i] if i < len(cand) else None)
        used[num] = i + 1
        if r.peer is not None:  # the same caller on the other PBX: its own Linkedid there
            joins = [f.get("Linkedid", "") for f in map(parse, peer_every.split(b"\r\n\r\n"))
                     if f.get("Event") == "QueueCallerJoin" and f.get("CallerIDNum") == num]
            c["peer_linkedid"] = joins[i] if i < len(joins) else None
            obs = observed_trunk(every, c["linkedid"], peer_every, c["peer_linkedid"])
        else:
            obs = observed(every, c["linkedid"])
        c["observed"] = obs
        for k in ("wait_s", "talk_s"):
            if obs[k] is not None and c[k] is not None and not c["parts"]:
                if abs(obs[k] - c[k]) <= 1.0:
                    c["design_" + k], c[k] = c[k], obs[k]
                else:
                    print(f"  !! {num}: {k} designed {c[k]}, observed {obs[k]}")
        if c["answered_by"] == "?":  # Asterisk's choice: the member whose AgentConnect names this call
            c["answered_by"] = connects(every).get(c["linkedid"])
            c["answered_by_user"] = c["answered_by"].split("/")[1].split("@")[0] if c["answered_by"] else None
        if c.get("missed_by") == "?":
            c["missed_by"] = sorted(no_answers(every).get(c["linkedid"], []))
    events, names = listener_filter()
    expected = {
        "scenario": sc.name, "title": sc.title, "asterisk": version, "queue": "hotline",
        "listener_login": {"Events": events, "Filter": names},
        "agents": {iface(a): {"username": a, "name": AGENTS[a]} for a in sc.members},
        "gaps": r.gaps,
        "calls": r.calls,
    }
    for a in sc.supervisors:
        expected["agents"][iface(a)] = {"username": a, "name": AGENTS[a], "role": "supervisor"}
    for code, centre in sc.centres.items():
        for a in centre.get("agents", []):
            expected["agents"][iface(a)] = {"username": a, "name": AGENTS[a], "centre": code}
    if sc.centres:  # the hotline lines of the scenario (the conformance test configures them)
        expected["centres"] = sc.centres
    if sc.pbxes:  # a trunk scenario: each PBX (its listener's name, its folder), the trunk
        expected["pbxes"] = {side.name: {"folder": f"{side.name}/", "members": list(side.members),
                                         "queues": {q: list(m) for q, m in side.queues.items()}}
                             for side in sc.pbxes}
        expected["trunk"] = {"technology": "IAX2", "origin_passed": sc.trunk_origin}
        for side in sc.pbxes:
            for a in (*side.members, *(m for ms in side.queues.values() for m in ms)):
                expected["agents"].setdefault(iface(a), {"username": a, "name": AGENTS[a]})
    if HTTP is not None and HTTP.requests:
        expected["http"] = HTTP.requests
    (out / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    files = sorted(p.name for p in out.iterdir() if p.name != "README.md")
    lines = [f"# {sc.name}: {sc.title}", "",
             f"Recorded from a real Asterisk {version} by `scripts/asterisk/record.py {sc.name}`, with the",
             "deploy/asterisk/ samples (queue timeout "
             f"{sc.queue_timeout} s{', ' + ', '.join(f'{k} = {v}' for k, v in sc.queue_options.items()) if sc.queue_options else ''}) "
             f"and members {', '.join(iface(a) for a in sc.members)}.", "",
             "## Expected records", ""]
    for c in r.calls:
        lines.append(f"- caller {c['caller']['number']} ({c['linkedid']}): **{c['status']}**, wait {c['wait_s']} s, "
                     f"talk {c['talk_s']} s, answered by {c['answered_by_user'] or 'nobody'}"
                     + (f", parts {[(p['user'], p['talk_s']) for p in c['parts']]}" if c["parts"] else "")
                     + f". {c['notes']}")
    lines += ["", "## Timeline (what the script did)", "", "```", *r.timeline, "```", ""]
    if r.peer is None:
        lines += ["## Queue events seen (all.ami, seconds from the first)", "", "```", *summary(every), "```", ""]
    else:
        for where, run in runs:
            lines += [f"## Queue events seen on {where.name} ({where.name}/all.ami, seconds from its first)", "",
                      "```", *summary(b"".join(run.segments["all"])), "```", ""]
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "README.md")
    lines += ["Files: " + ", ".join(f"`{f}`" for f in files) + "."]
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def record(sc: Scenario) -> None:
    print(f"== {sc.name}: {sc.title}", flush=True)
    global HTTP
    HTTP = HTTP or HotlineHttp()
    HTTP.scenario, HTTP.requests, HTTP.on_request = sc, [], None
    sides = sc.pbxes
    if sides:  # two PBXes, each with its IAX2 port and the other's
        first, second = sides
        first.iax_port, second.iax_port = free_udp_port(), free_udp_port()
        first.peer_iax_port, second.peer_iax_port = second.iax_port, first.iax_port
    pbx = Pbx(sc, sides[0] if sides else None)
    peer_pbx = Pbx(sc, sides[1]) if sides else None
    pbx.start()
    if peer_pbx is not None:
        peer_pbx.start()
    version = pbx.cli("core show version").split()[1] if pbx.cli("core show version") else "22"
    try:
        r = Run(sc, pbx)
        if peer_pbx is not None:
            r.peer = Run(sc, peer_pbx, parent=r)
            wait_trunk(pbx, r)
        HTTP.on_request = r.log
        sc.play(r)
        for run in (r, r.peer):
            if run is not None:
                run.finish_segment("filtered")
                run.finish_segment("all")
                run.ctl.close()
        for run in (r, r.peer):
            if run is not None and run.hotline:
                time.sleep(1)
                run.hotline.stop()
    finally:
        pbx.stop()
        if peer_pbx is not None:
            peer_pbx.stop()
    out = write(sc, r, version)
    warnings = [ln for ln in (pbx.work / "log" / "messages").read_text(errors="replace").splitlines()
                if "WARNING" in ln or "ERROR" in ln] if (pbx.work / "log" / "messages").exists() else []
    print("\n".join(f"    {ln}" for ln in summary(b"".join(r.segments["all"]))))
    print(f"  -> {out}  ({len(warnings)} warnings in the Asterisk log, {pbx.work})")
    shutil.rmtree(pbx.work / "lib", ignore_errors=True)
    if peer_pbx is not None:
        print(f"  -> the other PBX: {peer_pbx.work}")
        shutil.rmtree(peer_pbx.work / "lib", ignore_errors=True)


def wait_trunk(pbx: Pbx, r: Run, timeout: float = 20) -> None:
    """Until the first PBX sees its IAX2 peer reachable (qualify), so the first call gets through."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        shown = pbx.cli("iax2 show peers")
        if re.search(r"hotline-south\S*\s.*\bOK\b", shown):
            r.log("the IAX2 trunk north → south is up (iax2 show peers: OK)")
            return
        time.sleep(0.5)
    print(f"  !! the trunk did not come up: {pbx.cli('iax2 show peers')}")


def main() -> int:
    faulthandler.register(signal.SIGUSR1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--hotline", metavar="DIR", help="also run `hotline ami` (this checkout, SQLite in DIR, or "
                    "HOTLINE_LIVE_DATABASE_URL) against each scenario, then compare `hotline calls export` "
                    "with expected.json; nothing is written to the fixtures then")
    args = ap.parse_args()
    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name:24} {sc.title}")
        return 0
    if not (ROOT / "sbin" / "asterisk").exists():
        print(f"no Asterisk under {ROOT} (set ASTERISK_ROOT to its install prefix)", file=sys.stderr)
        return 2
    chosen = [sc for sc in SCENARIOS if not args.scenarios or sc.name in args.scenarios]
    unknown = set(args.scenarios) - {sc.name for sc in SCENARIOS}
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    global HOTLINE_ENV, OUT
    if args.hotline:
        HOTLINE_ENV = hotline_env(Path(args.hotline).resolve())
        OUT = Path(args.hotline).resolve() / "recorded"
    for sc in chosen:
        record(sc)
    if HOTLINE_ENV:
        compare(HOTLINE_ENV, chosen)
    return 0


def compare(env: dict[str, str], chosen: list[Scenario]) -> None:
    """Each expected call against what `hotline ami` recorded (`hotline calls export`)."""
    r = subprocess.run([str(REPO / ".venv" / "bin" / "hotline"), "calls", "export", "--format", "jsonl"],
                       env=env, cwd=env["HOTLINE_DATA_DIR"], capture_output=True, text=True)
    got = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    (Path(env["HOTLINE_DATA_DIR"]) / "export.jsonl").write_text(r.stdout)
    by_key = {c.get("provider_key"): c for c in got}
    matched: set[str] = set()
    print("\n== hotline ami (live) vs expected.json")
    for sc in chosen:
        exp = json.loads((OUT / sc.name / "expected.json").read_text())
        for e in exp["calls"]:
            c = by_key.get(e["linkedid"])
            if c is None:
                print(f"  {sc.name:18} {e['caller']['number']:14} MISSING (expected {e['status']})")
                continue
            matched.add(e["linkedid"])
            diffs = []
            if c.get("status") != e["status"]:
                diffs.append(f"status {c.get('status')} != {e['status']}")
            for k, ck in (("wait_s", "queue_wait_seconds"), ("talk_s", "talk_seconds")):
                if (e[k] is None) != (c.get(ck) is None) or (e[k] is not None and abs(float(c[ck]) - e[k]) > 1.0):
                    diffs.append(f"{ck} {c.get(ck)} != {e[k]}")
            if (c.get("answered_by") or None) != e["answered_by"]:
                diffs.append(f"answered_by {c.get('answered_by')} != {e['answered_by']}")
            if e["caller"]["presentation"] != "allowed" and c.get("caller_id_status") == "present":
                diffs.append(f"caller_id_status present != withheld ({e['caller']['presentation']})")
            if e["parts"]:
                diffs.append(f"parts {[(x['user'], x['talk_s']) for x in e['parts']]} expected (export has no parts)")
            print(f"  {sc.name:18} {e['caller']['number']:14} {'ok' if not diffs else '; '.join(diffs)}")
    extra = [c for c in got if c.get("provider_key") not in matched]
    for c in extra:
        print(f"  EXTRA record {c.get('provider_key')} {c.get('status')} caller {c.get('caller_masked')}")


if __name__ == "__main__":
    raise SystemExit(main())
