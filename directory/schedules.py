"""HSDS 3.0 schedules: every field the specification defines, and "open at" on them.

A ``Rule`` is one HSDS ``schedule`` row: ``freq`` (WEEKLY, DAILY, MONTHLY; empty = weekly),
``interval``, ``byday`` (an RFC 5545 list, "MO,TU,WE"; with MONTHLY an ordinal may lead: "2MO",
"-1FR"), ``bymonthday``, ``valid_from``/``valid_to`` and ``dtstart``/``until`` (dates bounding the
rule), ``opens_at``/``closes_at`` (a closing time at or before the opening time runs past
midnight), ``timezone`` and ``description``.  A rule with only a description cannot be decided:
the entry shows "hours: see text" and is never counted as open.

Rules expand to one stored row per weekday (``dir_schedules``) so that the quick SQL test of
"open now" reads plain rows; a rule that needs more (``is_simple`` false) marks the entry for an
exact check here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from typing import Any
from zoneinfo import ZoneInfo

from directory.hours import DAYS, holidays
from hotline.i18n import Text

FREQS = ("WEEKLY", "DAILY", "MONTHLY", "YEARLY")
_BYDAY = re.compile(r"^([+-]?[1-5])?(MO|TU|WE|TH|FR|SA|SU)$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[+-]\d{2}:?\d{2}|Z)?$")


@dataclass
class Rule:
    id: str = ""
    location_id: str = ""  # "" = the service's own schedule
    freq: str = ""
    interval: int | None = None
    byday: str = ""  # "MO,TU,WE" (normalised: upper case, no spaces)
    bymonthday: str = ""
    valid_from: str = ""  # YYYY-MM-DD
    valid_to: str = ""
    dtstart: str = ""
    until: str = ""
    opens_at: str = ""  # HH:MM
    closes_at: str = ""
    timezone: str = ""
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The non-empty fields (stored in ``dir_schedules.rule``; also the export row)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in ("", None)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Rule:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})

    @property
    def days(self) -> list[str]:
        """The weekdays named (ordinals dropped): what the stored rows hold."""
        out = []
        for part in filter(None, self.byday.split(",")):
            m = _BYDAY.match(part)
            if m and m.group(2) not in out:
                out.append(m.group(2))
        return out

    @property
    def text_only(self) -> bool:
        return not (self.opens_at or self.byday or self.freq or self.bymonthday)

    @property
    def is_simple(self) -> bool:
        """Decided by the quick SQL test: weekly, every week, no dates, no own timezone, no ordinals."""
        return (self.freq in ("", "WEEKLY") and (self.interval or 1) == 1 and not self.bymonthday
                and not (self.valid_from or self.valid_to or self.dtstart or self.until or self.timezone)
                and all(_BYDAY.match(p) and not _BYDAY.match(p).group(1)  # type: ignore[union-attr]  # the match was just tested in the same `and`
                        for p in filter(None, self.byday.split(","))) and bool(self.opens_at) and bool(self.byday))

    def slots(self) -> list[tuple[str, str, str]]:
        """(day, opens, closes) rows stored for the quick test; a daily rule counts every day."""
        if self.text_only:
            return []
        days = self.days or (list(DAYS) if self.freq in ("DAILY", "") or not self.byday else [])
        if self.freq == "MONTHLY" and not self.byday:
            days = list(DAYS)
        opens, closes = self.opens_at or "00:00", self.closes_at or "24:00"
        return [(d, opens, closes) for d in days]


def stored_slots(rule: Rule) -> list[tuple[str, str, str]]:
    """The rows stored for the quick SQL test: a superset of the times the rule is open (the exact
    check then decides).  A rule written in its own timezone cannot be tested in the centre's, so
    it is stored as open all day every day."""
    if rule.timezone and rule.slots():
        return [(d, "00:00", "24:00") for d in DAYS]
    return rule.slots()


class RuleError(ValueError):
    pass


def _date(value: str, name: str) -> str:
    v = value.strip()[:10]
    try:
        return date.fromisoformat(v).isoformat()
    except ValueError:
        raise RuleError(Text("schedule %(field)s: %(value)r is not a date YYYY-MM-DD", field=name, value=value)) from None


def _time(value: str, name: str) -> str:
    m = _TIME.match(value.strip())
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
        raise RuleError(Text("schedule %(field)s: %(value)r is not a time HH:MM", field=name, value=value))
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def _freq_interval(g: dict[str, str], rule: Rule) -> None:
    freq = g["freq"].upper()
    if freq and freq not in FREQS:
        raise RuleError(Text("schedule freq: %(value)r is not one of WEEKLY, DAILY, MONTHLY, YEARLY", value=g["freq"]))
    rule.freq = freq
    if g["interval"]:
        try:
            rule.interval = int(float(g["interval"]))
        except ValueError:
            raise RuleError(Text("schedule interval: %(value)r is not a whole number", value=g["interval"])) from None
        if rule.interval < 1:
            raise RuleError(Text("schedule interval: %(value)r is not a whole number", value=g["interval"]))


def _days_of(g: dict[str, str], rule: Rule) -> None:
    parts = [p.strip().upper() for p in re.split(r"[,;\s]+", g["byday"]) if p.strip()]
    if not all(_BYDAY.match(p) for p in parts):
        raise RuleError(Text("schedule byday: %(value)r is not an RFC 5545 day list (MO,TU,WE,TH,FR,SA,SU; "
                             "with MONTHLY 2MO or -1FR)", value=g["byday"]))
    rule.byday = ",".join(parts)
    if g["bymonthday"]:
        days = [p.strip() for p in g["bymonthday"].split(",") if p.strip()]
        if not all(re.fullmatch(r"-?\d{1,2}", d) and 1 <= abs(int(d)) <= 31 for d in days):
            raise RuleError(Text("schedule bymonthday: %(value)r is not a list of days of the month",
                                 value=g["bymonthday"]))
        rule.bymonthday = ",".join(days)


def _dates_and_times(g: dict[str, str], rule: Rule) -> None:
    for name in ("valid_from", "valid_to", "dtstart", "until"):
        if g[name]:
            setattr(rule, name, _date(g[name], name))
    for name in ("opens_at", "closes_at"):
        if g[name]:
            setattr(rule, name, _time(g[name], name))
    if rule.opens_at and rule.closes_at and rule.opens_at == rule.closes_at:
        raise RuleError(Text("opens and closes at the same time (%(time)s)", time=rule.opens_at))
    if (rule.opens_at or rule.closes_at) and not (rule.opens_at and rule.closes_at):
        raise RuleError(Text("schedule: opens_at and closes_at go together"))
    if rule.timezone and is_offset(rule.timezone):
        off = float(rule.timezone)
        if not -12 <= off <= 14:
            raise RuleError(Text("schedule timezone: %(value)r is not an offset from UTC in hours", value=rule.timezone))
        rule.timezone = f"{off:g}"


def parse(row: dict[str, Any], *, rule_id: str = "", location_id: str = "") -> Rule:
    """One HSDS schedule row (text values) → ``Rule``; ``RuleError`` names the field and value."""
    g = {k: ("" if row.get(k) is None else str(row.get(k)).strip()) for k in (
        "freq", "interval", "byday", "bymonthday", "valid_from", "valid_to", "dtstart", "until", "opens_at",
        "closes_at", "timezone", "description")}
    rule = Rule(id=rule_id, location_id=location_id, description=g["description"], timezone=g["timezone"])
    _freq_interval(g, rule)
    _days_of(g, rule)
    _dates_and_times(g, rule)
    if rule.text_only and not rule.description:
        raise RuleError(Text("schedule: neither days, times nor a description"))
    return rule


def _nth_weekday(d: date) -> tuple[int, int]:
    """(n, -m): d is the n-th and the m-th-from-last such weekday of its month."""
    n = (d.day - 1) // 7 + 1
    nxt = d.replace(day=28) + timedelta(days=4)
    last = (nxt - timedelta(days=nxt.day)).day
    return n, -((last - d.day) // 7 + 1)


def _within(rule: Rule, d: date) -> bool:
    iso = d.isoformat()
    lows = [x for x in (rule.valid_from, rule.dtstart) if x]
    highs = [x for x in (rule.valid_to, rule.until) if x]
    return all(iso >= lo for lo in lows) and all(iso <= hi for hi in highs)


def _last_day(d: date) -> int:
    return ((d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day


def _monthly(rule: Rule, d: date, start: str, step: int) -> bool:
    if rule.bymonthday:
        last = _last_day(d)
        wanted = {int(x) if int(x) > 0 else last + 1 + int(x) for x in rule.bymonthday.split(",")}
        if d.day not in wanted:
            return False
    if rule.byday:
        day, (n, m) = DAYS[d.weekday()], _nth_weekday(d)
        matches = (_BYDAY.match(part) for part in rule.byday.split(","))
        if not any(mt and mt.group(2) == day and (not mt.group(1) or int(mt.group(1)) in (n, m)) for mt in matches):
            return False
    if step > 1 and start:
        s = date.fromisoformat(start)
        return ((d.year - s.year) * 12 + d.month - s.month) % step == 0
    return True


def _weekly(rule: Rule, d: date, start: str, step: int) -> bool:
    if rule.freq == "YEARLY" and start and not rule.byday:
        s = date.fromisoformat(start)
        if (d.month, d.day) != (s.month, s.day):
            return False
    if rule.byday and DAYS[d.weekday()] not in rule.days:
        return False
    if step > 1 and start:
        s = date.fromisoformat(start)
        weeks = ((d - timedelta(days=d.weekday())) - (s - timedelta(days=s.weekday()))).days // 7
        return weeks % step == 0
    return True


def runs_on(rule: Rule, d: date) -> bool:
    """Whether the rule's days include ``d`` (dates bound it; intervals count from dtstart or valid_from)."""
    if not _within(rule, d):
        return False
    start, step = rule.dtstart or rule.valid_from, rule.interval or 1
    if rule.freq == "DAILY":
        ok = not rule.days or DAYS[d.weekday()] in rule.days
        return ok and (step == 1 or not start or (d - date.fromisoformat(start)).days % step == 0)
    if rule.freq == "MONTHLY":
        return _monthly(rule, d, start, step)
    return _weekly(rule, d, start, step)


def _minutes(hm: str) -> int:
    h, m = hm.split(":")
    return int(h) * 60 + int(m)


def is_offset(value: str) -> bool:
    """HSDS 3.0 ``schedule.timezone`` is a number: hours from UTC (7 for Việt Nam)."""
    return bool(re.fullmatch(r"[+-]?\d{1,2}(\.\d+)?", value.strip()))


def zone(name: str) -> tzinfo:
    if is_offset(name):
        return dt_timezone(timedelta(hours=float(name)))
    return ZoneInfo(name)


def rule_open(rule: Rule, now: datetime, tz: str, open_on_holidays: bool) -> bool:
    if rule.text_only:
        return False
    local = now.astimezone(zone(rule.timezone or tz))
    today, minute = local.date(), local.hour * 60 + local.minute
    hol = holidays()
    o = _minutes(rule.opens_at or "00:00")
    c = _minutes(rule.closes_at or "24:00")
    overnight = c <= o
    if runs_on(rule, today) and (open_on_holidays or today not in hol) and o <= minute < (24 * 60 if overnight else c):
        return True
    yday = today - timedelta(days=1)
    return overnight and minute < c and runs_on(rule, yday) and (open_on_holidays or yday not in hol)


def any_open(rules: list[Rule], now: datetime, tz: str, open_on_holidays: bool) -> bool:
    return any(rule_open(r, now, tz, open_on_holidays) for r in rules)


@dataclass
class Schedules:
    """All the rules of one entry (the service's and its locations')."""

    rules: list[Rule] = field(default_factory=list)

    @property
    def note(self) -> str:
        """Descriptions of rules that carry no days or times ("hours: see text")."""
        return " / ".join(r.description for r in self.rules if r.text_only and r.description)

    @property
    def complex(self) -> bool:
        return any(not r.is_simple for r in self.rules if not r.text_only)
