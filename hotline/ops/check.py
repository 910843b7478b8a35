"""``hotline check``: is this installation ready to take calls?

Each check returns one line: OK, WARN (works, but fix it soon) or FAIL (something callers or
counsellors will notice), with what to do about it.  The checks only read: they never migrate,
create or change anything, so they are safe to run on a live system at any time.
"""

from __future__ import annotations

import re
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from hotline.settings import Settings

OK, WARN, FAIL = "ok", "warn", "fail"
# Values that mean "not set yet", as in deploy/hotline.env.example (CHANGE-ME-…).
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "replace-me")
MIN_SECRET_LENGTH = 32
CLOCK_WARN_SECONDS = 2.0
CLOCK_FAIL_SECONDS = 30.0
TIMEOUT_SECONDS = 5.0
SPOOL_MIN_FREE_BYTES = 50 * 1024 * 1024  # below this a database outage soon fills the disk spool


@dataclass
class Result:
    name: str
    status: str
    message: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def is_placeholder(value: str) -> bool:
    low = value.strip().lower()
    return any(marker in low for marker in PLACEHOLDER_MARKERS)


def describe_url(url: str) -> str:
    """A database or Redis URL without its password, for messages."""
    try:
        u = make_url(url)
        return u.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a Redis URL or something malformed
        if "@" in url:
            scheme, _, rest = url.partition("://")
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return url


def _engine(url: str) -> Engine:
    args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        args["connect_args"] = {"connect_timeout": int(TIMEOUT_SECONDS)}
    return create_engine(url, **args)


# ---------------------------------------------------------------------- the database
def check_database(settings: Settings, state: dict[str, Any]) -> list[Result]:
    url = settings.effective_database_url
    shown = describe_url(url)
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if engine.dialect.name == "postgresql":
                state["db_now"] = conn.execute(text("SELECT now()")).scalar_one()
                state["db_local_now"] = datetime.now(timezone.utc)
    except Exception as exc:  # noqa: BLE001 - reported
        state["db_ok"] = False
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return [Result("database", FAIL, f"cannot connect to {shown}: {first}",
                       "start PostgreSQL or correct HOTLINE_DATABASE_URL (host, port, user, password, database)")]
    finally:
        engine.dispose()
    state["db_ok"] = True
    out = []
    if engine.dialect.name == "sqlite" and settings.is_production:
        out.append(Result("database", WARN, f"{shown} is SQLite",
                          "use PostgreSQL in production: set HOTLINE_DATABASE_URL=postgresql+psycopg://…"))
    else:
        out.append(Result("database", OK, f"{shown} is reachable"))
    from hotline import migrate

    try:
        missing = migrate.pending(url)
    except Exception as exc:  # noqa: BLE001 - reported
        out.append(Result("migrations", FAIL, f"cannot read the migration state: {type(exc).__name__}: {exc}"[:300],
                          "run: hotline db upgrade"))
        return out
    if missing:
        state["migrated"] = False
        out.append(Result("migrations", FAIL, f"{len(missing)} migration head(s) not applied: {', '.join(sorted(missing))}",
                          "run: hotline db upgrade (on one machine; the others pick it up)"))
    else:
        state["migrated"] = True
        out.append(Result("migrations", OK, "every domain's migrations are applied"))
    return out


# ---------------------------------------------------------------------- Redis and workers
def check_redis(settings: Settings, state: dict[str, Any]) -> list[Result]:
    if not settings.redis_url:
        if settings.is_production:
            return [Result("redis", WARN, "HOTLINE_REDIS_URL is not set: jobs and live updates stay inside one process",
                           "set HOTLINE_REDIS_URL=redis://HOST:6379/0 to run several web processes and hotline worker")]
        return [Result("redis", OK, "not configured: in-process queue and pub/sub (one process only)")]
    import redis

    shown = describe_url(settings.redis_url)
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=TIMEOUT_SECONDS,
                                  socket_timeout=TIMEOUT_SECONDS)
    try:
        before = datetime.now(timezone.utc)
        client.ping()
        seconds, micros = client.time()
        after = datetime.now(timezone.utc)
        state["redis_now"] = datetime.fromtimestamp(seconds + micros / 1e6, timezone.utc)
        state["redis_local_now"] = before + (after - before) / 2
        from rq import Worker

        workers = Worker.count(connection=client)
    except Exception as exc:  # noqa: BLE001 - reported
        return [Result("redis", FAIL, f"cannot reach {shown}: {exc}"[:300],
                       "start Redis or correct HOTLINE_REDIS_URL")]
    finally:
        client.close()
    out = [Result("redis", OK, f"{shown} answers")]
    if workers:
        out.append(Result("worker", OK, f"{workers} hotline worker(s) running", details={"workers": workers}))
    else:
        out.append(Result("worker", WARN, "no hotline worker is running: queued jobs and periodic tasks wait",
                          "start one: systemctl enable --now hotline-worker@1 (or: hotline worker)"))
    return out


# ---------------------------------------------------------------------- Asterisk
def ami_login(host: str, port: int, username: str, secret: str, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """Log in to an Asterisk Manager Interface and off again; None when it worked, else the reason."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    try:
        sock.settimeout(timeout)
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk or time.monotonic() > deadline:
                return f"{host}:{port} closed the connection before greeting"
            buf += chunk
        banner, _, buf = buf.partition(b"\r\n")
        if not banner.startswith(b"Asterisk Call Manager/"):
            return f"{host}:{port} is not an Asterisk Manager Interface (it said {banner[:40]!r})"
        sock.sendall(f"Action: Login\r\nActionID: hotline-check\r\nUsername: {username}\r\n"
                     f"Secret: {secret}\r\nEvents: off\r\n\r\n".encode())
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(4096)
                if not chunk:
                    return f"{host}:{port} closed the connection after the login (wrong user, or not permitted from here)"
                buf += chunk
            frame, _, buf = buf.partition(b"\r\n\r\n")
            fields = dict(line.split(": ", 1) for line in frame.decode("utf-8", "replace").split("\r\n") if ": " in line)
            if "Response" not in fields:
                continue  # an event before the answer
            if fields["Response"].lower() != "success":
                return f"login refused by {host}:{port}: {fields.get('Message', fields['Response'])}"
            break
        try:
            sock.sendall(b"Action: Logoff\r\nActionID: hotline-check-off\r\n\r\n")
        except OSError:
            pass
        return None
    except TimeoutError:
        return f"{host}:{port} did not answer within {timeout:g} s"
    except OSError as exc:
        return f"connection to {host}:{port} failed: {exc}"
    finally:
        sock.close()


def configured_pbxes(settings: Settings) -> list[dict[str, Any]]:
    """The PBXes this installation listens to: the main HOTLINE_AMI_* settings, and one per
    ``*.env`` file in HOTLINE_AMI_PBX_DIR (what each ``hotline-ami@NAME`` unit reads)."""
    pbxes: list[dict[str, Any]] = []
    if settings.ami_username:
        pbxes.append({"name": settings.ami_name or "main", "host": settings.ami_host, "port": settings.ami_port,
                      "username": settings.ami_username, "secret": settings.ami_secret})
    folder = getattr(settings, "ami_pbx_dir", None)
    if folder and Path(folder).is_dir():
        from dotenv import dotenv_values

        for path in sorted(Path(folder).glob("*.env")):
            values = {k: v or "" for k, v in dotenv_values(path).items()}
            try:
                port = int(values.get("HOTLINE_AMI_PORT") or 5038)
            except ValueError:
                port = -1
            pbxes.append({"name": path.stem, "file": str(path),
                          "host": values.get("HOTLINE_AMI_HOST") or settings.ami_host, "port": port,
                          "username": values.get("HOTLINE_AMI_USERNAME") or settings.ami_username,
                          "secret": values.get("HOTLINE_AMI_SECRET") or settings.ami_secret})
    return pbxes


def _lines(settings: Settings, state: dict[str, Any], providers: Iterable[str]) -> int | None:
    if not state.get("db_ok") or not state.get("migrated"):
        return None
    from hotline.centres.models import Line

    engine = _engine(settings.effective_database_url)
    try:
        with engine.connect() as conn:
            return len(conn.execute(select(Line.id).where(Line.provider.in_(list(providers)),
                                                          Line.active.is_(True))).all())
    except Exception:  # noqa: BLE001 - the database check reports it
        return None
    finally:
        engine.dispose()


def check_ami(settings: Settings, state: dict[str, Any]) -> list[Result]:
    pbxes = configured_pbxes(settings)
    if not pbxes:
        lines = _lines(settings, state, ["asterisk"])
        if lines:
            return [Result("ami", WARN, f"{lines} Asterisk line(s) exist but no AMI user is configured",
                           "set HOTLINE_AMI_HOST/PORT/USERNAME/SECRET (deploy/asterisk/manager.conf) and run hotline ami")]
        return [Result("ami", OK, "no Asterisk PBX configured")]
    out = []
    for pbx in pbxes:
        name = f"ami:{pbx['name']}"
        where = f"{pbx['host']}:{pbx['port']}"
        if not pbx["username"] or not pbx["secret"]:
            out.append(Result(name, FAIL, f"{where}: HOTLINE_AMI_USERNAME or HOTLINE_AMI_SECRET is empty",
                              f"set both{' in ' + pbx['file'] if 'file' in pbx else ''} to the user of manager.conf"))
            continue
        if not 0 < pbx["port"] < 65536:
            out.append(Result(name, FAIL, f"invalid AMI port in {pbx.get('file', 'HOTLINE_AMI_PORT')}",
                              "HOTLINE_AMI_PORT is a number, normally 5038"))
            continue
        problem = ami_login(pbx["host"], pbx["port"], pbx["username"], pbx["secret"])
        if problem is None:
            out.append(Result(name, OK, f"logged in to {where} as {pbx['username']}"))
        else:
            out.append(Result(name, FAIL, problem,
                              "check that Asterisk runs, manager.conf has this user and secret, its permit= covers "
                              f"this machine, and the firewall lets this machine reach port {pbx['port']}"))
    return out


def pbx_name_of(settings: Settings, pbx: dict[str, Any]) -> str:
    """The name a configured PBX's listener goes by (its calls' source; what centres and lines name):
    the env file's name (the hotline-ami@NAME unit), HOTLINE_AMI_NAME, else ami:HOST:PORT."""
    if "file" in pbx:
        return str(pbx["name"])
    return settings.ami_name or f"ami:{pbx['host']}:{pbx['port']}"


def check_pbx_routing(settings: Settings, state: dict[str, Any]) -> list[Result]:
    """Several PBXes: each centre's calls to place go to a PBX that has a listener here."""
    if not state.get("db_ok") or not state.get("migrated"):
        return []
    from hotline.centres.models import Centre, Line

    known = {pbx_name_of(settings, p) for p in configured_pbxes(settings)}
    engine = _engine(settings.effective_database_url)
    try:
        with engine.connect() as conn:
            centres = conn.execute(select(Centre.id, Centre.code, Centre.pbx).where(Centre.active.is_(True))).all()
            lines = conn.execute(select(Line.centre_id, Line.identifier, Line.pbx, Line.overflow_centre_id).where(
                Line.active.is_(True), Line.provider.in_(["asterisk", "any"]))).all()
    finally:
        engine.dispose()
    named = [(f"centre {c.code}", c.pbx) for c in centres if c.pbx] + [(f"line {ln.identifier}", ln.pbx)
                                                                        for ln in lines if ln.pbx]
    if not named and len(known) <= 1:
        return []  # one PBX (or none): every call placed goes out on it
    out: list[Result] = []
    for what, pbx in named:
        if pbx not in known:
            out.append(Result("pbx-routing", WARN, f"{what} names PBX {pbx!r}, which has no listener configured here "
                              f"(known: {', '.join(sorted(known)) or 'none'}): its calls to place fail after "
                              f"{settings.pbx_pending_seconds} s unless hotline-ami@{pbx} runs elsewhere",
                              f"add /etc/hotline/pbx/{pbx}.env and run hotline-ami@{pbx}, or correct the name"))
    if len(known) > 1:
        with_lines = {ln.centre_id for ln in lines}
        lines_named = {ln.centre_id for ln in lines if ln.pbx}
        for c in centres:
            if c.id in with_lines and not c.pbx and c.id not in lines_named:
                out.append(Result("pbx-routing", WARN, f"{len(known)} PBXes, and centre {c.code} names none: its "
                                  "callbacks go out on whichever listener takes them first",
                                  f"hotline centre pbx {c.code} NAME (one of {', '.join(sorted(known))})"))
    if len(known) > 1 and (plain := _linkedid_without_system_name(settings)):
        out.append(Result("pbx-routing", WARN, f"{len(known)} PBXes, and calls are reported with Linkedids that "
                          f"do not name their PBX (e.g. {plain}): two PBXes number their channels alike "
                          "(<epoch>.<counter>), so two callers of the same second could become one call",
                          "set systemname in each PBX's asterisk.conf ([options] systemname = NAME, "
                          "deploy/asterisk/README.md) and restart it"))
    if not out:
        where = {c.code: c.pbx or "any" for c in centres}
        # A line whose overflow centre is served by another PBX: its callers cross a trunk, and are
        # one call only if the dial plans pass HOTLINE_ORIGIN (deploy/asterisk/README.md).
        by_id = {c.id: c for c in centres}
        trunks = sorted({(ln.identifier, ln.pbx or by_id[ln.centre_id].pbx, by_id[ln.overflow_centre_id].pbx)
                         for ln in lines if ln.centre_id in by_id and ln.overflow_centre_id in by_id
                         and (ln.pbx or by_id[ln.centre_id].pbx) and by_id[ln.overflow_centre_id].pbx
                         and (ln.pbx or by_id[ln.centre_id].pbx) != by_id[ln.overflow_centre_id].pbx})
        over = "".join(f"; line {line} overflows from {a} to {b} over a trunk (HOTLINE_ORIGIN in both dial plans)"
                       for line, a, b in trunks)
        out.append(Result("pbx-routing", OK, "calls placed go out on: " + ", ".join(
            f"{code} → {pbx}" for code, pbx in sorted(where.items())) + over,
            details={"centres": where, "overflow_trunks": [list(t) for t in trunks]}))
    return out


_PLAIN_LINKEDID = re.compile(r"\d+\.\d+")


def _linkedid_without_system_name(settings: Settings) -> str | None:
    """A recent Asterisk call key numbered without the PBX's ``systemname`` (``1796460243.0``, not
    ``north-1796460243.0``), or None."""
    from hotline.calls.models import CallKey

    engine = _engine(settings.effective_database_url)
    try:
        with engine.connect() as conn:
            keys = conn.scalars(select(CallKey.key).where(CallKey.provider == "asterisk", CallKey.kind == "call")
                                .order_by(CallKey.id.desc()).limit(500)).all()
    finally:
        engine.dispose()
    return next((k for k in keys if _PLAIN_LINKEDID.fullmatch(k)), None)


def check_telephony_gaps(settings: Settings, state: dict[str, Any]) -> list[Result]:
    """Listener outages of the last 24 h: calls inside them may be missing from the counts."""
    if not state.get("db_ok") or not state.get("migrated"):
        return []
    from sqlalchemy.orm import Session

    from hotline.ingest.gaps import recent_gaps

    engine = _engine(settings.effective_database_url)
    try:
        with Session(engine) as session:
            gaps = recent_gaps(session, hours=24)
    finally:
        engine.dispose()
    if not gaps:
        return [Result("telephony_gaps", OK, "no listener outage in the last 24 h")]
    open_ = [g for g in gaps if g["ended_at"] is None]
    longest = max(g["seconds"] for g in gaps)
    recovered = sum(g["recovered_calls"] for g in gaps)
    what = (f"{len(gaps)} listener outage(s) in the last 24 h (longest {longest} s, {recovered} call(s) recovered "
            f"from queue_log); calls inside them may be missing from the day's counts")
    if open_:
        what = f"{open_[0]['source']} not heard since {open_[0]['started_at']}; " + what
    return [Result("telephony_gaps", WARN, what,
                   "keep hotline ami running (systemd restarts it) and set HOTLINE_AMI_QUEUE_LOG to Asterisk's "
                   "queue_log so calls inside an outage are recovered",
                   details={"gaps": gaps})]


# ---------------------------------------------------------------------- secrets
def secret_fields(settings: Settings) -> list[str]:
    names = []
    for name in type(settings).model_fields:
        if any(part in name for part in ("secret", "token", "key", "password", "passphrase")) \
                and not name.endswith(("_file", "_dir", "_seconds", "_days")):
            names.append(name)
    return names


def check_secrets(settings: Settings, state: dict[str, Any]) -> list[Result]:
    out = []
    problems: list[str] = []
    for name in secret_fields(settings):
        value = getattr(settings, name)
        if isinstance(value, str) and value and is_placeholder(value):
            problems.append(f"HOTLINE_{name.upper()} still has the example value")
    key = settings.secret_key
    if not key:
        if settings.is_production:
            problems.append("HOTLINE_SECRET_KEY is not set (the application refuses to start in production)")
        else:
            out.append(Result("secrets", WARN, "HOTLINE_SECRET_KEY is not set: a key generated into the data "
                              "directory is used", "set HOTLINE_SECRET_KEY before production, and keep it: it keys "
                              "the caller-number hash"))
    elif len(key) < MIN_SECRET_LENGTH and not is_placeholder(key):
        problems.append(f"HOTLINE_SECRET_KEY is only {len(key)} characters long")
    if settings.api_token and len(settings.api_token) < 24 and not is_placeholder(settings.api_token):
        problems.append(f"HOTLINE_API_TOKEN is only {len(settings.api_token)} characters long")
    if problems:
        fix = ("generate each with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))' "
               "and put it in /etc/hotline/hotline.env")
        status = FAIL if settings.is_production or any("example value" in p for p in problems) else WARN
        out.append(Result("secrets", status, "; ".join(problems), fix))
    elif not out:
        out.append(Result("secrets", OK, "secrets are set and none is an example value"))
    return out


# ---------------------------------------------------------------------- clock and timezone
def check_clock(settings: Settings, state: dict[str, Any]) -> list[Result]:
    now = datetime.now(timezone.utc)
    if now.year < 2025:
        return [Result("clock", FAIL, f"the system clock says {now:%Y-%m-%d %H:%M} UTC",
                       "set the time and enable NTP: timedatectl set-ntp true")]
    skews = {}
    if "db_now" in state:
        skews["PostgreSQL"] = (state["db_local_now"] - state["db_now"]).total_seconds()
    if "redis_now" in state:
        skews["Redis"] = (state["redis_local_now"] - state["redis_now"]).total_seconds()
    worst = max(skews.items(), key=lambda kv: abs(kv[1]), default=None)
    if worst is None:
        return [Result("clock", OK, f"{now:%Y-%m-%d %H:%M:%S} UTC (no other server to compare with)")]
    name, skew = worst
    text_ = ", ".join(f"{k} {v:+.1f} s" for k, v in skews.items())
    if abs(skew) >= CLOCK_FAIL_SECONDS:
        return [Result("clock", FAIL, f"this machine's clock differs from {name}'s by {skew:+.1f} s ({text_})",
                       "enable NTP on every machine (timedatectl set-ntp true; or install chrony): call times and "
                       "the daily log depend on it", details={"skew": skews})]
    if abs(skew) >= CLOCK_WARN_SECONDS:
        return [Result("clock", WARN, f"clock differs from {name}'s by {skew:+.1f} s",
                       "enable NTP on every machine (timedatectl set-ntp true)", details={"skew": skews})]
    return [Result("clock", OK, f"in step with {' and '.join(skews)} ({text_})", details={"skew": skews})]


def check_timezone(settings: Settings, state: dict[str, Any]) -> list[Result]:
    bad = []
    try:
        ZoneInfo(settings.default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        bad.append(f"HOTLINE_DEFAULT_TIMEZONE={settings.default_timezone!r}")
    if state.get("db_ok") and state.get("migrated"):
        from hotline.centres.models import Centre

        engine = _engine(settings.effective_database_url)
        try:
            with engine.connect() as conn:
                for code, tz in conn.execute(select(Centre.code, Centre.timezone)):
                    try:
                        ZoneInfo(tz)
                    except (ZoneInfoNotFoundError, ValueError):
                        bad.append(f"centre {code} has timezone {tz!r}")
        except Exception:  # noqa: BLE001 - the database check reports it
            pass
        finally:
            engine.dispose()
    if bad:
        return [Result("timezone", FAIL, "unknown timezone: " + "; ".join(bad),
                       "use an IANA name such as Asia/Ho_Chi_Minh (and install tzdata: apt-get install tzdata)")]
    return [Result("timezone", OK, f"{settings.default_timezone} is known")]


# ---------------------------------------------------------------------- Twilio and the public URL
def check_twilio(settings: Settings, state: dict[str, Any]) -> list[Result]:
    lines = _lines(settings, state, ["twilio", "any"])
    public = settings.public_base_url
    out = []
    if not lines and not settings.twilio_auth_token:
        return [Result("twilio", OK, "no Twilio line configured")]
    if lines and not settings.twilio_auth_token:
        out.append(Result("twilio", FAIL, f"{lines} Twilio line(s) exist but HOTLINE_TWILIO_AUTH_TOKEN is empty: "
                          "every Twilio webhook is refused", "set HOTLINE_TWILIO_AUTH_TOKEN to the account's auth token"))
    if not public.startswith("https://"):
        status = FAIL if settings.is_production else WARN
        out.append(Result("public-url", status, f"HOTLINE_PUBLIC_BASE_URL is {public}: Twilio must call an https URL",
                          "set it to the exact https address configured in Twilio (deploy/twilio/README.md)"))
    elif settings.is_production and ("127.0.0.1" in public or "localhost" in public):
        out.append(Result("public-url", FAIL, f"HOTLINE_PUBLIC_BASE_URL is {public}, which Twilio cannot reach",
                          "set it to the public https address configured in Twilio"))
    if not out:
        out.append(Result("twilio", OK, f"auth token set; webhooks checked against {public}"))
    return out


# ---------------------------------------------------------------------- the data directory
def check_data_dir(settings: Settings, state: dict[str, Any]) -> list[Result]:
    folder = Path(settings.data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".check-{time.time_ns()}"
        probe.write_text("x")
        probe.unlink()
    except OSError as exc:
        return [Result("data-dir", FAIL, f"cannot write to {folder.resolve()}: {exc.strerror or exc}",
                       "the disk spool needs it during a database outage: chown it to the hotline user")]
    spool = folder / "spool"
    waiting = len([*spool.glob("*.jsonl"), *spool.glob("*.claimed-*")]) if spool.is_dir() else 0
    if waiting:
        return [Result("data-dir", WARN, f"{waiting} spool file(s) of events wait in {spool.resolve()}",
                       "they are replayed once the database answers; if they stay, check the worker's log")]
    stray = len(list(spool.glob("*.tmp"))) if spool.is_dir() else 0
    if stray:
        return [Result("data-dir", WARN, f"{stray} half-written .tmp file(s) in {spool.resolve()}",
                       "left by a process stopped while writing; the web process's spool drainer removes "
                       "them within a minute")]
    free = shutil.disk_usage(folder).free
    if free < SPOOL_MIN_FREE_BYTES:
        return [Result("data-dir", WARN, f"only {free // 1024 // 1024} MB free for the disk spool in {folder.resolve()}",
                       "during a database outage events then wait in the processes' memory (see /readyz "
                       "checks.spool and hotline_spool_memory_events): free some space")]
    return [Result("data-dir", OK, f"{folder.resolve()} is writable, {free // 1024 // 1024} MB free")]


# ---------------------------------------------------------------------- keys for data at rest
def check_encryption(settings: Settings, state: dict[str, Any]) -> list[Result]:
    """The keys for notes and full numbers load, and every stored value is readable with them."""
    from sqlalchemy.orm import Session

    from hotline.security import crypto, service

    fix_keys = ("set HOTLINE_ENCRYPTION_KEYS to a key made with 'hotline keys generate' (newest first, old keys "
                "after it until 'hotline keys rotate' has finished); keep a copy off this machine")
    try:
        crypto.Keyring(settings.effective_encryption_keys)
        crypto.HashKeyring.from_secrets(settings.effective_number_hash_keys)
    except Exception as exc:  # noqa: BLE001 - reported
        return [Result("encryption", FAIL, f"the data-at-rest keys cannot be used: {exc}"[:300], fix_keys)]
    out: list[Result] = []
    if not settings.encryption_keys.strip():
        out.append(Result("encryption", WARN, "HOTLINE_ENCRYPTION_KEYS is not set: a key generated into the data "
                          "directory encrypts notes and full numbers", fix_keys))
    if state.get("db_ok") and state.get("migrated"):
        engine = _engine(settings.effective_database_url)
        try:
            with Session(engine) as session:
                status = service.key_status(session)
        except Exception as exc:  # noqa: BLE001 - reported
            out.append(Result("encryption", WARN, f"cannot count values per key: {type(exc).__name__}", ""))
            return out
        finally:
            engine.dispose()
        missing = status.unreadable()
        if missing:
            out.append(Result("encryption", FAIL, f"values are encrypted with key(s) {', '.join(missing)} that are not "
                              "configured: those notes and numbers cannot be read",
                              "add the old key(s) back to HOTLINE_ENCRYPTION_KEYS (after the newest), then run: "
                              "hotline keys rotate"))
        elif status.rows_left():
            out.append(Result("encryption", WARN, f"{status.rows_left()} value(s) are not yet under the newest keys",
                              "run: hotline keys rotate (safe while the service runs)"))
    if not out:
        out.append(Result("encryption", OK, "the data-at-rest keys load and protect every stored value"))
    return out


# ---------------------------------------------------------------------- web protections (#14)
REQUIRED_HEADERS = {
    "content-security-policy": "a Content-Security-Policy",
    "x-frame-options": "X-Frame-Options",
    "referrer-policy": "a Referrer-Policy",
}


def _header_problems(client: Any) -> list[str]:
    """Ask the application itself (in process, no network) what it answers."""
    problems: list[str] = []
    page = client.get("/login")
    for name, label in REQUIRED_HEADERS.items():
        if name not in page.headers:
            problems.append(f"pages are served without {label}")
    csp = page.headers.get("content-security-policy", "")
    if csp and ("'unsafe-inline'" in csp or "script-src" not in csp and "default-src" not in csp):
        problems.append("the Content-Security-Policy allows inline scripts")
    if csp and "frame-ancestors 'none'" not in csp:
        problems.append("the Content-Security-Policy lacks frame-ancestors 'none'")
    api = client.get("/api/calls")
    if "no-store" not in api.headers.get("cache-control", ""):
        problems.append("/api/* answers lack Cache-Control: no-store")
    return problems


def check_web_protections(settings: Settings, state: dict[str, Any]) -> list[Result]:
    """Security headers, the API schema, the second factor and partner webhooks, as configured."""
    from fastapi.testclient import TestClient

    from hotline.app import create_app

    client = TestClient(create_app(), base_url=settings.public_base_url or "https://localhost",
                        raise_server_exceptions=False)
    problems = _header_problems(client)
    warnings: list[str] = []
    if settings.is_production:
        for path in ("/openapi.json", "/api/docs", "/docs"):
            r = client.get(path, follow_redirects=False)
            if r.status_code == 200:
                problems.append(f"{path} is served to anonymous users in production")
    required = {r.strip() for r in settings.totp_required_roles.split(",") if r.strip()}
    missing = {"supervisor", "administrator"} - required
    if missing:
        text = (f"a second factor is not required of: {', '.join(sorted(missing))} "
                "(HOTLINE_TOTP_REQUIRED_ROLES)")
        (problems if settings.is_production else warnings).append(text)
    if settings.referral_allow_http_webhooks:
        text = "HOTLINE_REFERRAL_ALLOW_HTTP_WEBHOOKS is set: referrals may travel in clear text"
        (problems if settings.is_production else warnings).append(text)
    fix = ("keep the defaults: hotline.web adds the headers; in production leave HOTLINE_TOTP_REQUIRED_ROLES "
           "at supervisor,administrator and HOTLINE_REFERRAL_ALLOW_HTTP_WEBHOOKS unset")
    out = []
    for p in problems:
        out.append(Result("web-protections", WARN, p, fix))
    for w in warnings:
        out.append(Result("web-protections", WARN, w + " (acceptable outside production)", fix))
    if not out:
        out.append(Result("web-protections", OK, "CSP without inline scripts, frame-ancestors 'none', "
                          "X-Frame-Options, Referrer-Policy, no-store on /api, second factor required"
                          + (", no anonymous API schema" if settings.is_production else "")))
    return out


CHECKS: tuple[Callable[[Settings, dict[str, Any]], list[Result]], ...] = (
    check_database, check_redis, check_ami, check_pbx_routing, check_telephony_gaps, check_secrets, check_encryption, check_clock, check_timezone, check_twilio, check_data_dir,
    check_web_protections,
)


def run_checks(settings: Settings) -> list[Result]:
    state: dict[str, Any] = {}
    results: list[Result] = []
    for check in CHECKS:
        try:
            results.extend(check(settings, state))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            results.append(Result(check.__name__.removeprefix("check_"), FAIL,
                                  f"the check itself failed: {type(exc).__name__}: {exc}"[:300]))
    return results


def as_json(results: list[Result]) -> dict[str, Any]:
    return {"ok": not any(r.status == FAIL for r in results),
            "checks": [{k: v for k, v in asdict(r).items() if v or k in ("name", "status", "message")}
                       for r in results]}


def as_text(results: list[Result]) -> str:
    width = max((len(r.name) for r in results), default=8)
    lines = []
    for r in results:
        lines.append(f"{r.status.upper():<4}  {r.name:<{width}}  {r.message}")
        if r.fix and r.status != OK:
            lines.append(f"{'':<4}  {'':<{width}}  → {r.fix}")
    fails = sum(r.status == FAIL for r in results)
    warns = sum(r.status == WARN for r in results)
    lines.append("")
    lines.append(f"{fails} failure(s), {warns} warning(s)" if fails or warns else "all checks passed")
    return "\n".join(lines)
