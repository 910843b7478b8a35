"""``hotline user create|disable|enable|reset-password|list``.

Passwords are typed at a prompt (twice, not echoed) or read from standard input with
``--password-stdin`` (one line), never taken as an argument that would land in shell history.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from hotline.audit import service as audit
from hotline.auth import service
from hotline.auth.models import LANGUAGES, ROLES
from hotline.db import session_scope

CLI_ACTOR = "cli"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser("user", help="accounts: create, disable, reset passwords, list")
    us = user.add_subparsers(dest="user_command", required=True)

    p = us.add_parser("create", help="create an account (the password is prompted for)")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--centre", help="centre code (see `hotline centre list`); default: the default centre")
    p.add_argument("--name", default="", help="display name")
    p.add_argument("--language", default="vi", choices=LANGUAGES)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(handler=cmd_create)

    p = us.add_parser("disable", help="disable an account and sign it out everywhere")
    p.add_argument("username")
    p.set_defaults(handler=cmd_disable)

    p = us.add_parser("enable", help="let a disabled account sign in again")
    p.add_argument("username")
    p.set_defaults(handler=cmd_enable)

    p = us.add_parser("reset-password", help="set a new password and sign the account out everywhere")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(handler=cmd_reset_password)

    p.add_argument("--temporary", action="store_true",
                   help="the user must choose their own password at the next sign-in")

    p = us.add_parser("reset-2fa", help="remove an account's second factor (it sets up a new one at the next "
                                        "sign-in) and sign it out everywhere")
    p.add_argument("username")
    p.set_defaults(handler=cmd_reset_second_factor)

    p = us.add_parser("list", help="list accounts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)


def _read_password(args: argparse.Namespace) -> str:
    from hotline.cli import CliError

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("--password-stdin found no password on standard input: pipe one line, "
                           "e.g. `printf '%s\\n' \"$PW\" | hotline user …`; nothing was changed")
        return password
    if not sys.stdin.isatty():
        raise CliError("no terminal to prompt for the password: use --password-stdin and pipe it in")
    first = getpass.getpass("Mật khẩu / Password: ")
    second = getpass.getpass("Nhập lại / Again: ")
    if first != second:
        raise CliError("the two passwords differ; nothing was changed, run the command again")
    return first


def _fail(exc: service.AccountError) -> None:
    """Vietnamese first, English second; nothing has been written (the transaction rolls back)."""
    from hotline.cli import CliError
    from hotline.i18n import translator

    raise CliError(f"{exc.translate(translator('vi'))} / {exc}") from None


def cmd_create(args: argparse.Namespace) -> int:
    from hotline.centres.service import ensure_default_centre
    from hotline.settings import get_settings

    password = _read_password(args)
    settings = get_settings()
    with session_scope() as db:
        try:
            if args.centre:
                centre_id = service.resolve_centre(db, code=args.centre)
            else:
                centre_id = ensure_default_centre(db, code=settings.default_centre_code,
                                                  name=settings.default_centre_name,
                                                  timezone=settings.default_timezone).id
            user = service.create_user(db, username=args.username, password=password, role=args.role,
                                       centre_id=centre_id, display_name=args.name, language=args.language)
        except service.AccountError as exc:
            _fail(exc)
        audit.record(db, actor=CLI_ACTOR, action="user.create", object_type="user", object_id=user.id,
                     detail={"role": user.role, "centre_id": centre_id})
        print(f"created {user.username} ({user.role}), id {user.id}")
    return 0


def _set_active(username: str, active: bool) -> int:
    with session_scope() as db:
        try:
            user = service.require_user(db, username=username)
        except service.AccountError as exc:
            _fail(exc)
        service.set_active(db, user=user, active=active)
        audit.record(db, actor=CLI_ACTOR, action="user.enable" if active else "user.disable",
                     object_type="user", object_id=user.id)
        print(f"{user.username} {'enabled' if active else 'disabled and signed out everywhere'}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    return _set_active(args.username, False)


def cmd_enable(args: argparse.Namespace) -> int:
    return _set_active(args.username, True)


def cmd_reset_password(args: argparse.Namespace) -> int:
    with session_scope() as db:
        try:
            user = service.require_user(db, username=args.username)
        except service.AccountError as exc:
            _fail(exc)
    password = _read_password(args)
    with session_scope() as db:
        user = service.require_user(db, username=args.username)
        try:
            service.set_password(db, user=user, password=password, temporary=args.temporary)
        except service.AccountError as exc:
            _fail(exc)
        audit.record(db, actor=CLI_ACTOR, action="user.password_reset", object_type="user", object_id=user.id)
        print(f"password of {user.username} changed; signed out everywhere")
    return 0


def cmd_reset_second_factor(args: argparse.Namespace) -> int:
    """For an administrator who lost phone and recovery codes (the pages need a signed-in administrator)."""
    from hotline.auth import second_factor

    with session_scope() as db:
        try:
            user = service.require_user(db, username=args.username)
        except service.AccountError as exc:
            _fail(exc)
        second_factor.reset(user)
        service.end_all_sessions(db, user_id=user.id)
        audit.record(db, actor=CLI_ACTOR, action="user.second_factor_reset", object_type="user", object_id=user.id)
        print(f"second factor of {user.username} removed; signed out everywhere; they set up a new one at the next sign-in")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with session_scope() as db:
        users = service.list_users(db)
        centres = {c.id: c.code for c in service.centre_choices(db)}
        rows: list[dict[str, Any]] = [{"username": u.username, "role": u.role, "centre": centres.get(u.centre_id or -1, ""),
                 "active": u.active, "language": u.language,
                 "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None} for u in users]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no users yet: create one with `hotline user create USERNAME --role administrator`")
        return 0
    width = max(len(r["username"]) for r in rows)
    for r in rows:
        state = "active" if r["active"] else "DISABLED"
        print(f"{r['username']:<{width}}  {r['role']:<13}  {r['centre'] or '-':<20}  {state}")
    return 0
