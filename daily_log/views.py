"""Supervisor pages of the daily call log and the periodic reports.

* ``GET /daily-log``: a centre's days with their state (administrators choose the centre; failed
  builds are listed for them with the reason).
* ``GET /daily-log/{centre}/{day}``: the day's summary, its calls with links to the records,
  comments, changes made after sign-off, rebuild and sign-off buttons.
* ``POST /daily-log/{centre}/{day}/build | /comments | /sign-off`` (CSRF).
* ``GET /daily-log/{centre}/{day}/export.csv | export.xlsx | print``: exports (audited; an unsigned
  day says so in the file).
* ``GET /daily-log/failures``: failed builds (administrators).
* ``GET /reports``: a periodic report (range, six-monthly, annual) with SVG charts;
  ``GET /reports/export.csv``.

Supervisors see their own centre, administrators every centre; counsellors and partners none.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from daily_log import charts, exports, reports, service
from hotline.audit import service as audit
from hotline.auth.deps import Principal, csrf_protect, require_roles
from hotline.db import session_scope
from hotline.i18n import error_text, translator
from hotline.taxonomy import get_taxonomies
from hotline.web import add_template_dir, render

add_template_dir(Path(__file__).parent / "templates")
router = APIRouter()
viewer = require_roles("supervisor", "administrator")
admin = require_roles("administrator")


async def viewer_write(request: Request, principal: Principal = Depends(viewer)) -> Principal:
    await csrf_protect(request)
    return principal


def _centre(db: Any, principal: Principal, code: str) -> Any:
    return service.require_centre(db, actor=principal, code=code)


def _day(principal: Principal, text: str) -> date:
    return service.parse_day(text)


def _labels(lang: str) -> dict[str, Any]:
    tax = get_taxonomies()
    return {
        "label": lambda scheme, code: exports.label(scheme, code, lang) if code is not None else "",
        "issue_label": lambda code: tax.label("issue", code, lang),
        "state_label": lambda state: translator(lang)(exports.STATE_LABELS.get(state) or state),
        "total_labels": exports.TOTAL_LABELS,
        "breakdowns": exports.BREAKDOWNS,
        "fmt_day": service.fmt_day,
    }


# ---------------------------------------------------------------------- list of days
@router.get("/daily-log")
def days_page(request: Request, centre: str | None = None, until: str | None = None,
              principal: Principal = Depends(viewer)) -> Response:
    with session_scope() as db:
        centres = service.visible_centres(db, actor=principal)
        if not centres:
            raise service.NotFound
        chosen = next((c for c in centres if c.code == centre), None) if centre else None
        if centre and chosen is None:
            raise service.NotFound
        chosen = chosen or next((c for c in centres if c.id == principal.centre_id), centres[0])
        end = _day(principal, until) if until else service.local_today(chosen) - timedelta(days=1)
        rows = service.list_days(db, centre=chosen, until=end, days=31)
        failures = service.open_failures(db) if principal.role == "administrator" else []
        audit.record(db, actor=principal, action="daily_log.list", object_type="daily_log",
                     object_id=chosen.code, request=request)
        earlier = rows[-1].day - timedelta(days=1) if rows else None
        today = service.local_today(chosen)
        listed = [{"day": r.day, "state": r.state, "failure": r.failure,
                   "received": r.log.received if r.log else None,
                   "built_at": r.log.built_at if r.log else None} for r in rows]
        if end >= today - timedelta(days=1):  # the newest page starts with today's running log
            listed.insert(0, {"day": today, "state": "provisional", "failure": None, "received": None,
                              "built_at": None})
        ctx = {
            "centres": [(c.code, c.name) for c in centres], "centre": chosen, "rows": listed,
            "earlier": earlier if earlier and earlier >= service.first_day(chosen) else None,
            "later": (end + timedelta(days=31)) if end + timedelta(days=1) < service.local_today(chosen) else None,
            "failures": failures,
            **_labels(principal.language),
        }
    return render(request, "daily_log/days.html", ctx)


@router.get("/daily-log/failures")
def failures_page(request: Request, principal: Principal = Depends(admin)) -> Response:
    with session_scope() as db:
        failures = service.open_failures(db)
        audit.record(db, actor=principal, action="daily_log.failures", object_type="daily_log", object_id=None,
                     request=request)
    return render(request, "daily_log/failures.html", {"failures": failures, **_labels(principal.language)})


# ---------------------------------------------------------------------- one day
def _day_context(db: Any, principal: Principal, centre: Any, day: date) -> dict[str, Any]:
    log = service.get_log(db, centre=centre, day=day)
    state = service.state_of(db, log)
    ctx: dict[str, Any] = {"centre": centre, "day": day, "log": log, "state": state, "summary": None,
                           "comments": service.comments(db, centre=centre, day=day), "changes": [],
                           "stale": False, "signer": service.signer_name(db, log), "refusal": None,
                           **_labels(principal.language)}
    try:
        service.check_buildable(centre, day)
    except service.DayRefused as exc:
        ctx["refusal"] = error_text(exc, principal.language)
    ctx["provisional"] = log is None and service.is_running(centre, day)
    if ctx["provisional"]:
        ctx["public"] = service.provisional_summary(db, centre=centre, day=day)
        ctx["summary"] = ctx["public"]
        ctx["state"] = "provisional"
        ctx["as_of"] = datetime.fromisoformat(ctx["public"]["built_at"])
    if log is not None:
        ctx["summary"] = log.summary
        ctx["changes"] = service.changes_after_sign_off(db, log=log)
        ctx["stale"] = service.is_stale(db, centre=centre, log=log)
    return ctx


@router.get("/daily-log/{code}/{day_text}")
def day_page(code: str, day_text: str, request: Request, principal: Principal = Depends(viewer)) -> Response:
    with session_scope() as db:
        centre = _centre(db, principal, code)
        day = _day(principal, day_text)
        ctx = _day_context(db, principal, centre, day)
        audit.record(db, actor=principal, action="daily_log.view", object_type="daily_log",
                     object_id=f"{centre.code}:{day.isoformat()}", request=request)
        notice = request.query_params.get("done")
        _ = translator(principal.language)
        ctx["notice"] = {"built": _("The day was built."), "signed": _("The day was signed off; its records are "
                                                                       "locked."),
                         "commented": _("Your comment was added.")}.get(notice or "")
        return render(request, "daily_log/day.html", ctx)


def _back(code: str, day: date, done: str) -> RedirectResponse:
    return RedirectResponse(f"/daily-log/{quote(code)}/{day.isoformat()}?done={done}", status_code=303)


def _refused(request: Request, db: Any, principal: Principal, centre: Any, day: date, message: str) -> Response:
    db.rollback()
    ctx = _day_context(db, principal, centre, day)
    ctx["error"] = message
    return render(request, "daily_log/day.html", ctx, status_code=422)


@router.post("/daily-log/{code}/{day_text}/build")
def build(code: str, day_text: str, request: Request, principal: Principal = Depends(viewer_write)) -> Response:
    with session_scope() as db:
        centre = _centre(db, principal, code)
        day = _day(principal, day_text)
        try:
            log = service.build_day(db, centre=centre, day=day, by=principal.username)
        except service.DayRefused as exc:
            return _refused(request, db, principal, centre, day, error_text(exc, principal.language))
        audit.record(db, actor=principal, action="daily_log.build", object_type="daily_log",
                     object_id=f"{centre.code}:{day.isoformat()}", request=request,
                     detail={"build_count": log.build_count})
    return _back(code, day, "built")


@router.post("/daily-log/{code}/{day_text}/sign-off")
def sign_off(code: str, day_text: str, request: Request, principal: Principal = Depends(viewer_write)) -> Response:
    with session_scope() as db:
        centre = _centre(db, principal, code)
        day = _day(principal, day_text)
        try:
            log = service.sign_off(db, centre=centre, day=day, actor=principal)
        except service.DayRefused as exc:
            return _refused(request, db, principal, centre, day, error_text(exc, principal.language))
        audit.record(db, actor=principal, action="daily_log.sign_off", object_type="daily_log",
                     object_id=f"{centre.code}:{day.isoformat()}", request=request,
                     detail={"records_locked": len(log.summary.get("record_ids") or [])})
    return _back(code, day, "signed")


@router.post("/daily-log/{code}/{day_text}/comments")
async def comment(code: str, day_text: str, request: Request,
                  principal: Principal = Depends(viewer_write)) -> Response:
    form = await request.form()
    text = str(form.get("text") or "")
    with session_scope() as db:
        centre = _centre(db, principal, code)
        day = _day(principal, day_text)
        try:
            row = service.add_comment(db, centre=centre, day=day, actor=principal, text=text)
        except service.DayRefused as exc:
            resp = _refused(request, db, principal, centre, day, error_text(exc, principal.language))
            return resp
        audit.record(db, actor=principal, action="daily_log.comment", object_type="daily_log",
                     object_id=f"{centre.code}:{day.isoformat()}", request=request, detail={"comment_id": row.id})
    return _back(code, day, "commented")


def _built(db: Any, principal: Principal, centre: Any, day: date) -> dict[str, Any]:
    log = service.get_log(db, centre=centre, day=day)
    if log is None and service.is_running(centre, day):
        return service.provisional_summary(db, centre=centre, day=day)
    if log is None:
        _ = translator(principal.language)
        raise HTTPException(404, detail=_("This day has not been built yet; build it first."))
    return service.public_summary(log, service.state_of(db, log), signed_by=service.signer_name(db, log))


def _filename(centre: Any, day: date, ext: str) -> str:
    safe = "".join(ch for ch in centre.code if ch.isalnum() or ch in "-_") or "centre"
    return f"daily-log-{safe}-{day.isoformat()}.{ext}"


def _exported(db: Any, principal: Principal, request: Request, code: str, day_text: str,
              action: str) -> tuple[Any, date, dict[str, Any]]:
    """A built day the principal may see, its export audited (the summary's state goes in the audit)."""
    centre = _centre(db, principal, code)
    day = _day(principal, day_text)
    summary = _built(db, principal, centre, day)
    audit.record(db, actor=principal, action=f"daily_log.{action}", object_type="daily_log",
                 object_id=f"{centre.code}:{day.isoformat()}", request=request, detail={"state": summary["state"]})
    return centre, day, summary


def _download(body: bytes, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@router.get("/daily-log/{code}/{day_text}/export.csv")
def export_csv(code: str, day_text: str, request: Request, principal: Principal = Depends(viewer)) -> Response:
    with session_scope() as db:
        centre, day, summary = _exported(db, principal, request, code, day_text, "export_csv")
    body = "\ufeff" + exports.to_csv(summary, lang=principal.language)
    return _download(body.encode("utf-8"), "text/csv; charset=utf-8", _filename(centre, day, "csv"))


@router.get("/daily-log/{code}/{day_text}/export.xlsx")
def export_xlsx(code: str, day_text: str, request: Request, principal: Principal = Depends(viewer)) -> Response:
    with session_scope() as db:
        centre, day, summary = _exported(db, principal, request, code, day_text, "export_xlsx")
    return _download(exports.to_xlsx(summary, lang=principal.language),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _filename(centre, day, "xlsx"))


@router.get("/daily-log/{code}/{day_text}/print")
def print_page(code: str, day_text: str, request: Request, principal: Principal = Depends(viewer)) -> Response:
    with session_scope() as db:
        centre, day, summary = _exported(db, principal, request, code, day_text, "print")
        ctx = _day_context(db, principal, centre, day)
        ctx["public"] = summary
        ctx["summary"] = summary  # the exported figures, the same as the print shows
        return render(request, "daily_log/print.html", ctx)


# ---------------------------------------------------------------------- periodic reports
def _report(request: Request, db: Any, principal: Principal) -> tuple[Any, Any, reports.Report | None, str | None,
                                                                       list[Any]]:
    q = request.query_params
    centres = service.visible_centres(db, actor=principal)
    if not centres:
        raise service.NotFound
    code = q.get("centre")
    centre = next((c for c in centres if c.code == code), None) if code else None
    if code and centre is None:
        raise service.NotFound
    centre = centre or next((c for c in centres if c.id == principal.centre_id), centres[0])
    params = {k: q.get(k) for k in ("from", "to", "half_year", "year")}
    if not any(params.values()):
        return centres, centre, None, None, []
    try:
        period = reports.resolve_period(since=params["from"], until=params["to"], half_year=params["half_year"],
                                        year=params["year"])
        report = reports.build_report(db, centre=centre, period=period)
    except reports.ReportError as exc:
        return centres, centre, None, error_text(exc, principal.language), []
    return centres, centre, report, None, []


@router.get("/reports")
def report_page(request: Request, principal: Principal = Depends(viewer)) -> Response:
    lang = principal.language
    with session_scope() as db:
        centres, centre, report, error, _unused = _report(request, db, principal)
        if report is not None:
            audit.record(db, actor=principal, action="report.view", object_type="report", object_id=centre.code,
                         request=request, detail={"from": report.period.start.isoformat(),
                                                  "to": report.period.end.isoformat()})
        today = service.local_today(centre)
        _ = translator(lang)
        ctx: dict[str, Any] = {
            "centres": [(c.code, c.name) for c in centres], "centre": centre, "report": report, "error": error,
            "q": dict(request.query_params), "upcoming": reports.upcoming_due(today),
            "this_year": reports.annual(today.year if today <= reports.reporting_year(today.year)[1]
                                        else today.year + 1).label,
            "charts": None, "sexes": reports.SEXES, **_labels(lang),
        }
        if report is not None:
            tax = get_taxonomies()
            ctx["charts"] = {
                "by_day": charts.bar_chart([(service.fmt_day(d)[:5], n) for d, n in report.by_day],
                                           title=_("Calls by day"), x_label=_("Day (dd/mm)"),
                                           y_label=_("Calls received"),
                                           label_every=max(1, len(report.by_day) // 12)),
                "by_hour": charts.bar_chart([(f"{h:02d}", n) for h, n in enumerate(report.by_hour)],
                                            title=_("Calls by hour of the day"), x_label=_("Hour of the day"),
                                            y_label=_("Calls received"), label_every=2),
                "by_issue": charts.hbar_chart([(tax.label("issue", g, lang) if g != "other" else _("Other"), n)
                                               for g, n in report.by_issue_group],
                                              title=_("Records by issue group (primary issue)"),
                                              x_label=_("Records"), y_label=_("Issue group")),
            }
            ctx["query"] = str(request.url.query)
        return render(request, "daily_log/report.html", ctx, status_code=422 if error else 200)


@router.get("/reports/export.csv")
def report_csv(request: Request, principal: Principal = Depends(viewer)) -> Response:
    with session_scope() as db:
        centres, centre, report, error, _unused = _report(request, db, principal)
        if report is None:
            raise HTTPException(422, detail=error or translator(principal.language)("Choose a period."))
        audit.record(db, actor=principal, action="report.export_csv", object_type="report", object_id=centre.code,
                     request=request, detail={"from": report.period.start.isoformat(),
                                              "to": report.period.end.isoformat()})
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in reports.to_csv_rows(report, principal.language):
        writer.writerow([exports._safe(v) for v in row])
    name = f"report-{centre.code}-{report.period.start.isoformat()}-{report.period.end.isoformat()}.csv"
    return _download(("\ufeff" + buf.getvalue()).encode("utf-8"), "text/csv; charset=utf-8", name)


def setup_app(app: Any) -> None:
    from fastapi.staticfiles import StaticFiles

    app.mount("/daily-log-static", StaticFiles(directory=Path(__file__).parent / "static"), name="daily-log-static")
