"""Exports of a built day: CSV, XLSX and plain text.

They carry exactly what the summary holds (codes, counts, masked numbers; never free-text
notes).  A day that is not signed off says so in the file itself (first lines of the CSV and of
the XLSX sheet), and so does a day changed after its sign-off.  Cells that a spreadsheet would
run as a formula (starting with ``= + - @``) are prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hotline.i18n import N_, translator
from hotline.taxonomy import get_taxonomies

STATE_LABELS = {
    "not_built": N_("Not built"),
    "provisional": N_("Provisional: today, still running"),
    "built": N_("Built, not signed off"),
    "signed_off": N_("Signed off"),
    "changed_after_sign_off": N_("Changed after sign-off"),
}
UNSIGNED_MARK = N_("NOT SIGNED OFF: this daily log has not been reviewed and signed off by a supervisor.")
PROVISIONAL_MARK = N_("PROVISIONAL: today has not ended; these figures will change until the day is built "
                      "after midnight.")
CHANGED_MARK = N_("CHANGED AFTER SIGN-OFF: records of this day were changed after the supervisor signed it off.")
TOTAL_LABELS = (
    ("received", N_("Calls received")),
    ("answered", N_("Answered")),
    ("missed", N_("Missed")),
    ("abandoned", N_("Abandoned")),
    ("failed", N_("Failed")),
    ("unknown_outcome", N_("Unknown outcome")),
    ("open_at_midnight", N_("Still open at midnight")),
    ("non_counselling", N_("Non-counselling")),
    ("other_channels", N_("Contacts without a call (walk-in, personal phone, 111)")),
    ("records", N_("Records")),
    ("records_counted", N_("Records counted in statistics")),
    ("records_draft", N_("Records not completed")),
    ("excluded_no_consent", N_("Records left out (no consent to statistics)")),
    ("blocked", N_("Blocked calls")),
    ("blocked_to_supervisor", N_("Blocked callers who asked for a supervisor")),
    ("overflow_out", N_("Calls overflowed to another centre")),
    ("overflow_in", N_("Calls overflowed here from another centre")),
    ("out_of_hours", N_("Calls out of hours")),
)
CALLBACK_LABELS = (  # summary["callbacks"] / report.callbacks (callbacks.service.counts)
    ("called_back", N_("Missed callers called back")),
    ("reached", N_("Callbacks that reached the caller")),
    ("median_minutes_to_callback", N_("Median minutes from the missed call to the callback")),
    ("callback_requests", N_("Out-of-hours callback requests")),
)
BREAKDOWNS = (
    ("by_issue", "issue", N_("By issue")),
    ("by_level", "service_level", N_("By level of counselling or intervention")),
    ("by_sex", "sex", N_("By caller sex")),
    ("by_age_group", "age_group", N_("By caller age group")),
    ("by_province", "province", N_("By province")),
    ("by_caller_role", "caller_role", N_("By caller role")),
    ("by_outcome", "outcome", N_("By outcome")),
)
CALL_COLUMNS = (
    ("time", N_("Time")), ("call_id", N_("Call")), ("record_id", N_("Record")), ("channel", N_("Channel")),
    ("caller", N_("Caller (masked)")), ("status", N_("Call status")), ("issues", N_("Issues")),
    ("level", N_("Level")), ("counsellor", N_("Counsellor")), ("outcome", N_("Outcome")),
    ("wait_seconds", N_("Wait (s)")), ("talk_seconds", N_("Talk (s)")),
    ("open_at_midnight", N_("Open at midnight")), ("statistics", N_("Counted in statistics")),
    ("referrals", N_("Referrals")), ("parts", N_("Parts (transfers)")),
    ("out_of_hours", N_("Out of hours")),  # a closed line: counted as out of hours, not as missed
)


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def label(scheme: str | None, code: str, lang: str) -> str:
    if scheme is None:
        return code
    if scheme == "province":  # the 34 provinces' names (hotline.records.places); an unknown code stays
        from hotline.records.places import province_name

        return province_name(code) or (translator(lang)("Unknown") if code in ("unknown", "") else code)
    if scheme == "referral_state":
        from daily_log.service import referral_state_label

        return referral_state_label(code, lang)
    text = get_taxonomies().label(scheme, code, lang) or code
    if text == code and code in ("unknown", "", "none"):  # a blank answer, never the raw code
        return translator(lang)("Unknown")
    return text


def _fmt_dt(value: str | None, tz: str) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(ZoneInfo(tz)).strftime("%d/%m/%Y %H:%M")


def header_rows(summary: dict[str, Any], lang: str) -> list[list[Any]]:
    _ = translator(lang)
    centre = summary["centre"]
    day = date.fromisoformat(summary["date"]).strftime("%d/%m/%Y")
    rows: list[list[Any]] = [[_("Daily call log"), centre["name"], centre["code"], day]]
    state = summary.get("state", "built")
    if state == "provisional":
        rows.append([_(PROVISIONAL_MARK)])
    elif state in ("built", "not_built"):
        rows.append([_(UNSIGNED_MARK)])
    elif state == "changed_after_sign_off":
        rows.append([_(CHANGED_MARK)])
    rows.append([_("State"), _(STATE_LABELS.get(state, state))])
    rows.append([_("Figures as of") if state == "provisional" else _("Built at"),
                 _fmt_dt(summary.get("built_at"), centre["timezone"])])
    if summary.get("signed_off_at"):
        rows.append([_("Signed off"), _fmt_dt(summary["signed_off_at"], centre["timezone"]),
                     summary.get("signed_off_by") or ""])
    rows.append([_("Timezone"), centre["timezone"], _("Hours in the day"), summary["window"]["hours"]])
    gaps = summary.get("telephony_gaps") or []
    if gaps:
        rows.append([_("Phone system not heard (listener outages)"), len(gaps),
                     _("seconds"), sum(g["seconds"] for g in gaps),
                     _("calls recovered"), sum(g["recovered_calls"] for g in gaps)])
    return rows


def call_row(call: dict[str, Any], lang: str) -> list[Any]:
    out = []
    for key, _label in CALL_COLUMNS:
        v = call.get(key)
        if key == "issues":
            v = ", ".join(v or [])
        elif key in ("open_at_midnight", "statistics", "out_of_hours"):
            v = "x" if v else ""
        elif key == "referrals":
            v = "; ".join(f"{r.get('service_name', '')} ({label('referral_state', r.get('state', ''), lang)})"
                          for r in (v or []))
        elif key == "level" and v is not None:
            v = int(v)
        out.append(_safe("" if v is None else v))
    return out


def table_rows(summary: dict[str, Any], lang: str) -> list[list[Any]]:
    """Every section as rows: header, totals, times, breakdowns, referrals, follow-ups, counsellors, calls."""
    _ = translator(lang)
    rows = header_rows(summary, lang)
    rows.append([])
    rows.append([_("Totals")])
    for key, text in TOTAL_LABELS:
        rows.append([_(text), summary["totals"].get(key, 0)])
    rows.append([])
    rows.append([_("Times"), "n", _("Median"), _("90th percentile")])
    for key, text in (("waiting_seconds", N_("Waiting (s)")), ("talk_seconds", N_("Talk time (s)"))):
        s = summary[key]
        rows.append([_(text), s["n"], s["median"], s["p90"]])
    for key, scheme, text in BREAKDOWNS:
        rows.append([])
        rows.append([_(text)])
        for code, n in summary[key].items():
            rows.append([_safe(code), _safe(label(scheme, code, lang)), n])
    rows.append([])
    rows.append([_("Referrals made"), summary["referrals"]["made"]])
    for state, n in summary["referrals"]["by_state"].items():
        rows.append([_safe(state), _safe(label("referral_state", state, lang)), n])
    if summary.get("callbacks"):
        rows.append([])
        rows.extend([_(text), summary["callbacks"].get(key)] for key, text in CALLBACK_LABELS)
    rows.append([])
    rows.append([_("Follow-ups due"), len(summary["follow_ups_due"])])
    for f in summary["follow_ups_due"]:
        rows.append([f["record_id"], _safe(f["primary_issue"] or ""), _safe(f["counsellor"]), f["risk"] or ""])
    rows.append([])
    rows.append([_("Per counsellor"), _("Calls answered"), _("Records counted"), _("Talk time (s)"),
                 _("Median"), _("90th percentile")])
    for p in summary["per_counsellor"]:
        rows.append([_safe(p["name"]), p["calls_answered"], p["records_counted"], p["talk_seconds_total"],
                     p["talk"]["median"], p["talk"]["p90"]])
    rows.append([])
    rows.append([_("Calls of the day")])
    rows.append([_(text) for _key, text in CALL_COLUMNS])
    for call in summary["calls"]:
        rows.append(call_row(call, lang))
    return rows


def to_csv(summary: dict[str, Any], *, lang: str = "vi") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in table_rows(summary, lang):
        writer.writerow(row)
    return buf.getvalue()


def to_xlsx(summary: dict[str, Any], *, lang: str = "vi") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    _ = translator(lang)
    wb = Workbook()
    ws = wb.active
    ws.title = _("Summary")[:31]
    head = header_rows(summary, lang)
    for row in table_rows(summary, lang):
        if row and row[0] == _("Calls of the day"):
            break
        ws.append(row)
    ws["A1"].font = Font(bold=True, size=13)
    if summary.get("state") != "signed_off":
        ws["A2"].font = Font(bold=True, color="B00020")
    calls = wb.create_sheet(_("Calls")[:31])
    for row in head[:2]:
        calls.append(row)
    calls.append([])
    calls.append([_(text) for _key, text in CALL_COLUMNS])
    for call in summary["calls"]:
        calls.append(call_row(call, lang))
    if summary.get("state") != "signed_off":
        calls["A2"].font = Font(bold=True, color="B00020")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_text(summary: dict[str, Any], *, lang: str = "en") -> str:
    lines = []
    for row in table_rows(summary, lang):
        lines.append("  ".join("" if v is None else str(v) for v in row))
    return "\n".join(lines)
