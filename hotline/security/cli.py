"""``hotline keys …`` (encryption and number-hash keys) and ``hotline retention …``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hotline.security import crypto


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="encryption keys for data at rest and the caller-number hash keys")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    p = ks.add_parser("generate", help="print a new key for HOTLINE_ENCRYPTION_KEYS (or HOTLINE_NUMBER_HASH_KEYS)")
    p.set_defaults(handler=cmd_generate)
    p = ks.add_parser("status", help="how many rows each key still protects")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)
    p = ks.add_parser("rotate", help="re-encrypt and re-hash under the newest keys, in batches, while the service runs")
    p.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")
    p.add_argument("--pause", type=float, default=0.0, help="seconds to wait between batches (spares a busy database)")
    p.add_argument("--only", choices=["encryption", "hashes"], help="rotate only one kind of key")
    p.set_defaults(handler=cmd_rotate)

    ret = sub.add_parser("retention", help="remove free text and full numbers after their retention periods")
    rs = ret.add_subparsers(dest="retention_command", required=True)
    p = rs.add_parser("run", help="apply the retention periods now (the worker also runs this daily)")
    p.add_argument("--dry-run", action="store_true", help="print what would be removed and change nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_retention_run)
    p = rs.add_parser("hold", help="place a call record under legal hold (retention skips it)")
    p.add_argument("record", type=int, help="the call record's number")
    p.add_argument("--reason", required=True, help="why, e.g. the court or police case it serves")
    p.set_defaults(handler=cmd_hold)
    p = rs.add_parser("release", help="end a record's legal hold")
    p.add_argument("record", type=int)
    p.set_defaults(handler=cmd_release)
    p = rs.add_parser("holds", help="list the records under legal hold")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_holds)


def _cli_error(exc: Exception) -> Exception:
    from hotline.cli import CliError

    return CliError(str(exc))


def cmd_generate(args: argparse.Namespace) -> int:
    print(crypto.generate_key())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from hotline.db import session_scope
    from hotline.security.service import key_status

    with session_scope() as session:
        status = key_status(session)
    if args.json:
        print(json.dumps(status.as_dict(), indent=2))
        return 0
    print(f"Encryption keys: newest {status.current_key}"
          + (f"; also readable: {', '.join(status.configured_keys[1:])}" if len(status.configured_keys) > 1 else ""))
    if not status.encryption:
        print("  nothing encrypted yet")
    for kid in sorted(status.encryption, key=lambda k: (k != status.current_key, k)):
        cols = status.encryption[kid]
        label = ("newest" if kid == status.current_key else "plaintext, not yet encrypted" if kid == "plaintext"
                 else "older key" if kid in status.configured_keys else "KEY NOT CONFIGURED: these rows cannot be read")
        print(f"  {kid:<10} {sum(cols.values()):>9} rows  ({label})")
        for name, count in sorted(cols.items()):
            print(f"      {name:<40} {count:>9}")
    print(f"Number-hash keys: newest {status.current_hash_key}"
          + (f"; also matched: {', '.join(status.configured_hash_keys[1:])}"
             if len(status.configured_hash_keys) > 1 else ""))
    for kid in sorted(status.hashes, key=lambda k: (k != status.current_hash_key, k)):
        v = status.hashes[kid]
        note = "" if kid == status.current_hash_key else (
            f"; {v['number_removed']} with the number removed keep this hash" if v["number_removed"] else "")
        print(f"  {kid:<10} {v['rows']:>9} calls{note}")
    left = status.rows_left()
    if status.unreadable():
        print(f"Put the missing keys back into HOTLINE_ENCRYPTION_KEYS: {', '.join(status.unreadable())}")
        return 1
    print(f"{left} rows still to rotate: run 'hotline keys rotate'." if left else
          "Every row is under the newest keys; older keys may be removed from the settings"
          + (" (keep an old hash key while calls with removed numbers should still link)." if any(
              v["number_removed"] for k, v in status.hashes.items() if k != status.current_hash_key) else "."))
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from hotline.security.service import SecurityError, rotate_keys

    def progress(name: str, done: int) -> None:
        print(f"  {name}: {done} rows", file=sys.stderr, flush=True)

    try:
        result = rotate_keys(batch_size=args.batch_size, pause=args.pause, encryption=args.only != "hashes",
                             hashes=args.only != "encryption", progress=progress)
    except SecurityError as exc:
        raise _cli_error(exc) from None
    total = sum(result.reencrypted.values())
    print(f"re-encrypted {total} values under key {crypto.keyring().current}")
    for name, count in sorted(result.reencrypted.items()):
        print(f"  {name}: {count}")
    print(f"re-hashed {result.rehashed} caller numbers under hash key {crypto.hash_keyring().current}")
    if result.hash_kept:
        print(f"  {result.hash_kept} calls whose number was removed by retention keep their old hash")
    if result.changed_meanwhile:
        print(f"  {result.changed_meanwhile} rows changed while rotating were left as the application wrote them")
    return 0


def cmd_retention_run(args: argparse.Namespace) -> int:
    from hotline.security.service import run_retention

    report = run_retention(dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    verb = "would remove" if args.dry_run else "removed"

    def ids(values: list[int]) -> str:
        shown = ", ".join(str(v) for v in values[:20])
        return f" ({shown}{', …' if len(values) > 20 else ''})" if values else ""

    if report.notes_cutoff is None:
        print("free text: kept forever (HOTLINE_RETENTION_NOTES_DAYS=0)")
    else:
        print(f"free text of records created before {report.notes_cutoff:%Y-%m-%d}: {verb} from "
              f"{len(report.records)} records{ids(report.records)}, {report.records_with_text} of them with text; "
              f"{report.revisions} revisions")
        print(f"  kept under legal hold: {report.held_records} records")
    if report.numbers_cutoff is None:
        print("full numbers: kept forever (HOTLINE_RETENTION_NUMBERS_DAYS=0)")
    else:
        print(f"full numbers of calls before {report.numbers_cutoff:%Y-%m-%d}: {verb} from {len(report.calls)} calls"
              f"{ids(report.calls)}; caller IDs in {report.raw_events} raw events and {report.dead_letters} dead letters")
        print(f"  kept for a follow-up still due: {report.follow_up_calls} calls")
    for name, count in sorted(report.domains.items()):
        print(f"{name}: {verb} from {count} rows")
    if args.dry_run:
        print("dry run: nothing was changed")
    return 0


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in a container
        return "cli"


def cmd_hold(args: argparse.Namespace) -> int:
    from hotline.db import session_scope
    from hotline.security.service import SecurityError, set_legal_hold

    try:
        with session_scope() as session:
            record = set_legal_hold(session, record_id=args.record, reason=args.reason, actor=_actor())
            purged = record.purged_at
    except SecurityError as exc:
        raise _cli_error(exc) from None
    print(f"call record {args.record} is under legal hold: retention will keep its text and number")
    if purged:
        print(f"note: its free text was already removed on {purged:%Y-%m-%d}")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from hotline.db import session_scope
    from hotline.security.service import SecurityError, release_legal_hold

    try:
        with session_scope() as session:
            release_legal_hold(session, record_id=args.record, actor=_actor())
    except SecurityError as exc:
        raise _cli_error(exc) from None
    print(f"call record {args.record} is no longer under legal hold; the retention periods apply to it again")
    return 0


def cmd_holds(args: argparse.Namespace) -> int:
    from hotline.db import session_scope
    from hotline.security.service import legal_holds

    with session_scope() as session:
        rows: list[dict[str, Any]] = [{"record": r.id, "centre_id": r.centre_id, "created_at": r.created_at.isoformat(),
                 "reason": r.legal_hold_reason} for r in legal_holds(session)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no record is under legal hold")
    for row in rows:
        print(f"{row['record']:>8}  {row['created_at'][:10]}  {row['reason']}")
    return 0
