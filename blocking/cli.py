"""``hotline block add|list|lift``: block a caller's number for a while, list active blocks, lift one."""

from __future__ import annotations

import argparse
import json
from typing import Any

from blocking import service
from blocking.service import Actor
from hotline.cli import CliError
from hotline.db import session_scope
from hotline.errors import DomainError
from hotline.i18n import Text

CLI_ACTOR = Actor(id=0, username="cli", role="administrator", centre_id=None)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    block = sub.add_parser("block", help="block abusive or prank callers' numbers for a while")
    bs = block.add_subparsers(dest="block_command", required=True)
    p = bs.add_parser("add", help="block a number (never a withheld one)")
    p.add_argument("number")
    p.add_argument("--for", dest="duration", required=True, help="how long: 12h, 3d, 2w or 6m (30-day months)")
    p.add_argument("--reason", required=True)
    p.set_defaults(handler=cmd_add)
    p = bs.add_parser("list", help="active blocks (masked numbers)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)
    p = bs.add_parser("lift", help="end a block now")
    p.add_argument("block_id", type=int)
    p.set_defaults(handler=cmd_lift)


def cmd_add(args: argparse.Namespace) -> int:
    try:
        with session_scope() as session:
            block = service.add_block(session, actor=CLI_ACTOR, number=args.number, duration=args.duration,
                                      reason=args.reason)
            print(Text("block #%(id)s: %(number)s until %(until)s", id=block.id, number=block.number_masked,
                       until=block.expires_at.isoformat(timespec="minutes")))
    except DomainError as exc:
        raise CliError(exc.detail()) from exc
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with session_scope() as session:
        rows: list[dict[str, Any]] = [{"id": b.id, "number": b.number_masked, "reason": b.reason, "until": b.expires_at.isoformat(),
                 "by": b.created_by} for b in service.active_blocks(session, CLI_ACTOR)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    elif not rows:
        print(Text("No number is blocked."))
    for r in [] if args.json else rows:
        print(f"#{r['id']}  {r['number']}  {r['until'][:16]}  {r['by']}  {r['reason']}")
    return 0


def cmd_lift(args: argparse.Namespace) -> int:
    try:
        with session_scope() as session:
            block = service.lift(session, actor=CLI_ACTOR, block_id=args.block_id)
            print(Text("block #%(id)s lifted", id=block.id))
    except DomainError as exc:
        raise CliError(exc.detail()) from exc
    return 0
