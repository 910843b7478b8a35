"""Private, throwaway PostgreSQL and Redis servers for the test suite (standard library only).

``scripts/test`` runs the suite through ``python -m tests.services run -- <pytest command>``:

* under ``CI=true`` it starts nothing: the suite uses this machine's PostgreSQL (127.0.0.1:5432) and
  Redis (127.0.0.1:6379), and fails when they are unreachable;
* otherwise, for each of PostgreSQL and Redis that is not reachable at the URL the suite would use
  (``HOTLINE_TEST_PG``, ``HOTLINE_TEST_REDIS``, or those defaults), or for both when
  ``HOTLINE_TEST_PRIVATE_SERVICES=1``, it starts a private server as the invoking user in a temp
  directory (data, logs and unix socket), listening on 127.0.0.1 on a free port; runs the command
  with ``HOTLINE_TEST_PG`` / ``HOTLINE_TEST_REDIS`` pointing at it; and stops it and removes the
  directory when the command ends (also on Ctrl-C or SIGTERM). Servers already running are never
  touched. When the server programs are missing it first runs ``scripts/setup --services``, which
  says what it installs with apt before using sudo.

The classes are for tests too, e.g. a fault test that stops and restarts its own database::

    with PostgresServer() as pg:          # initdb + start in a temp dir, on a free port
        url = pg.url("postgres")          # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        pg.stop(); pg.start()             # same data, same port (also pg.restart(), pg.kill())
    with RedisServer() as r:
        r.url(3); r.restart()

As root, PostgreSQL runs as the ``postgres`` user (or ``nobody``): initdb refuses to run as root.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
PREFIX = "hotline-services-"


class ServiceError(RuntimeError):
    """A private server could not be found, installed or started (the message says why)."""


# ---------------------------------------------------------------------- small helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def url_address(url: str, default_port: int) -> tuple[str, int] | str:
    """(host, port) of a service URL, or the path of its unix socket."""
    parts = urlsplit(url.replace("postgresql+psycopg", "postgresql", 1))
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "127.0.0.1"
    if host.startswith("/"):
        return os.path.join(host, f".s.PGSQL.{parts.port or default_port}")
    return host, parts.port or default_port


def reachable(url: str, default_port: int, timeout: float = 1.0) -> bool:
    address = url_address(url, default_port)
    try:
        if isinstance(address, str):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(timeout)
                s.connect(address)
        else:
            socket.create_connection(address, timeout=timeout).close()
        return True
    except OSError:
        return False


def usable(url: str, default_port: int) -> tuple[bool, str]:
    """Does the server at ``url`` answer the suite, not only accept a connection? (ok, why not).
    PostgreSQL: signs in with psycopg when it is importable (Debian's own cluster wants a password
    from postgres@127.0.0.1, for one); Redis: PING answered PONG (no password required)."""
    if not reachable(url, default_port):
        return False, "not reachable"
    if default_port == 6379:
        if urlsplit(url).password:
            return True, ""  # signs in with its password: trust the URL
        address = url_address(url, default_port)
        try:
            family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
            with socket.socket(family) as s:
                s.settimeout(3)
                s.connect(address)
                s.sendall(b"PING\r\n")
                answer = s.recv(64)
        except OSError as exc:
            return False, str(exc)
        return answer.startswith(b"+PONG"), answer.decode(errors="replace").strip()
    try:
        import psycopg
    except ImportError:
        return True, ""
    try:
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), connect_timeout=5).close()
        return True, ""
    except psycopg.Error as exc:
        return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _wait(predicate, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = ""
            if log is not None and log.exists():
                tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise ServiceError(f"{what} did not start within {timeout:g} s{tail}")
        time.sleep(0.1)


def _as_root() -> bool:
    return os.geteuid() == 0


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServiceError("running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as")


# ---------------------------------------------------------------------- finding the programs
def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server's bin directory (Debian/Ubuntu: /usr/lib/postgresql/N/bin)."""
    override = os.environ.get("HOTLINE_TEST_PG_BINDIR")
    if override:
        return Path(override)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def redis_binary() -> str | None:
    return shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)


def install_missing(postgres: bool, redis: bool) -> None:
    """Install the server programs with ``scripts/setup --services`` (apt, through sudo when not root)."""
    missing = (postgres and postgres_bindir() is None) or (redis and redis_binary() is None)
    if not missing:
        return
    subprocess.run(["bash", str(ROOT / "scripts" / "setup"), "--services"], check=False)
    if postgres and postgres_bindir() is None:
        raise ServiceError("PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
                           "sudo apt-get install postgresql")
    if redis and redis_binary() is None:
        raise ServiceError("redis-server is not installed: sudo apt-get install redis-server")


# ---------------------------------------------------------------------- the servers
class _Server(ABC):
    name = "server"

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix=PREFIX))
        os.chmod(self.base_dir, 0o711)  # an unprivileged PostgreSQL (when root) must get through it
        self.port = port or free_port()
        self.running = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory (when it made it)."""
        try:
            self.stop()
        finally:
            if self._own_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)


class PostgresServer(_Server):
    """A PostgreSQL cluster of its own: trust authentication, superuser ``postgres``, 127.0.0.1 and a
    unix socket in its directory; durability off (fsync, synchronous_commit) since it is thrown away."""

    name = "PostgreSQL"

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        super().__init__(base_dir, port)
        bindir = postgres_bindir()
        if bindir is None:
            raise ServiceError("PostgreSQL's server programs are not installed: sudo apt-get install postgresql")
        self.bindir = bindir
        self.data = self.base_dir / "pg"
        self.sockets = self.base_dir / "pg-socket"
        self.log = self.base_dir / "postgresql.log"
        self._user = _unprivileged_user() if _as_root() else None

    @property
    def version(self) -> str:
        out = subprocess.run([str(self.bindir / "postgres"), "--version"], capture_output=True, text=True).stdout
        found = re.search(r"\d+(\.\d+)*", out)  # postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)
        return found.group(0) if found else "?"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8")
        result = subprocess.run([str(self.bindir / argv[0]), *argv[1:]], cwd=self.base_dir, env=env,
                                capture_output=True, text=True, start_new_session=True, **kwargs)
        if check and result.returncode != 0:
            raise ServiceError(f"{argv[0]} failed ({result.returncode}): {(result.stderr or result.stdout)[-1500:]}")
        return result

    def _init(self) -> None:
        self.data.mkdir(mode=0o700)
        self.sockets.mkdir(mode=0o700, exist_ok=True)
        self.log.touch()
        if self._user is not None:
            for path in (self.data, self.sockets, self.log):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\n# hotline tests: private and thrown away\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.sockets}'\nmax_connections = 200\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")

    def start(self) -> None:
        if self.running:
            return
        if not (self.data / "PG_VERSION").exists():
            self._init()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", f"-p {self.port}", "-w", "-t", "60",
                  "start")
        self.running = True
        _wait(lambda: reachable(self.url(), 5432), 30, "PostgreSQL", self.log)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart, fast or immediate, as pg_ctl)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)
        self.running = False

    def kill(self) -> None:
        """Stop abruptly, like a crash (the next start recovers)."""
        self.stop("immediate")


class RedisServer(_Server):
    """A redis-server of its own: no persistence, 64 databases, 127.0.0.1 and a unix socket."""

    name = "Redis"

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        super().__init__(base_dir, port)
        binary = redis_binary()
        if binary is None:
            raise ServiceError("redis-server is not installed: sudo apt-get install redis-server")
        self.binary = binary
        self.dir = self.base_dir / "redis"
        self.dir.mkdir(mode=0o700, exist_ok=True)
        self.log = self.dir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return next((w[2:] for w in out.split() if w.startswith("v=")), "?")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        if self.running:
            return
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
                "--unixsocket", str(self.dir / "redis.sock"), "--unixsocketperm", "700", "--dir", str(self.dir),
                "--save", "", "--appendonly", "no", "--databases", "64", "--daemonize", "no",
                "--logfile", str(self.log), "--pidfile", str(self.dir / "redis.pid")]
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.running = True

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(f"redis-server exited ({self.proc.returncode}); see {self.log}")
            return reachable(self.url(), 6379)

        _wait(up, 30, "Redis", self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.running = False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.running = False


# ---------------------------------------------------------------------- leftovers of killed runs
def _owner_alive(directory: Path) -> bool:
    try:
        pid = int((directory / "owner.pid").read_text())
    except (OSError, ValueError):
        return True  # not ours to judge: a library user's directory, or one being made
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def clean_leftovers() -> None:
    """Stop and remove private servers whose ``run`` was killed (SIGKILL, a closed machine session)."""
    for directory in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            if directory.stat().st_uid != os.geteuid() or _owner_alive(directory):
                continue
        except OSError:
            continue
        pid_file = directory / "redis" / "redis.pid"
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        if (directory / "pg" / "postmaster.pid").exists():
            try:
                PostgresServer(directory).kill()
            except ServiceError:
                pass
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------- run a command with them
def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def run(command: list[str]) -> int:
    """Run ``command`` with PostgreSQL and Redis available (private ones when needed); its exit code."""
    env = dict(os.environ)
    if _truthy(env.get("CI")):
        say("CI=true: using this machine's PostgreSQL and Redis (the tests fail if they are not running)")
        return subprocess.call(command, env=env)

    force = _truthy(env.get("HOTLINE_TEST_PRIVATE_SERVICES"))
    pg_url = env.get("HOTLINE_TEST_PG") or DEFAULT_PG
    redis_url = env.get("HOTLINE_TEST_REDIS") or DEFAULT_REDIS
    why_pg = why_redis = "HOTLINE_TEST_PRIVATE_SERVICES=1"
    want_pg = want_redis = force
    if not force:
        pg_ok, pg_problem = usable(pg_url, 5432)
        redis_ok, redis_problem = usable(redis_url, 6379)
        want_pg, want_redis = not pg_ok, not redis_ok
        why_pg = f"{_where(pg_url, 5432)}: {pg_problem}"
        why_redis = f"{_where(redis_url, 6379)}: {redis_problem}"
    if not want_pg:
        say(f"PostgreSQL: {_where(pg_url, 5432)} (already running)")
    if not want_redis:
        say(f"Redis: {_where(redis_url, 6379)} (already running)")
    if not (want_pg or want_redis):
        return subprocess.call(command, env=env)

    clean_leftovers()
    install_missing(want_pg, want_redis)
    base = Path(tempfile.mkdtemp(prefix=PREFIX))
    (base / "owner.pid").write_text(str(os.getpid()))
    servers: list[_Server] = []
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: object) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)
        else:
            raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGHUP, forward)
        if want_pg:
            pg = PostgresServer(base)
            servers.append(pg)
            pg.start()
            env["HOTLINE_TEST_PG"] = pg.url("postgres")
            say(f"PostgreSQL: private {pg.version} on 127.0.0.1:{pg.port} in {base} ({why_pg}; removed at the end)")
        if want_redis:
            redis = RedisServer(base)
            servers.append(redis)
            redis.start()
            env["HOTLINE_TEST_REDIS"] = redis.url(0)
            say(f"Redis: private {redis.version} on 127.0.0.1:{redis.port} ({why_redis}; removed at the end)")
        # Ctrl-C reaches the tests through the terminal; here it only waits for them to finish.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        child = subprocess.Popen(command, env=env)
        return child.wait()
    except ServiceError as exc:
        say(f"could not start the private services: {exc}")
        return 3
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for server in reversed(servers):
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others, then remove the folder
                say(f"stopping {server.name}: {exc}")
        shutil.rmtree(base, ignore_errors=True)


def _where(url: str, port: int) -> str:
    address = url_address(url, port)
    return address if isinstance(address, str) else f"{address[0]}:{address[1]}"


def say(message: str) -> None:
    print(f"tests: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.services", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub_run = sub.add_parser("run", help="run a command with PostgreSQL and Redis (private ones when needed)")
    sub_run.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("clean", help="stop and remove private servers left behind by killed runs")
    args = parser.parse_args(argv)
    if args.action == "clean":
        clean_leftovers()
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs a command, e.g. run -- python -m pytest")
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
