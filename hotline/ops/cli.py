"""``hotline check`` and ``hotline backup create | verify | restore``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from hotline.settings import get_settings

if TYPE_CHECKING:
    from hotline.ops.backup import KeySource


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="check that this installation is ready: database, Redis, AMI, secrets, clock, Twilio",
                       description="Each line says OK, WARN or FAIL and what to do; the exit code is 1 when "
                                   "something FAILs. Only reads: safe on a live system.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_check)

    backup = sub.add_parser("backup", help="encrypted PostgreSQL backups (pg_dump / pg_restore)")
    bs = backup.add_subparsers(dest="backup_command", required=True)
    p = bs.add_parser("create", help="dump the database into an encrypted file")
    p.add_argument("--output", "-o", help="a file, or a folder for hotline-YYYYmmddTHHMMSSZ.hlbk "
                                          "(default: DATA_DIR/backups)")
    p.add_argument("--keep", type=int, default=0, help="then delete all but the newest N backups in that folder")
    p.add_argument("--passphrase-file", help="encrypt with this passphrase instead of HOTLINE_BACKUP_KEY")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_backup_create)
    p = bs.add_parser("verify", help="decrypt and check a backup file without restoring it")
    p.add_argument("file")
    p.add_argument("--passphrase-file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_backup_verify)
    p = bs.add_parser("restore", help="restore a backup (all or nothing) into the configured database")
    p.add_argument("file")
    p.add_argument("--database-url", help="restore into this database instead of HOTLINE_DATABASE_URL")
    p.add_argument("--clean", action="store_true",
                   help="drop the backup's tables in the target first (their current data is lost)")
    p.add_argument("--passphrase-file")
    p.set_defaults(handler=cmd_backup_restore)


def cmd_check(args: argparse.Namespace) -> int:
    import logging

    from hotline.ops.check import FAIL, as_json, as_text, run_checks

    logging.getLogger("alembic").setLevel("WARNING")  # reading the migration state is not news
    results = run_checks(get_settings())
    if args.json:
        print(json.dumps(as_json(results), ensure_ascii=False, indent=1, default=str))
    else:
        print(as_text(results))
    return 1 if any(r.status == FAIL for r in results) else 0


def _key(args: argparse.Namespace) -> KeySource:
    from hotline.cli import CliError
    from hotline.ops.backup import BackupError, key_source

    settings = get_settings()
    try:
        return key_source(backup_key=settings.backup_key,
                          passphrase_file=args.passphrase_file or settings.backup_passphrase_file)
    except BackupError as exc:
        raise CliError(str(exc)) from None


def cmd_backup_create(args: argparse.Namespace) -> int:
    from hotline.cli import CliError
    from hotline.ops import backup

    settings = get_settings()
    key = _key(args)
    target = Path(args.output) if args.output else Path(settings.data_dir) / "backups"
    if args.output is None or target.is_dir() or args.output.endswith("/"):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = target / f"hotline-{stamp}{backup.SUFFIX}"
    if target.exists():
        raise CliError(f"{target} already exists; choose another name (backups are never overwritten)")
    try:
        info = backup.create(settings.effective_database_url, target, key)
    except backup.BackupError as exc:
        raise CliError(str(exc)) from None
    pruned = backup.prune(target.parent, args.keep) if args.keep else []
    info["pruned"] = [p.name for p in pruned]
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=1))
    else:
        print(f"backup written: {target} ({info['bytes']} bytes, database {info['database']})")
        for p in pruned:
            print(f"old backup deleted: {p.name}")
    return 0


def cmd_backup_verify(args: argparse.Namespace) -> int:
    from hotline.cli import CliError
    from hotline.ops import backup

    key = _key(args)
    try:
        info = backup.verify(Path(args.file), key)
    except backup.BackupError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=1))
    else:
        print(f"backup is intact: database {info.get('database')}, made {info.get('created_at')}, "
              f"{info['dump_bytes']} bytes of dump")
    return 0


def cmd_backup_restore(args: argparse.Namespace) -> int:
    from hotline.cli import CliError
    from hotline.ops import backup

    key = _key(args)
    url = args.database_url or get_settings().effective_database_url
    try:
        info = backup.restore(Path(args.file), url, key, clean=args.clean)
    except backup.BackupError as exc:
        raise CliError(str(exc)) from None
    print(f"restored the backup of {info.get('database')} made {info.get('created_at')}; "
          "now run: hotline db upgrade (if this hotline is newer than the backup) and hotline check", file=sys.stdout)
    return 0
