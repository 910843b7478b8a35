"""``deploy/`` checked with the real tools Debian has (nginx -t, systemd-analyze verify), and kept
consistent with the code: every setting documented, queue names and AMI classes as the code uses."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from hotline.settings import Settings
from tests.conftest import ROOT
from tests.ops.conftest import DEPLOY, HOTLINE, free_port, wait_for

ENV_TEMPLATE = DEPLOY / "hotline.env.example"
SETTING_LINE = re.compile(r"^#?\s*(HOTLINE_[A-Z0-9_]+)=", re.M)


# ---------------------------------------------------------------------- the environment file
def test_env_template_documents_every_setting_and_nothing_else():
    documented = set(SETTING_LINE.findall(ENV_TEMPLATE.read_text(encoding="utf-8")))
    fields = {f"HOTLINE_{name.upper()}" for name in Settings.model_fields}
    missing = sorted(fields - documented)
    unknown = sorted(documented - fields)
    assert not missing, (f"deploy/hotline.env.example does not document {', '.join(missing)}: add each with a "
                         "comment saying what it does and its default")
    assert not unknown, f"deploy/hotline.env.example names settings that do not exist: {', '.join(unknown)}"


def test_every_setting_in_the_env_template_has_a_comment_above_it():
    lines = ENV_TEMPLATE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if SETTING_LINE.match(line):
            above = [lines[j] for j in range(max(0, i - 8), i)]
            assert any(ln.startswith("# ") and not SETTING_LINE.match(ln) for ln in above), \
                f"no explanation above {line!r} in deploy/hotline.env.example"


def test_env_template_placeholders_fail_hotline_check(sqlite_env, tmp_path, monkeypatch, capsys):
    """The values an IT officer must replace are caught by hotline check, not run in production."""
    import json

    from dotenv import dotenv_values

    from hotline.cli import main
    from hotline.settings import reset_settings

    for name, value in dotenv_values(ENV_TEMPLATE).items():  # what systemd would put in the environment
        monkeypatch.setenv(name, value or "")
    for name in ("HOTLINE_DATABASE_URL", "HOTLINE_REDIS_URL", "HOTLINE_DATA_DIR", "HOTLINE_AMI_PBX_DIR"):
        monkeypatch.setenv(name, {"HOTLINE_DATABASE_URL": sqlite_env.database_url, "HOTLINE_REDIS_URL": "",
                                  "HOTLINE_DATA_DIR": str(tmp_path / "data"),
                                  "HOTLINE_AMI_PBX_DIR": str(tmp_path / "none")}[name])
    reset_settings()
    assert main(["check", "--json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    reset_settings()
    assert checks["secrets"]["status"] == "fail"
    for name in ("HOTLINE_SECRET_KEY", "HOTLINE_BACKUP_KEY"):
        assert name in checks["secrets"]["message"]


# ---------------------------------------------------------------------- nginx
@pytest.fixture
def nginx_conf(tmp_path: Path) -> Path:
    """deploy/nginx/hotline.conf with its paths moved into tmp and its ports free, inside a
    minimal nginx.conf like Debian's (http context, mime types)."""
    if not Path(nginx_binary()).exists():
        pytest.fail("nginx is not installed: run scripts/setup --test (it installs Debian's nginx)")
    (tmp_path / "logs").mkdir()
    twilio = tmp_path / "twilio"
    shutil.copytree(DEPLOY / "twilio", twilio)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hotline.test",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    http_port, https_port = free_port(), free_port()
    conf = (DEPLOY / "nginx" / "hotline.conf").read_text()
    for old, new in [
        ("/etc/nginx/hotline/upstream-servers.conf", str(tmp_path / "upstream.conf")),
        ("/etc/letsencrypt/live/hotline.example.org/fullchain.pem", str(tmp_path / "cert.pem")),
        ("/etc/letsencrypt/live/hotline.example.org/privkey.pem", str(tmp_path / "key.pem")),
        ("/var/log/nginx/", str(tmp_path / "logs") + "/"),
        ("/etc/hotline/twilio/", str(twilio) + "/"),
        ("/var/www/letsencrypt", str(tmp_path / "acme")),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
    ]:
        assert old in conf, f"deploy/nginx/hotline.conf no longer has {old!r}; update this test"
        conf = conf.replace(old, new)
    (tmp_path / "hotline.conf").write_text(conf)
    upstream = (DEPLOY / "nginx" / "upstream-servers.conf").read_text()
    assert re.search(r"^server 127\.0\.0\.1:8001 ", upstream, re.M)
    (tmp_path / "upstream.conf").write_text(upstream)
    # Every path nginx writes is in tmp, so that an ordinary user can run it: the pid, the error log
    # (also the one opened before the configuration is read: see nginx_command's -e), the temp
    # folders and the http-level access log, whose compiled-in default is /var/log/nginx/access.log.
    # As root the workers would run as nobody and could not read the test's private tmp folder.
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(f"""
{user}
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log {tmp_path}/logs/access.log;
    client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi; uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/hotline.conf;
}}
""")
    (tmp_path / "ports").write_text(f"{http_port} {https_port}")
    return tmp_path / "nginx.conf"


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_command(conf: Path, *extra: str) -> list[str]:
    """nginx on the test's configuration, with the prefix and the startup error log in its folder
    (the compiled-in ones are under /var, which an ordinary user cannot write)."""
    return [nginx_binary(), "-c", str(conf), "-p", str(conf.parent), "-e", str(conf.parent / "logs" / "error.log"),
            *extra]


def test_nginx_accepts_the_shipped_configuration(nginx_conf: Path):
    result = subprocess.run(nginx_command(nginx_conf, "-t"),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_nginx_serves_the_fallback_twiml_to_twilio_posts_and_redirects_http(nginx_conf: Path):
    """Twilio POSTs to its fallback URL; nginx answers with the static TwiML even with no web
    process running at all."""
    http_port, https_port = (int(p) for p in (nginx_conf.parent / "ports").read_text().split())
    proc = subprocess.Popen(nginx_command(nginx_conf, "-g", "daemon off;"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"https://127.0.0.1:{https_port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", verify=False, timeout=1).status_code in (502, 504)
            except httpx.HTTPError:
                return False

        wait_for(up, 10, "nginx")  # /healthz is proxied, and nothing listens upstream: 502
        for path in ("/twilio-fallback/fallback.xml", "/twilio-fallback/wait.xml", "/twilio-fallback/agent-fallback.xml"):
            r = httpx.post(base + path, data={"CallSid": "CA1", "From": "+84912345678"}, verify=False)
            assert r.status_code == 200, (path, r.status_code)
            assert r.headers["content-type"].startswith("text/xml")
            ET.fromstring(r.content)
        r = httpx.post(base + "/twilio-fallback/fallback.xml", verify=False)
        assert b"<Enqueue" in r.content
        assert r.headers["strict-transport-security"].startswith("max-age=")
        r = httpx.get(f"http://127.0.0.1:{http_port}/live", follow_redirects=False)
        assert r.status_code == 301 and r.headers["location"].startswith("https://")
        # /metrics is refused to anyone but this machine even before the application sees it
        assert "deny all;" in (nginx_conf.parent / "hotline.conf").read_text().split("location = /metrics")[1][:400]
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Nginx:
    def __init__(self, conf: Path):
        self.conf = conf
        self.http_port, self.https_port = (int(p) for p in (conf.parent / "ports").read_text().split())
        self.base = f"https://127.0.0.1:{self.https_port}"

    def __enter__(self) -> _Nginx:
        self.proc = subprocess.Popen(nginx_command(self.conf, "-g", "daemon off;"),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def up() -> bool:
            try:
                httpx.get(f"{self.base}/twilio-fallback/wait.xml", verify=False, timeout=1)
                return True
            except httpx.HTTPError:
                return False

        wait_for(up, 10, "nginx")
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_twilio_signatures_and_live_screens_work_through_nginx(nginx_conf: Path, sqlite_env, monkeypatch):
    """A signed Twilio request with a query string reaches the application through nginx with
    its signature intact, and a live screen's events stream through without buffering."""
    from urllib.parse import urlencode

    from hotline.auth import service as auth
    from tests.live.conftest import PASSWORD, make_staff, session_cookie
    from tests.live.sse_helpers import LiveServer
    from tests.twilio.conftest import base_params, sign

    hashed = auth.hash_password(PASSWORD)
    monkeypatch.setattr(auth, "hash_password", lambda password: hashed)
    make_staff(sqlite_env)
    with LiveServer() as app:
        (nginx_conf.parent / "upstream.conf").write_text(f"server 127.0.0.1:{app.port};\n")
        with _Nginx(nginx_conf) as nginx:
            path = "/webhooks/twilio/enqueue-action?queue=hotline-default&attempt=0"
            params = base_params(QueueResult="hangup", QueueTime="12", CallStatus="completed")
            r = httpx.post(nginx.base + path, content=urlencode(params), verify=False,
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "X-Twilio-Signature": sign(path, params)})
            assert r.status_code == 200, r.text  # 403 would mean the path or query was altered on the way
            r = httpx.post(nginx.base + path, content=urlencode(params), verify=False,
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "X-Twilio-Signature": sign(path.replace("attempt=0", "attempt=1"), params)})
            assert r.status_code == 403  # and a signature for another URL is still refused

            from hotline.auth.deps import SESSION_COOKIE
            from tests.live.conftest import feed_call

            seen: list[str] = []
            with httpx.Client(verify=False, cookies={SESSION_COOKIE: session_cookie("gs1")[0]},
                              timeout=httpx.Timeout(5, read=5)) as client:
                with client.stream("GET", nginx.base + "/live/events") as stream:
                    assert stream.status_code == 200
                    # Each event must arrive while the stream stays open (nothing held in nginx's
                    # buffers, or the read would time out).
                    for line in stream.iter_lines():
                        if line.startswith("event: "):
                            seen.append(line[7:])
                            if seen[-1] == "hello":
                                feed_call(agent="PJSIP/tvv1")
                            if seen[-1] == "call":
                                break
            assert seen[0] == "hello" and seen[-1] == "call"


def test_nginx_keeps_twilio_urls_intact_and_streams_live_events():
    conf = (DEPLOY / "nginx" / "hotline.conf").read_text()
    # No URI part on proxy_pass: the path and query reach the application exactly as Twilio signed them.
    assert re.findall(r"proxy_pass\s+([^;]+);", conf) and all(
        p == "http://hotline_web" for p in re.findall(r"proxy_pass\s+([^;]+);", conf))
    for header in ("Host $host", "X-Forwarded-Proto $scheme", "X-Forwarded-For $proxy_add_x_forwarded_for"):
        assert f"proxy_set_header {header};" in conf
    live = conf.split("location /live/events", 1)[1].split("}", 1)[0]
    assert "proxy_buffering off;" in live and "proxy_read_timeout 1h;" in live


# ---------------------------------------------------------------------- systemd
UNITS = ["hotline-web@8001.service", "hotline-worker@1.service", "hotline-ami@pbx1.service",
         "hotline-backup.service", "hotline-backup.timer", "hotline.target"]


def test_systemd_units_verify(tmp_path: Path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is not installed (Debian: apt-get install systemd)")
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/opt/hotline/.venv/bin/hotline", HOTLINE)
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *[f"./{u}" for u in UNITS]],
                            cwd=tmp_path, capture_output=True, text=True)
    problems = [ln for ln in result.stderr.splitlines() if "hotline" in ln]
    assert result.returncode == 0 and not problems, result.stderr


def test_systemd_verify_catches_a_broken_unit(tmp_path: Path):
    """The check above can fail: a misspelt key and a missing program are reported."""
    text = (DEPLOY / "systemd" / "hotline-worker@.service").read_text()
    (tmp_path / "hotline-worker@.service").write_text(text.replace("Restart=always", "Restart=always\nRestrat=no"))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", "./hotline-worker@1.service"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert "Restrat" in result.stderr or result.returncode != 0


def test_units_run_the_real_commands():
    units = {u.name: u.read_text() for u in (DEPLOY / "systemd").iterdir()}
    assert "hotline serve --host 127.0.0.1 --port %i" in units["hotline-web@.service"]
    assert "ExecStart=/opt/hotline/.venv/bin/hotline worker\n" in units["hotline-worker@.service"]
    ami = units["hotline-ami@.service"]
    assert "hotline ami --source %i" in ami and "EnvironmentFile=/etc/hotline/pbx/%i.env" in ami
    from hotline.cli import build_parser

    parser = build_parser()
    for argv in (["serve", "--host", "127.0.0.1", "--port", "8001"], ["worker"], ["ami", "--source", "pbx1"],
                 ["backup", "create", "--output", "/var/backups/hotline/", "--keep", "14"]):
        parser.parse_args(argv)  # the units' command lines are ones hotline accepts


# ---------------------------------------------------------------------- Twilio and Asterisk samples
def test_fallback_twiml_enqueues_into_the_queue_hotline_uses():
    from webhooks.twilio.views import queue_name

    settings = Settings(_env_file=None)
    tree = ET.parse(DEPLOY / "twilio" / "fallback.xml").getroot()
    enqueue = tree.find("Enqueue")
    assert enqueue is not None and enqueue.text == queue_name(settings, settings.default_centre_code)
    assert enqueue.get("waitUrl") == "wait.xml" and (DEPLOY / "twilio" / "wait.xml").exists()
    agent = ET.parse(DEPLOY / "twilio" / "agent-fallback.xml").getroot()
    assert agent.find("Dial/Queue").text == enqueue.text


def _ini(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and "]" in line:
            current = line[1:line.index("]")]
            sections.setdefault(current, [])
        elif "=>" in line or "=" in line:
            key, _, value = line.partition("=>") if "=>" in line else line.partition("=")
            sections.setdefault(current, []).append((key.strip(), value.strip()))
    return sections


def test_asterisk_manager_user_is_least_privilege_and_bound_to_the_pbx_network():
    conf = _ini(DEPLOY / "asterisk" / "manager.conf")
    general = dict(conf["general"])
    assert general["enabled"] == "yes" and general["bindaddr"] != "0.0.0.0" and general["timestampevents"] == "yes"
    user = conf["hotline"]
    keys = [k for k, _ in user]
    assert ("deny", "0.0.0.0/0.0.0.0") in user and keys.index("deny") < keys.index("permit")
    d = dict(user)
    assert set(d["read"].split(",")) == {"call", "agent"}
    # Filter + CoreShowChannels (system), QueuePause (agent) and Originate (originate: callbacks and
    # supervisors' listen-in, hotline.pbx): nothing that can redirect or end calls ("call") or run CLI
    # commands ("command"), nor read or change the configuration.
    assert set(d["write"].split(",")) == {"system", "agent", "originate"}
    assert "CHANGE-ME" in d["secret"]
    # The listener asks for exactly the event classes the user may read.
    from hotline.ingest.providers.asterisk.listener import AmiListener

    assert AmiListener.__init__.__kwdefaults__["events"] == "call,agent"


def test_readme_asterisk_section_matches_deploy():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Connecting Asterisk", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^\s*read = call,agent\b", section, re.M)
    assert re.search(r"^\s*write = system,agent,originate\b", section, re.M)
    assert "deploy/asterisk/" in section
    twilio = readme.split("## Connecting Twilio", 1)[1].split("\n## ", 1)[0]
    assert "/twilio-fallback/fallback.xml" in twilio and "deploy/twilio/" in twilio


def test_asterisk_queue_has_a_member_per_counsellor_and_the_dialplan_a_recording_notice():
    queues = _ini(DEPLOY / "asterisk" / "queues.conf")
    members = [v.split(",") for k, v in queues["hotline"] if k == "member"]
    assert len(members) >= 2 and all(m[0] == m[3] and m[0].startswith("PJSIP/") for m in members)
    opts = dict(queues["hotline"])
    # autofill (parallel offers), no obsolete keywords (Asterisk only warns about them)
    assert dict(queues["general"])["autofill"] == "yes" and opts["ringinuse"] == "no"
    assert not {"eventwhencalled", "eventmemberstatus"} & set(opts)
    dialplan = (DEPLOY / "asterisk" / "extensions.conf").read_text(encoding="utf-8")
    # one member model: static members only, no dynamic AddQueueMember beside them
    assert "AddQueueMember" not in dialplan
    inbound = dialplan.split("\n[hotline-in]\n", 1)[1].split("\n[", 1)[0]
    assert "Playback(hotline/recording-notice)" in inbound and "Queue(hotline" in inbound
    # the line's queue and wait from hotline (failing open to the hotline queue and its timeout), then
    # the overflow centre's queue, then the callback message for missed calls
    assert "Set(HOTLINE_QUEUE=hotline)" in inbound and "Set(HOTLINE_WAIT=${HOTLINE_QUEUE_TIMEOUT})" in inbound
    assert "Queue(${HOTLINE_QUEUE},t,,,${HOTLINE_WAIT})" in inbound and "(overflow)" in inbound
    assert inbound.index("recording-notice)") < inbound.index("MixMonitor(") < inbound.index("Queue(${HOTLINE_QUEUE}")
    assert inbound.index("Queue(${HOTLINE_QUEUE}") < inbound.index("Queue(${HOTLINE_OVERFLOW}") < \
        inbound.index("(callback)")
    supervisors = [v.split(",") for k, v in queues["hotline-supervisors"] if k == "member"]
    assert supervisors and all(m[0] == m[3] and m[0].startswith("PJSIP/") for m in supervisors)


# ---------------------------------------------------------------------- compose
def test_compose_file_runs_every_part_with_the_real_commands():
    text = (DEPLOY / "compose" / "compose.yaml").read_text()
    services = re.findall(r"^  ([a-z]+):\n", text.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0], re.M)
    assert set(services) >= {"postgres", "redis", "migrate", "web", "worker", "listener", "nginx"}
    for command in ('["hotline", "db", "upgrade"]', '["hotline", "serve", "--host", "0.0.0.0", "--port", "8000"]',
                    '["hotline", "worker"]', '["hotline", "ami"]'):
        assert command in text
    # every file the compose file mounts or builds from exists
    compose_dir = DEPLOY / "compose"
    for rel in re.findall(r"- (\.\.?/[^:]+):", text):
        if "certs/" not in rel:
            assert (compose_dir / rel).resolve().exists(), rel
    assert (ROOT / "deploy" / "compose" / "Dockerfile").exists()
    assert "server web:8000" in (compose_dir / "upstream-servers.conf").read_text()


def test_deploy_readme_covers_what_an_it_officer_needs():
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for needle in ("hotline check", "hotline db upgrade", "hotline-web@", "hotline-worker@", "hotline-ami@",
                   "hotline backup create", "hotline backup restore", "/readyz", "/metrics", "nginx -t",
                   "HOTLINE_METRICS_TOKEN", "FORWARDED_ALLOW_IPS", "Several machines"):
        assert needle in text, needle
    # every file it points at exists
    for rel in re.findall(r"`(deploy/[\w./@-]+)`", text):
        assert (ROOT / rel.rstrip("/")).exists(), rel


def test_pbx_env_example_is_read_by_hotline_check(tmp_path: Path):
    from hotline.ops.check import configured_pbxes

    (tmp_path / "pbx1.env").write_text((DEPLOY / "pbx.env.example").read_text())
    settings = Settings(_env_file=None, ami_pbx_dir=tmp_path)
    [pbx] = configured_pbxes(settings)
    assert pbx == {"name": "pbx1", "file": str(tmp_path / "pbx1.env"), "host": "10.0.0.5", "port": 5038,
                   "username": "hotline", "secret": "CHANGE-ME-long-random-ami-secret"}


def test_timer_and_backup_unit_agree():
    timer = (DEPLOY / "systemd" / "hotline-backup.timer").read_text()
    assert "OnCalendar=" in timer and "Persistent=true" in timer
    service = (DEPLOY / "systemd" / "hotline-backup.service").read_text()
    assert "ReadWritePaths=/var/backups/hotline" in service and "--output /var/backups/hotline/" in service
