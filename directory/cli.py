"""``hotline directory …``: import, export, search, seed, template."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from directory import importers
from directory.search import Query, SearchError, parse_open_at, search
from directory.seed import place_counts, seed
from hotline.cli import CliError
from hotline.db import session_scope
from hotline.i18n import Text
from hotline.settings import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("directory", help="danh bạ địa chỉ hỗ trợ / directory of support addresses")
    ds = d.add_subparsers(dest="directory_command", required=True)

    p = ds.add_parser("import", help="nhập CSV mẫu, thư mục HSDS (datapackage.json) hoặc gói JSON HSDS / import")
    p.add_argument("path", type=Path)
    p.add_argument("--skip-invalid", action="store_true", help="ghi các dòng hợp lệ, bỏ dòng lỗi / write valid rows, skip bad ones")
    p.add_argument("--actor", default="cli")
    p.set_defaults(handler=cmd_import)

    p = ds.add_parser("export", help="xuất danh bạ / export (public by default: no confidential addresses)")
    p.add_argument("--format", choices=["csv", "hsds-csv", "hsds-json"], default="csv")
    p.add_argument("--out", type=Path, help="file (csv, hsds-json) or folder (hsds-csv); default: stdout")
    p.add_argument("--include-confidential", action="store_true",
                   help="kèm địa chỉ bảo mật và khóa webhook (chỉ cho sao lưu nội bộ) / include confidential data (internal backups only)")
    p.set_defaults(handler=cmd_export)

    p = ds.add_parser("search", help="tìm kiếm / search")
    p.add_argument("query", nargs="?", default="")
    p.add_argument("--type", dest="service_type")
    p.add_argument("--province")
    p.add_argument("--commune")
    p.add_argument("--open-now", action="store_true")
    p.add_argument("--open-at", metavar="DATETIME",
                   help="mở cửa lúc… / open at: '2026-12-24 22:00' or '22:00' (today), in the centre's timezone")
    p.add_argument("--free-bed", action="store_true")
    p.add_argument("--accessible", action="store_true")
    p.add_argument("--language")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_search)

    p = ds.add_parser("seed", help="nạp dữ liệu khởi tạo (lặp lại an toàn) / load starter data (idempotent)")
    p.set_defaults(handler=cmd_seed)

    p = ds.add_parser("template", help="in mẫu CSV có tiêu đề và một dòng ví dụ / print the CSV template")
    p.set_defaults(handler=cmd_template)


def _progress(stage: str, done: int, total: int) -> None:
    """A progress bar on stderr: "kiểm tra [#########-----------]  45% 22500/50000"."""
    label = Text("validating") if stage == "validate" else Text("writing")
    width = 30
    filled = width * done // total if total else width
    pct = 100 * done // total if total else 100
    bar = "#" * filled + "-" * (width - filled)
    print(f"\r{label} [{bar}] {pct:3d}% {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)


def cmd_import(args: argparse.Namespace) -> int:
    try:
        with session_scope() as session:
            report = importers.import_path(session, path=args.path, skip_invalid=args.skip_invalid,
                                           actor=args.actor, progress=_progress)
    except importers.ImportFileError as exc:
        raise CliError(str(exc)) from None
    # Reasons are Texts: printed in the current language (Vietnamese, the administrators' default).
    for p in report.errors:
        entry = f" [{p.entry_id}]" if p.entry_id else ""
        print(Text("ERROR %(where)s%(entry)s: %(reasons)s", where=p.where, entry=entry, reasons=list(p.reasons)),
              file=sys.stderr)
    for p in report.warnings:
        print(Text("WARNING %(where)s [%(entry)s]: %(reasons)s", where=p.where, entry=p.entry_id,
                   reasons=list(p.reasons)), file=sys.stderr)
    if report.errors and not report.written:
        raise CliError(str(Text("%(bad)d bad rows of %(total)d; nothing was written. Fix the rows above and import "
                                "again, or use --skip-invalid to write only the valid rows.",
                                bad=len(report.errors), total=report.total)))
    print(Text("%(format)s: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, %(skipped)d skipped",
               format=report.format, created=report.created, updated=report.updated, unchanged=report.unchanged,
               skipped=len(report.errors)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with session_scope() as session:
        if args.format == "hsds-csv":
            if args.out is None:
                raise CliError(str(Text("hsds-csv needs --out FOLDER")))
            n = importers.export_hsds_csv(session, out_dir=args.out, include_confidential=args.include_confidential)
        else:
            fn = importers.export_template if args.format == "csv" else importers.export_hsds_json
            if args.out is None:
                n = fn(session, out=sys.stdout, include_confidential=args.include_confidential)
            else:
                with args.out.open("w", encoding="utf-8", newline="") as fh:
                    n = fn(session, out=fh, include_confidential=args.include_confidential)
    print(Text("exported %(n)d entries (including confidential data)", n=n) if args.include_confidential
          else Text("exported %(n)d entries", n=n), file=sys.stderr)
    return 0


def _result_line(r: dict) -> str:
    state = Text("OPEN") if r["open_now"] else Text("closed")
    if r.get("hours_see_text"):
        state = Text("hours: see text")
    beds = " · " + str(Text("free beds %(n)s", n=r["beds_free"])) if r["beds_free"] is not None else ""
    when = r["last_verified_at"].date().isoformat() if r["last_verified_at"] else Text("never")
    verified = Text("verified %(when)s", when=when)
    if r["coverage"] == ["*"] or (not r["province"] and not r["coverage"]):
        where = str(Text("nationwide"))
    else:
        where = ", ".join(dict.fromkeys(x for x in [r["province"], *r["coverage"]] if x))
    dist = f" · ~{r['distance_km']:.0f} km" if r["distance_km"] is not None else ""
    mark = "  ↳ " + str(Text("alternative")) + ": " if r.get("fallback") else ""
    return (f"{mark}{r['name']} — {r['service_type_vi']} · {r['call_number'] or '-'} · {state}{beds} · "
            f"{where}{dist} · {verified} [{r['id']}]")


def cmd_search(args: argparse.Namespace) -> int:
    try:
        with session_scope() as session:
            tz = get_settings().default_timezone
            open_at = parse_open_at(args.open_at, tz) if args.open_at else None
            q = Query(q=args.query, service_type=args.service_type, province=args.province, commune=args.commune,
                      open_now=args.open_now, open_at=open_at, free_bed=args.free_bed, accessible=args.accessible,
                      language=args.language, limit=args.limit)
            interp, results = search(session, q)
    except SearchError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps({"query": args.query, "interpreted": interp.as_dict(), "notices": [str(n) for n in interp.notices],
                          "open_at": open_at.isoformat() if open_at else None, "count": len(results),
                          "results": results}, ensure_ascii=False, default=str, indent=1))
        return 0
    if open_at:
        print(Text("open at %(when)s", when=open_at.strftime("%Y-%m-%d %H:%M %Z")))
    for notice in interp.notices:
        print(notice)
    if not results:
        print(Text("nothing found"))
        return 0
    for r in results:
        print(_result_line(r))
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    with session_scope() as session:
        report = seed(session)
    provinces, communes = place_counts()
    print(Text("directory: %(created)d created, %(updated)d updated, %(unchanged)d unchanged; %(provinces)d "
               "provinces, %(communes)d communes available", created=report.created, updated=report.updated,
               unchanged=report.unchanged, provinces=provinces, communes=communes))
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    sys.stdout.write(importers.template_text())
    return 0
