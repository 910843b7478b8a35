"""``hotline daily-log …`` and ``hotline report …``.

    hotline daily-log build --centre C --date D [--json]    build (or rebuild) one day by hand
    hotline daily-log show --centre C --date D [--json]     print a built day
    hotline daily-log catch-up                               build every missed day now
    hotline daily-log export --centre C --date D --format csv|xlsx [--out FILE]
    hotline report --centre C (--from D --to D | --half-year YYYY-1|YYYY-2 | --year YYYY) [--json]

A day in the future, today (not ended yet) or before the centre existed is refused with the
reason (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from daily_log import exports, reports, service
from hotline.audit import service as audit
from hotline.cli import CliError
from hotline.db import session_scope
from hotline.i18n import Text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("daily-log", help="sổ cuộc gọi hằng ngày / the daily call log")
    ds = d.add_subparsers(dest="daily_log_command", required=True)
    for name, handler, text in (("build", cmd_build, "lập (lại) một ngày / build or rebuild one day"),
                                ("show", cmd_show, "in một ngày đã lập / print a built day")):
        p = ds.add_parser(name, help=text)
        p.add_argument("--centre", required=True, help="mã trung tâm / centre code")
        p.add_argument("--date", required=True, help="dd/mm/yyyy or yyyy-mm-dd (the centre's local day)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler=handler)
    p = ds.add_parser("catch-up", help="lập mọi ngày còn thiếu ngay / build every missed day now")
    p.set_defaults(handler=cmd_catch_up)
    p = ds.add_parser("export", help="xuất một ngày / export one day (no notes)")
    p.add_argument("--centre", required=True)
    p.add_argument("--date", required=True)
    p.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    p.add_argument("--out", type=Path, help="file; default: stdout (csv only)")
    p.add_argument("--lang", choices=["vi", "en"], default="vi")
    p.set_defaults(handler=cmd_export)

    r = sub.add_parser("report", help="báo cáo định kỳ / periodic report")
    r.add_argument("--centre", required=True)
    r.add_argument("--from", dest="since", help="first day (dd/mm/yyyy or yyyy-mm-dd)")
    r.add_argument("--to", dest="until", help="last day, included")
    r.add_argument("--half-year", help="e.g. 2026-1 (first half of reporting year 2026) or 2026-2")
    r.add_argument("--year", type=int, help="reporting year, e.g. 2026")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=cmd_report)


def _centre_day(db, args):
    try:
        centre = service.get_centre(db, code=args.centre)
        day = service.parse_day(args.date)
    except (LookupError, service.DayRefused) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    return centre, day


def cmd_build(args: argparse.Namespace) -> int:
    with session_scope() as db:
        centre, day = _centre_day(db, args)
        try:
            log = service.build_day(db, centre=centre, day=day, by="cli")
        except service.DayRefused as exc:
            raise CliError(str(exc)) from None
        audit.record(db, actor="cli", action="daily_log.build", object_type="daily_log",
                     object_id=f"{centre.code}:{day.isoformat()}", detail={"build_count": log.build_count})
        out = service.public_summary(log, service.state_of(db, log), signed_by=service.signer_name(db, log))
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        t = out["totals"]
        print(f"{centre.code} {service.fmt_day(day)}: built ({out['build_count']}x) - received {t['received']}, "
              f"answered {t['answered']}, missed {t['missed']}, abandoned {t['abandoned']}, "
              f"out of hours {t['out_of_hours']}, "
              f"non-counselling {t['non_counselling']}, open at midnight {t['open_at_midnight']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with session_scope() as db:
        centre, day = _centre_day(db, args)
        try:
            service.check_buildable(centre, day)
        except service.DayRefused as exc:
            raise CliError(str(exc)) from None
        log = service.get_log(db, centre=centre, day=day)
        if log is None:
            raise CliError(str(Text("%(day)s has not been built for %(centre)s; run: %(command)s",
                                    day=service.fmt_day(day), centre=centre.code,
                                    command=f"hotline daily-log build --centre {centre.code} --date {day.isoformat()}")))
        out = service.public_summary(log, service.state_of(db, log), signed_by=service.signer_name(db, log))
        audit.record(db, actor="cli", action="daily_log.view", object_type="daily_log",
                     object_id=f"{centre.code}:{day.isoformat()}")
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(exports.to_text(out))
    return 0


def cmd_catch_up(args: argparse.Namespace) -> int:
    built, failed = 0, 0
    with session_scope() as db:
        todo = [(c, d) for c in service.active_centres(db) for d in service.missing_days(db, centre=c)]
    for centre, day in todo:
        try:
            with session_scope() as db:
                service.build_day(db, centre=db.merge(centre), day=day, by="cli")
            built += 1
        except Exception as exc:  # noqa: BLE001 - recorded, the others go on
            failed += 1
            with session_scope() as db:
                service.record_failure(db, centre_id=centre.id, day=day, reason=f"{type(exc).__name__}: {exc}")
            print(f"{centre.code} {day.isoformat()}: {exc}", file=sys.stderr)
    print(f"built {built} day(s), {failed} failed")
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    with session_scope() as db:
        centre, day = _centre_day(db, args)
        log = service.get_log(db, centre=centre, day=day)
        if log is None:
            raise CliError(f"{service.fmt_day(day)} has not been built for {centre.code}; run hotline daily-log build")
        out = service.public_summary(log, service.state_of(db, log), signed_by=service.signer_name(db, log))
        audit.record(db, actor="cli", action=f"daily_log.export_{args.format}", object_type="daily_log",
                     object_id=f"{centre.code}:{day.isoformat()}")
    if args.format == "xlsx":
        if args.out is None:
            raise CliError("XLSX is binary: give --out FILE.xlsx")
        args.out.write_bytes(exports.to_xlsx(out, lang=args.lang))
    else:
        data = exports.to_csv(out, lang=args.lang)
        if args.out:
            args.out.write_text(data, encoding="utf-8-sig")
        else:
            sys.stdout.write(data)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    with session_scope() as db:
        try:
            centre = service.get_centre(db, code=args.centre)
            period = reports.resolve_period(since=args.since, until=args.until, half_year=args.half_year,
                                            year=args.year)
            report = reports.build_report(db, centre=centre, period=period)
        except (LookupError, service.DayRefused, reports.ReportError) as exc:
            raise CliError(str(exc).strip("'\"")) from None
        audit.record(db, actor="cli", action="report.view", object_type="report", object_id=centre.code,
                     detail={"from": period.start.isoformat(), "to": period.end.isoformat()})
    if args.json:
        print(json.dumps(reports.to_json(report), ensure_ascii=False, indent=2))
    else:
        print(reports.to_text(report))
    return 0
