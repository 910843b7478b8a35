"""``hotline callbacks list|build|hours``: the callback worklist from the command line (masked numbers only),
and each centre's callback hours."""

from __future__ import annotations

import argparse
import json
from typing import Any

from callbacks import service
from hotline.cli import CliError
from hotline.db import session_scope, utcnow
from hotline.i18n import Text

CLI_ACTOR = service.CliActor()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cb = sub.add_parser("callbacks", help="the callback worklist: missed and abandoned calls to call back")
    cs = cb.add_subparsers(dest="callbacks_command", required=True)
    p = cs.add_parser("build", help="make, merge, close and expire callback items now (the worker does it every minute)")
    p.add_argument("--centre", help="a centre code (default: every centre)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_build)
    p = cs.add_parser("list", help="callbacks waiting (masked numbers)")
    p.add_argument("--centre", help="a centre code (default: every centre)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)
    p = cs.add_parser("hours", help="a centre's callback hours (shown, set or cleared: audited as on /callbacks/settings)")
    p.add_argument("--centre", required=True, help="a centre code")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--set", dest="hours", metavar="HH:MM-HH:MM", help="the centre's own callback hours")
    what.add_argument("--clear", action="store_true", help="back to HOTLINE_CALLBACK_HOURS")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_hours)


def _centre_id(session: Any, code: str | None) -> int | None:
    if not code:
        return None
    from sqlalchemy import select

    from hotline.centres.models import Centre

    centre_id = session.scalar(select(Centre.id).where(Centre.code == code))
    if centre_id is None:
        raise CliError(Text("No centre with the code %(code)s.", code=code))
    return int(centre_id)


def cmd_build(args: argparse.Namespace) -> int:
    with session_scope() as session:
        result = service.build(session, centre_id=_centre_id(session, args.centre)).as_dict()
    if args.json:
        print(json.dumps(result))
    else:
        print(Text("callbacks: %(made)s made, %(merged)s merged into waiting ones, %(closed)s closed, %(expired)s expired",
                   **result))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    now = utcnow()
    with session_scope() as session:
        items = service.open_items(session, actor=CLI_ACTOR, now=now, centre_id=_centre_id(session, args.centre),
                                   limit=10_000)
        names = service.user_names(session, [i.claimed_by_id for i in items])
        rows: list[dict[str, Any]] = [{
            "id": i.id, "centre_id": i.centre_id, "number": i.number_masked, "kind": i.kind,
            "missed_at": i.missed_at.isoformat(), "missed_calls": i.missed_calls, "attempts": i.attempts,
            "status": i.status, "claimed_by": names.get(i.claimed_by_id or 0), "expires_at": i.expires_at.isoformat(),
            "not_before": nb.isoformat() if (nb := service.not_before(session, i.centre_id, now, i.next_attempt_at)) else None}
            for i in items]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print(Text("No caller is waiting for a callback."))
    for r in rows:  # words in the reader's language, never the codes (those are in --json)
        held = f"  {Text('Claimed by %(name)s', name=r['claimed_by'] or '?')}" if r["status"] == "claimed" else ""
        print(f"#{r['id']}  {r['number']}  {r['missed_at'][:16]}  {Text(service.KIND_LABELS[r['kind']])}  "
              f"{r['attempts']}/{service._max_attempts()}{held}")
    return 0


def cmd_hours(args: argparse.Namespace) -> int:
    from hotline.errors import Invalid

    with session_scope() as session:
        centre_id = _centre_id(session, args.centre)
        if args.hours is not None or args.clear:
            try:
                service.set_hours(session, actor=CLI_ACTOR, centre_id=centre_id, hours="" if args.clear else args.hours)
            except Invalid as e:
                raise CliError(next(iter(e.messages.values()))) from None
        own = service.own_hours(session, centre_id) if centre_id is not None else None
        hours = service.centre_hours(session, centre_id)
    if args.json:
        print(json.dumps({"centre": args.centre, "hours": hours.setting(), "own": own is not None}))
    elif own is not None:
        print(Text("%(centre)s: callback hours %(hours)s.", centre=args.centre, hours=hours.setting()))
    else:
        print(Text("%(centre)s: callback hours %(hours)s (the default).", centre=args.centre, hours=hours.setting()))
    return 0
