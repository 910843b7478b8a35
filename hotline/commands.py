"""Core sub-commands: db, serve, worker, demo, centre, line, agent."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotline.settings import Settings, get_settings, reset_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hotline.centres.models import Centre


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database migrations")
    dbs = db.add_subparsers(dest="db_command", required=True)
    p = dbs.add_parser("upgrade", help="apply every pending migration (all domains)")
    p.add_argument("--revision", default="heads")
    p.set_defaults(handler=cmd_db_upgrade)
    p = dbs.add_parser("downgrade", help="undo migrations down to a revision")
    p.add_argument("revision", help="a revision id, or base")
    p.set_defaults(handler=cmd_db_downgrade)
    p = dbs.add_parser("status", help="say whether the database is fully migrated")
    p.set_defaults(handler=cmd_db_status)

    p = sub.add_parser("serve", help="run the web application")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("worker", help="run background jobs (RQ, with the scheduler)")
    p.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    p.add_argument("--fork", action="store_true", help="run each job in a forked child (isolation; ~140 ms per job)")
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("demo", help="start everything with demo data: SQLite, in-process queue, simulated calls")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--interval", type=float, default=8.0, help="seconds between simulated calls")
    p.add_argument("--data-dir", default="var/demo")
    p.set_defaults(handler=cmd_demo)

    centre = sub.add_parser("centre", help="centres served by this installation")
    cs = centre.add_subparsers(dest="centre_command", required=True)
    p = cs.add_parser("add")
    p.add_argument("code")
    p.add_argument("name")
    p.add_argument("--timezone", default="Asia/Ho_Chi_Minh")
    p.add_argument("--province")
    p.add_argument("--pbx", default="", help="the PBX (hotline-ami@NAME) where its phones and queues live")
    p.set_defaults(handler=cmd_centre_add)
    p = cs.add_parser("pbx", help="name the PBX where a centre's phones and queues live (its callbacks go out there)")
    p.add_argument("code")
    p.add_argument("name", nargs="?", default="", help="the PBX's name (hotline-ami@NAME); omit for any")
    p.set_defaults(handler=cmd_centre_pbx)
    p = cs.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_centre_list)

    line = sub.add_parser("line", help="numbers and queues a centre answers")
    ls = line.add_subparsers(dest="line_command", required=True)
    p = ls.add_parser("add")
    p.add_argument("--centre", required=True)
    p.add_argument("--provider", choices=["asterisk", "twilio", "any"], required=True)
    p.add_argument("--kind", choices=["number", "queue"], required=True)
    p.add_argument("identifier", help="a DID / Twilio number, or a queue name")
    p.add_argument("--label", default="")
    p.add_argument("--pbx", default="", help="the PBX whose trunk carries this number (default: the centre's)")
    p.set_defaults(handler=cmd_line_add)

    agent = sub.add_parser("agent", help="map a queue member / Twilio client identity to a counsellor")
    ags = agent.add_subparsers(dest="agent_command", required=True)
    p = ags.add_parser("map")
    p.add_argument("--centre", required=True)
    p.add_argument("--provider", choices=["asterisk", "twilio"], required=True)
    p.add_argument("identity", help="e.g. PJSIP/counsellor1 or client:counsellor1")
    p.add_argument("--username", help="the counsellor's user name (omit to unmap)")
    p.set_defaults(handler=cmd_agent_map)


def _url() -> str:
    return get_settings().effective_database_url


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from hotline import migrate
    from hotline.db import session_scope
    from hotline.seed import sync_taxonomies

    migrate.upgrade(_url(), args.revision)
    with session_scope() as session:
        sync_taxonomies(session)
    print("database is up to date")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from hotline import migrate

    migrate.downgrade(_url(), args.revision)
    print(f"database downgraded to {args.revision}")
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    from hotline import migrate

    missing = migrate.pending(_url())
    if missing:
        print(f"pending migrations: {', '.join(sorted(missing))}; run: hotline db upgrade")
        return 1
    print("database is fully migrated")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run("hotline.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, proxy_headers=True, log_config=None, timeout_graceful_shutdown=5)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from hotline.ingest.spool import start_drainer
    from hotline.queue import run_worker

    stop = start_drainer()
    try:
        run_worker(burst=args.burst, fork=args.fork)
    finally:
        stop()
    return 0


def _centre(code: str) -> tuple[Session, Centre]:
    from hotline.centres.service import get_centre
    from hotline.cli import CliError
    from hotline.db import new_session

    session = new_session()
    try:
        return session, get_centre(session, code)
    except LookupError as exc:
        session.close()
        raise CliError(str(exc)) from None


def cmd_centre_add(args: argparse.Namespace) -> int:
    from hotline.centres.service import create_centre
    from hotline.cli import CliError
    from hotline.db import session_scope

    with session_scope() as session:
        try:
            centre = create_centre(session, code=args.code, name=args.name, timezone=args.timezone,
                                   province_code=args.province, pbx=args.pbx)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        print(f"centre {centre.code} added (id {centre.id})")
    return 0


def cmd_centre_pbx(args: argparse.Namespace) -> int:
    from hotline.centres.service import set_centre_pbx
    from hotline.cli import CliError

    session, centre = _centre(args.code)
    with session:
        try:
            set_centre_pbx(session, centre, args.name)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        session.commit()
        print(f"centre {centre.code}: calls placed for it go out on "
              f"{'PBX ' + centre.pbx if centre.pbx else 'any PBX (none named)'}")
    return 0


def cmd_centre_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from hotline.centres.models import Centre
    from hotline.db import session_scope

    with session_scope() as session:
        rows: list[dict[str, Any]] = [{"code": c.code, "name": c.name, "timezone": c.timezone, "default": c.is_default,
                 "pbx": c.pbx,
                 "lines": [f"{ln.provider}:{ln.kind}:{ln.identifier}{'@' + ln.pbx if ln.pbx else ''}" for ln in c.lines]}
                for c in session.scalars(select(Centre).order_by(Centre.code))]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        for r in rows:
            print(f"{r['code']}\t{r['name']}\t{r['timezone']}{'  (default)' if r['default'] else ''}"
                  f"{'  pbx=' + r['pbx'] if r['pbx'] else ''}\t{' '.join(r['lines'])}")
    return 0


def cmd_line_add(args: argparse.Namespace) -> int:
    from hotline.centres.service import add_line
    from hotline.cli import CliError

    session, centre = _centre(args.centre)
    with session:
        try:
            line = add_line(session, centre=centre, provider=args.provider, kind=args.kind,
                            identifier=args.identifier, label=args.label, pbx=args.pbx)
            session.commit()
        except ValueError as exc:
            raise CliError(str(exc)) from None
        print(f"line {line.identifier} ({line.provider} {line.kind}) now belongs to {centre.code}")
    return 0


def cmd_agent_map(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from hotline.auth.models import User
    from hotline.centres.service import map_agent
    from hotline.cli import CliError

    session, centre = _centre(args.centre)
    with session:
        user_id = None
        if args.username:
            user = session.scalar(select(User).where(User.username == args.username))
            if user is None:
                raise CliError(f"no user named {args.username!r}; create it first")
            user_id = user.id
        map_agent(session, centre=centre, provider=args.provider, identity=args.identity, user_id=user_id)
        session.commit()
    print(f"{args.identity} → {args.username or '(nobody)'}")
    return 0


def _print_demo_banner(args: argparse.Namespace, settings: Settings, info: dict[str, Any]) -> None:
    """Where the demo is, its accounts role first (what each one is for), and how to stop and reset it."""
    from sqlalchemy import select

    from hotline.auth.models import User
    from hotline.db import session_scope

    with session_scope() as session:
        roles: dict[str, str] = {name: role for name, role in session.execute(select(User.username, User.role))}
    order = {"counsellor": 0, "supervisor": 1, "administrator": 2, "partner": 3}
    logins = sorted(info["logins"], key=lambda login: (order.get(roles.get(login[0], ""), 9), login[0]))
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    base = f"http://{shown}:{args.port}"
    out = sys.stderr
    print("\nhotline demo is running", file=out)
    print(f"  open {base}/ and sign in with a demo account (role  username / password):", file=out)
    for username, password in logins:
        print(f"    {roles.get(username, '?'):<14} {username} / {password}", file=out)
    if shown != args.host:
        print(f"  listening on every address: from another machine, http://THIS-MACHINE'S-ADDRESS:{args.port}/", file=out)
    print(f"  API: curl -H 'Authorization: Bearer {info['api_token']}' {base}/api/calls", file=out)
    print(f"  data, accounts and passwords: {Path(settings.data_dir).resolve()} (demo_logins.json); "
          "delete that folder to start afresh", file=out)
    print(f"  a simulated caller rings the Asterisk queue every ~{args.interval:g} s; Ctrl+C stops\n", file=out)


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything in one process: web app, AMI listener, and a simulated PBX placing calls."""
    import uvicorn

    os.environ.setdefault("HOTLINE_DATA_DIR", args.data_dir)
    os.environ.setdefault("HOTLINE_LOG_FORMAT", "console")
    os.environ["HOTLINE_REDIS_URL"] = ""  # embedded defaults: in-process queue and pub/sub
    # The demo relaxes the second factor (production requires it of supervisors and administrators).
    os.environ.setdefault("HOTLINE_TOTP_REQUIRED_ROLES", "")
    reset_settings()
    settings = get_settings()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    from hotline.logging import configure_logging

    configure_logging(settings.log_level, args.log_format or settings.log_format)
    # Fifteen "Running upgrade" lines would come before the accounts the newcomer needs.
    logging.getLogger("alembic").setLevel(logging.WARNING)

    from hotline import migrate
    from hotline.db import session_scope
    from hotline.ingest.providers.asterisk.listener import AmiListener
    from hotline.ingest.providers.asterisk.simulator import DemoPbx
    from hotline.seed import seed_demo, sync_taxonomies

    migrate.upgrade(settings.effective_database_url)
    with session_scope() as session:
        sync_taxonomies(session)
        info = seed_demo(session)
    # Starter data of the domains (the directory, the legal library), so their panels have content.
    from hotline import domains

    for seed in domains.demo_seeds():
        with session_scope() as session:
            seed(session)

    pbx = DemoPbx(host="127.0.0.1", port=0, username="hotline-demo", secret=info["ami_secret"],
                  interval=args.interval, queue="hotline", agents=info["agents"])
    pbx.start()
    listener = AmiListener(host="127.0.0.1", port=pbx.port, username="hotline-demo", secret=info["ami_secret"],
                           source="demo-pbx")
    listener.start()
    _print_demo_banner(args, settings, info)
    os.environ["HOTLINE_API_TOKEN"] = info["api_token"]
    reset_settings()
    stopper = threading.Event()
    try:
        uvicorn.run("hotline.app:create_app", factory=True, host=args.host, port=args.port, log_config=None,
                    timeout_graceful_shutdown=5)
    finally:
        stopper.set()
        listener.stop()
        pbx.stop()
    return 0
