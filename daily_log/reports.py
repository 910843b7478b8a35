"""Periodic reports: any date range, the six-monthly and the annual report of the provincial plan.

Every figure is computed in the database with ``GROUP BY`` (a year of a million calls stays a
handful of aggregate queries).  The rules are the daily log's: telephony figures count every
call; everything taken from records counts only completed records whose caller consented to
statistics; a call is one row with at most one record, so nothing is counted twice; no free text.

Reporting periods come from settings (``HOTLINE_REPORT_*``): reporting year N starts on
``report_year_start`` (MM-DD) of year N-1 (``01-01``: the calendar year N), its second half
starts on ``report_half_year_start``; the six-monthly report is due before
``report_due_half_year`` and the annual one before ``report_due_annual`` (defaults follow the
plan: periods from 15 December, due before 15 June and before 15 December).

Issues: "by issue" counts a record under each of its issue codes; "by issue group" (and the
chart) counts each record once, under the group of its primary issue.

Indicators (definitions shown on the report page too):

* **detected GBV victim**: a counted record with at least one issue in the domestic-violence
  (``dv``) or gender-based-violence (``gbv``) groups whose caller is not the perpetrator;
* **received services**: such a record whose level reached advice or more (level ≥ 2: advice,
  psychological counselling, referral, intervention, emergency support), or whose outcome was
  referred, follow-up planned or emergency help dispatched, or which has a referral;
* **detected perpetrator**: a counted record whose caller role is ``perpetrator``;
* **counselled**: such a record whose level reached advice or more (level ≥ 2).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, func, or_, select, text, union_all
from sqlalchemy.orm import Session

from daily_log import service
from daily_log.models import DailyLog
from hotline.calls.models import Call, CallRecord, CallRecordIssue
from hotline.centres.models import Centre
from hotline.db import utcnow
from hotline.i18n import N_, Text
from hotline.settings import get_settings
from hotline.taxonomy import get_taxonomies, non_counselling_codes

SEXES = ("female", "male", "other", "unknown")
GBV_GROUPS = ("dv", "gbv")
SERVED_LEVEL = 2
SERVED_OUTCOMES = ("referred", "follow_up", "emergency_dispatched")
MAX_DAYS = 5 * 366


class ReportError(ValueError):
    """A period that cannot be reported on; raised with a ``Text`` saying why (``error_text(exc, lang)``)."""


@dataclass
class Period:
    start: date
    end: date  # included
    kind: str = "range"  # range | half_year | annual
    label: str = ""
    due: date | None = None


@dataclass
class Report:
    centre: dict[str, Any]
    period: Period
    generated_at: datetime
    header: list[str]
    recipients: list[str]
    signatory: str
    totals: dict[str, int]
    waiting: dict[str, Any]
    talk: dict[str, Any]
    tables: dict[str, dict[str, dict[str, int]]]  # name -> code -> sex -> n (and "total")
    indicators: dict[str, dict[str, Any]]
    by_day: list[tuple[date, int]]
    by_hour: list[int]
    by_issue_group: list[tuple[str, int]]
    days: dict[str, int] = field(default_factory=dict)
    ended: bool = True
    referrals: dict[str, Any] = field(default_factory=dict)  # available, made, by_state
    callbacks: dict[str, Any] = field(default_factory=dict)  # callbacks.service.counts over the period


# ---------------------------------------------------------------------- periods
def _mmdd(value: str, name: str) -> tuple[int, int]:
    try:
        month, day = (int(x) for x in value.strip().split("-"))
        date(2024, month, day)
        return month, day
    except (ValueError, TypeError):
        raise ReportError(Text("%(setting)s = '%(value)s' is not MM-DD (e.g. 12-15).",
                               setting=f"HOTLINE_{name.upper()}", value=value)) from None


def _on(year: int, mmdd: tuple[int, int]) -> date:
    month, day = mmdd
    if (month, day) == (2, 29):
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 2, 28)
    return date(year, month, day)


def reporting_year(year: int) -> tuple[date, date]:
    s = get_settings()
    start_md = _mmdd(s.report_year_start, "report_year_start")
    start = date(year, 1, 1) if start_md == (1, 1) else _on(year - 1, start_md)
    end = (date(year + 1, 1, 1) if start_md == (1, 1) else _on(year, start_md)) - timedelta(days=1)
    return start, end


def half_years(year: int) -> tuple[Period, Period]:
    s = get_settings()
    start, end = reporting_year(year)
    boundary = _on(year, _mmdd(s.report_half_year_start, "report_half_year_start"))
    if not start < boundary <= end:
        boundary = start + (end - start) / 2
    due_half = _on(year, _mmdd(s.report_due_half_year, "report_due_half_year"))
    due_annual = _on(year, _mmdd(s.report_due_annual, "report_due_annual"))
    return (Period(start, boundary - timedelta(days=1), "half_year", f"{year}-1", due_half),
            Period(boundary, end, "half_year", f"{year}-2", due_annual))


def annual(year: int) -> Period:
    s = get_settings()
    start, end = reporting_year(year)
    return Period(start, end, "annual", str(year), _on(year, _mmdd(s.report_due_annual, "report_due_annual")))


def resolve_period(*, since: str | None = None, until: str | None = None, half_year: str | None = None,
                   year: int | str | None = None) -> Period:
    if half_year:
        try:
            y, h = str(half_year).split("-")
            first, second = half_years(int(y))
            return first if int(h) == 1 else second if int(h) == 2 else _bad_half(half_year)
        except ValueError:
            _bad_half(half_year)
    if year not in (None, ""):
        try:
            return annual(int(year))  # type: ignore[arg-type]  # year is a str here; int() refusals are caught below
        except ValueError:
            raise ReportError(Text("'%(year)s' is not a year.", year=year)) from None
    if not since or not until:
        raise ReportError(Text("Choose a date range (from and to), a half-year or a year."))
    try:
        start, end = service.parse_day(since), service.parse_day(until)
    except service.DayRefused as exc:
        raise ReportError(*exc.args) from None
    if end < start:
        raise ReportError(Text("The end %(end)s is before the start %(start)s.",
                               end=service.fmt_day(end), start=service.fmt_day(start)))
    if (end - start).days > MAX_DAYS:
        raise ReportError(Text("The range is longer than 5 years; split it."))
    return Period(start, end, "range", f"{service.fmt_day(start)}–{service.fmt_day(end)}")


def _bad_half(value: str) -> Period:
    raise ReportError(Text("'%(value)s' is not YEAR-1 or YEAR-2 (e.g. 2026-1).", value=value))


def upcoming_due(today: date) -> list[Period]:
    """The next six-monthly and annual reports still to come (due on or after ``today``)."""
    out = []
    for y in (today.year, today.year + 1):
        first, _second = half_years(y)
        for p in (first, annual(y)):
            if p.due and p.due >= today:
                out.append(p)
    return sorted(out, key=lambda p: p.due or today)[:2]


# ---------------------------------------------------------------------- queries
def _window(centre: Centre, period: Period) -> tuple[datetime, datetime]:
    tz = ZoneInfo(centre.timezone)
    start = datetime.combine(period.start, time.min, tzinfo=tz).astimezone(timezone.utc)
    end = datetime.combine(period.end + timedelta(days=1), time.min, tzinfo=tz).astimezone(timezone.utc)
    return start, end


def _records(centre: Centre, start: datetime, end: datetime):
    """Counted records of the period (completed, consenting): calls by the call's time, others by creation."""
    cols = (CallRecord.id.label("id"), CallRecord.caller_sex.label("sex"), CallRecord.caller_age_group.label("age"),
            CallRecord.service_level.label("level"), CallRecord.caller_role.label("role"),
            CallRecord.outcome.label("outcome"), CallRecord.province_code.label("province"),
            CallRecord.primary_issue.label("primary_issue"))
    counted = and_(CallRecord.centre_id == centre.id, CallRecord.state == "completed",
                   CallRecord.consent_statistics.is_(True))
    with_call = (select(*cols).join(Call, Call.id == CallRecord.call_id)
                 .where(counted, Call.centre_id == centre.id, Call.received_at >= start, Call.received_at < end))
    without = select(*cols).where(counted, CallRecord.call_id.is_(None), CallRecord.created_at >= start,
                                  CallRecord.created_at < end)
    return union_all(with_call, without).subquery("r")


def _gbv_condition(code_col):
    return or_(*[or_(code_col == g, code_col.like(f"{g}.%")) for g in GBV_GROUPS])


def build_report(session: Session, *, centre: Centre, period: Period, now: datetime | None = None) -> Report:
    settings = get_settings()
    start, end = _window(centre, period)
    pg = session.get_bind().dialect.name == "postgresql"
    tz = ZoneInfo(centre.timezone)
    in_period = and_(Call.centre_id == centre.id, Call.received_at >= start, Call.received_at < end)
    if pg:
        # a few large aggregates: JIT compilation costs seconds and saves nothing here, and the hash
        # tables fit in memory instead of spilling to disk (both for this transaction only)
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    totals, by_day_counter, by_hour = _telephony(session, in_period, pg, tz)
    totals["other_channels"] = session.scalar(
        select(func.count()).select_from(CallRecord).where(
            CallRecord.centre_id == centre.id, CallRecord.call_id.is_(None), CallRecord.created_at >= start,
            CallRecord.created_at < end)) or 0
    waiting, talk = _times(session, in_period, pg)
    rt = _record_tables(session, _records(centre, start, end))
    indicators = {
        "gbv_victims_served": _indicator(rt.victims["served"], rt.victims["detected"]),
        "perpetrators_counselled": _indicator(rt.perps["counselled"], rt.perps["detected"]),
    }
    indicators["gbv_victims_served"]["referrals_checked"] = rt.referrals_checked

    by_day = []
    d = period.start
    while d <= period.end:
        by_day.append((d, by_day_counter.get(d, 0)))
        d += timedelta(days=1)
    by_issue_group = sorted(((g, sum(v.values())) for g, v in rt.tables["issue_group"].items()),
                            key=lambda kv: (-kv[1], kv[0]))

    # daily log coverage
    days_total = (period.end - period.start).days + 1
    built = session.execute(select(func.count(), func.count(DailyLog.signed_off_at)).where(
        DailyLog.centre_id == centre.id, DailyLog.day >= period.start, DailyLog.day <= period.end)).one()

    available, by_state = service.referral_counts(session, centre_id=centre.id, since=start, until=end)
    referrals = {"available": available, "made": sum(by_state.values()),
                 "by_state": {k: v for k, v in by_state.items() if v}}

    now = now or utcnow()
    totals_out = {k: int(totals.get(k, 0)) for k in (
        "received", "answered", "missed", "abandoned", "failed", "unknown_outcome", "other_channels")}
    totals_out.update(_routing_totals(session, centre, start, end, in_period))
    totals_out["records_counted"] = sum(rt.records_total.values())
    totals_out["non_counselling"] = rt.non_counselling
    tables_out = {k: _finish(v) for k, v in rt.tables.items()}
    tables_out["sex"] = {s: {**{x: (rt.records_total.get(s, 0) if x == s else 0) for x in SEXES},
                             "total": rt.records_total.get(s, 0)} for s in SEXES}
    return Report(
        centre={"id": centre.id, "code": centre.code, "name": centre.name, "timezone": centre.timezone},
        period=period, generated_at=now,
        header=[h.strip() for h in settings.report_header.split(";") if h.strip()] or [centre.name],
        recipients=[h.strip() for h in settings.report_recipients.split(";") if h.strip()],
        signatory=settings.report_signatory.strip(),
        totals=totals_out, waiting=waiting, talk=talk, tables=tables_out, indicators=indicators,
        by_day=by_day, by_hour=by_hour, by_issue_group=by_issue_group,
        days={"total": days_total, "built": int(built[0]), "signed_off": int(built[1])},
        ended=now.astimezone(tz).date() > period.end, referrals=referrals,
        callbacks=service.callback_counts(session, centre_id=centre.id, since=start, until=end),
    )


def _routing_totals(session: Session, centre: Centre, start: datetime, end: datetime, in_period: Any) -> dict[str, int]:
    """Blocked calls, overflow out and in, out-of-hours calls (#17; callback requests: ``callbacks``)."""
    from blocking import service as blocking

    out = blocking.blocked_counts(session, centre_id=centre.id, since=start, until=end)
    out["overflow_out"] = session.scalar(select(func.count()).where(in_period, Call.overflow_centre_id.is_not(None))) or 0
    out["overflow_in"] = session.scalar(select(func.count()).select_from(Call).where(
        Call.overflow_centre_id == centre.id, Call.received_at >= start, Call.received_at < end)) or 0
    out["out_of_hours"] = session.scalar(select(func.count()).where(in_period, service.out_of_hours_call())) or 0
    return out


def _telephony(session: Session, in_period: Any, pg: bool,
               tz: ZoneInfo) -> tuple[Counter[str], Counter[date], list[int]]:
    """Telephony totals and the charts' series in one scan: per UTC quarter hour (exact for every
    timezone offset; local day and hour from Python) and status."""
    bucket: Any
    if pg:
        bucket = func.floor(func.extract("epoch", Call.received_at) / 900)
    else:
        bucket = cast(func.strftime("%s", Call.received_at), Integer) / 900
    totals: Counter[str] = Counter()
    by_day_counter: Counter[date] = Counter()
    by_hour = [0] * 24
    # the daily log's rules: missed and abandoned by status, each once; out of hours is neither
    closed = service.out_of_hours_call()
    scan: Any = session.execute(
        select(bucket, Call.status, func.count(), func.count(Call.answered_at), func.sum(case((closed, 1), else_=0)))
        .where(in_period).group_by(bucket, Call.status))
    for b, status, n, answered, out_of_hours in scan:
        totals["received"] += n
        totals["answered"] += answered
        totals[status] += n - (int(out_of_hours or 0) if status in ("missed", "abandoned") else 0)
        at = datetime.fromtimestamp(int(b) * 900, tz=timezone.utc).astimezone(tz)
        by_day_counter[at.date()] += n
        by_hour[at.hour] += n
    return totals, by_day_counter, by_hour


def _times(session: Session, in_period: Any, pg: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Waiting and talk times (count, median, 90th percentile)."""
    if pg:
        talked = and_(Call.talk_seconds.is_not(None), Call.answered_at.is_not(None))
        w = session.execute(select(
            func.count(Call.queue_wait_seconds),
            func.percentile_cont(0.5).within_group(Call.queue_wait_seconds),
            func.percentile_cont(0.9).within_group(Call.queue_wait_seconds),
            func.count(Call.talk_seconds).filter(talked),
            func.percentile_cont(0.5).within_group(Call.talk_seconds).filter(talked),
            func.percentile_cont(0.9).within_group(Call.talk_seconds).filter(talked),
        ).where(in_period)).one()
        return {"n": w[0], "median": _r(w[1]), "p90": _r(w[2])}, {"n": w[3], "median": _r(w[4]), "p90": _r(w[5])}
    waits = [w for w in session.scalars(select(Call.queue_wait_seconds).where(
        in_period, Call.queue_wait_seconds.is_not(None))) if w is not None]
    talks = [t for t in session.scalars(select(Call.talk_seconds).where(
        in_period, Call.talk_seconds.is_not(None), Call.answered_at.is_not(None))) if t is not None]
    return service.spread(waits), service.spread(talks)


@dataclass
class _RecordTables:
    tables: dict[str, dict[str, Counter[str]]]
    records_total: Counter[str]
    non_counselling: int
    victims: dict[str, Counter[str]]
    perps: dict[str, Counter[str]]
    referrals_checked: bool = True


def _record_tables(session: Session, r: Any) -> _RecordTables:
    """Record tables, sex-disaggregated, and both indicators: one GROUP BY over the period's counted
    records with a "has a GBV issue" flag (PostgreSQL adds the province table to the same scan)."""
    # "id IN (uncorrelated subquery)": PostgreSQL hashes the GBV record ids once
    gbv_ids = select(CallRecordIssue.record_id).where(_gbv_condition(CallRecordIssue.code))
    gbv = case((r.c.id.in_(gbv_ids), 1), else_=0)
    keys = (r.c.sex, r.c.age, r.c.level, r.c.role, r.c.outcome, r.c.primary_issue)
    out = _RecordTables(
        tables={k: defaultdict(Counter) for k in (
            "age_group", "level", "caller_role", "outcome", "province", "issue", "issue_group", "primary_issue")},
        records_total=Counter(), non_counselling=0,
        victims={"detected": Counter(), "served": Counter()}, perps={"detected": Counter(), "counselled": Counter()})
    tables = out.tables
    combos: list[Any] = list(session.execute(select(*keys, gbv.label("gbv"), func.count()).group_by(*keys, gbv)))
    by_province: Any = session.execute(select(r.c.sex, r.c.province, func.count()).group_by(r.c.sex, r.c.province))
    for sex, province, n in by_province:
        tables["province"][province or "unknown"][sex or "unknown"] += n
    nc = non_counselling_codes()
    parents = {t.code: (t.parent or t.code) for t in get_taxonomies().terms("issue")}
    for sex, age, level, role, outcome, primary, is_gbv, n in combos:
        sex = sex or "unknown"
        out.records_total[sex] += n
        tables["age_group"][age or "unknown"][sex] += n
        tables["level"][str(level if level is not None else 0)][sex] += n
        tables["caller_role"][role or "unknown"][sex] += n
        tables["outcome"][outcome or "unknown"][sex] += n
        tables["primary_issue"][primary or "unknown"][sex] += n
        tables["issue_group"][parents.get(primary or "", "other") if primary else "unknown"][sex] += n
        if primary in nc:
            out.non_counselling += n
        _count_indicators(out, sex, level, role, outcome, bool(is_gbv), n)
    by_issue: Any = session.execute(select(r.c.sex, CallRecordIssue.code, func.count())
                                    .join(CallRecordIssue, CallRecordIssue.record_id == r.c.id)
                                    .group_by(r.c.sex, CallRecordIssue.code))
    for sex, code, n in by_issue:
        tables["issue"][code][sex or "unknown"] += n
    out.referrals_checked = _served_through_referrals(session, r, gbv_ids, out.victims)
    return out


def _count_indicators(out: _RecordTables, sex: str, level: Any, role: Any, outcome: Any, is_gbv: bool,
                      n: int) -> None:
    counselled = (level or 0) >= SERVED_LEVEL
    if is_gbv and role != "perpetrator":
        out.victims["detected"][sex] += n
        if counselled or outcome in SERVED_OUTCOMES:
            out.victims["served"][sex] += n
    if role == "perpetrator":
        out.perps["detected"][sex] += n
        if counselled:
            out.perps["counselled"][sex] += n


def _served_through_referrals(session: Session, r: Any, gbv_ids: Any, victims: dict[str, Counter[str]]) -> bool:
    """Victims served only through a referral (few): ask the referral domain about just those records.
    Returns whether the referrals could be checked."""
    unserved_q = (select(r.c.id, r.c.sex)
                  .where(r.c.id.in_(gbv_ids), or_(r.c.role.is_(None), r.c.role != "perpetrator"), or_(r.c.level.is_(None),
                         r.c.level < SERVED_LEVEL), or_(r.c.outcome.is_(None), r.c.outcome.not_in(SERVED_OUTCOMES))))
    unserved = list(session.execute(unserved_q).all()) if victims["detected"] != victims["served"] else []
    referrals_available = False
    if unserved:
        referrals_available, refs = service.referral_states(session, [u.id for u in unserved])
        for u in unserved:
            if refs.get(u.id):
                victims["served"][u.sex or "unknown"] += 1
    return referrals_available or not unserved


def _finish(t: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
    out = {}
    for code, by_sex in sorted(t.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        row = {s: by_sex.get(s, 0) for s in SEXES}
        row["total"] = sum(by_sex.values())
        out[code] = row
    return out


def _r(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _indicator(numerator: Counter[str], denominator: Counter[str]) -> dict[str, Any]:
    by_sex = {}
    for s in SEXES:
        num, den = numerator.get(s, 0), denominator.get(s, 0)
        by_sex[s] = {"numerator": num, "denominator": den, "share": round(100 * num / den, 1) if den else None}
    num, den = sum(numerator.values()), sum(denominator.values())
    return {"numerator": num, "denominator": den, "share": round(100 * num / den, 1) if den else None,
            "by_sex": by_sex}


# ---------------------------------------------------------------------- output
def to_json(report: Report) -> dict[str, Any]:
    p = report.period
    return {
        "centre": report.centre,
        "period": {"start": p.start.isoformat(), "end": p.end.isoformat(), "kind": p.kind, "label": p.label,
                   "due": p.due.isoformat() if p.due else None, "ended": report.ended},
        "generated_at": report.generated_at.isoformat(), "header": report.header, "recipients": report.recipients,
        "signatory": report.signatory, "totals": report.totals, "waiting_seconds": report.waiting,
        "talk_seconds": report.talk, "tables": report.tables, "indicators": report.indicators,
        "by_day": [[d.isoformat(), n] for d, n in report.by_day], "by_hour": report.by_hour,
        "by_issue_group": report.by_issue_group, "daily_logs": report.days, "referrals": report.referrals,
        "callbacks": report.callbacks,
    }


def to_text(report: Report) -> str:
    j = to_json(report)
    lines = [" / ".join(report.header), f"{report.centre['name']} ({report.centre['code']}): {report.period.label}"]
    lines.append("totals: " + ", ".join(f"{k} {v}" for k, v in j["totals"].items()))
    for name, ind in j["indicators"].items():
        lines.append(f"{name}: {ind['numerator']}/{ind['denominator']} = {ind['share']}%")
    for name, table in j["tables"].items():
        lines.append(f"[{name}]  " + "  ".join(SEXES) + "  total")
        for code, row in table.items():
            lines.append(f"  {code}: " + "  ".join(str(row[s]) for s in SEXES) + f"  {row['total']}")
    return "\n".join(lines)


INDICATOR_TITLES = {
    "gbv_victims_served": N_("Share of detected gender-based-violence victims who received services"),
    "perpetrators_counselled": N_("Share of detected perpetrators who were counselled"),
}
TABLE_TITLES = {
    "sex": N_("By caller sex"), "issue_group": N_("By issue group (of the primary issue)"),
    "issue": N_("By issue (a record with several issues counts under each)"),
    "primary_issue": N_("By primary issue"), "level": N_("By level of counselling or intervention"),
    "age_group": N_("By caller age group"), "caller_role": N_("By caller role"), "province": N_("By province"),
    "outcome": N_("By outcome"),
}


def to_csv_rows(report: Report, lang: str) -> list[list[Any]]:
    from daily_log.exports import CALLBACK_LABELS, TOTAL_LABELS, label
    from hotline.i18n import translator

    _ = translator(lang)
    p = report.period
    rows: list[list[Any]] = [[h] for h in report.header]
    rows.append([_("Periodic report"), report.centre["name"], p.label, service.fmt_day(p.start),
                 service.fmt_day(p.end)])
    if not report.ended:
        rows.append([_("The period has not ended yet: figures are provisional.")])
    rows.append([_("Recipients"), "; ".join(report.recipients)])
    rows.append([])
    totals = dict(TOTAL_LABELS)
    rows.append([_("Totals"), _("Number"), _("Code")])
    for k, v in report.totals.items():
        rows.append([_(totals[k]) if k in totals else k, v, k])
    rows.append([])
    rows.append([_("Indicators"), _("Numerator"), _("Denominator"), _("Share (%)"), _("Code")])
    for name, ind in report.indicators.items():
        title = INDICATOR_TITLES.get(name)
        rows.append([_(title) if title else name, ind["numerator"], ind["denominator"], ind["share"], name])
    rows.append([])
    rows.append([_("Referrals made"), report.referrals.get("made", 0)])
    for state, n in report.referrals.get("by_state", {}).items():
        rows.append([state, service.referral_state_label(state, lang), n])
    if report.callbacks:
        rows.append([])
        rows.extend([_(text), report.callbacks.get(key), key] for key, text in CALLBACK_LABELS)
    schemes = {"age_group": "age_group", "level": "service_level", "caller_role": "caller_role",
               "outcome": "outcome", "issue": "issue", "issue_group": "issue", "primary_issue": "issue",
               "province": "province", "sex": "sex"}
    for name, table in report.tables.items():
        rows.append([])
        title = TABLE_TITLES.get(name)
        rows.append([_(title) if title else name, _("Code"), *[label("sex", s, lang) for s in SEXES], _("Total")])
        for code, row in table.items():
            rows.append([label(schemes.get(name), code, lang), code, *[row[s] for s in SEXES], row["total"]])
    return rows
