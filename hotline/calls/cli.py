"""``hotline calls export``: calls as JSON lines or CSV, numbers masked."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from hotline.cli import CliError


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; write it as YYYY-MM-DD") from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    calls = sub.add_parser("calls", help="read calls back")
    cs = calls.add_subparsers(dest="calls_command", required=True)
    p = cs.add_parser("export", help="export calls (numbers masked) as JSON lines or CSV")
    p.add_argument("--since", type=_date, help="first local date, YYYY-MM-DD (inclusive)")
    p.add_argument("--until", type=_date, help="last local date, YYYY-MM-DD (inclusive)")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--status", action="append", default=[], help="only this status (repeatable)")
    p.add_argument("--centre", help="only this centre's calls (its timezone sets the day boundaries)")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from hotline.calls.service import CallFilter, date_range, export
    from hotline.centres.service import get_centre
    from hotline.db import session_scope
    from hotline.settings import get_settings

    with session_scope() as session:
        tz = get_settings().default_timezone
        centre_ids = None
        if args.centre:
            try:
                centre = get_centre(session, args.centre)
            except LookupError as exc:
                raise CliError(str(exc)) from None
            tz, centre_ids = centre.timezone, [centre.id]
        since, until = date_range(args.since, args.until, tz)
        try:
            flt = CallFilter(since=since, until=until, statuses=args.status, centre_ids=centre_ids)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if args.out:
            with open(args.out, "w", encoding="utf-8", newline="") as fh:
                count = export(session, flt=flt, fmt=args.format, out=fh)
        else:
            count = export(session, flt=flt, fmt=args.format, out=sys.stdout)
        from hotline.audit.service import record as audit

        audit(session, actor=None, action="export", object_type="calls", object_id="cli",
              detail={"count": count, "format": args.format, "since": str(args.since), "until": str(args.until)})
    print(f"exported {count} calls", file=sys.stderr)
    return 0
