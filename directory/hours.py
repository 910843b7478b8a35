"""Opening hours: parsing the written form, public holidays, and "open now".

Written form (CSV template, forms): ``24/7``, or ``;``-separated groups of days and times,
Vietnamese or English day names: ``T2-T6 07:30-11:30,13:30-17:00; T7 08:00-12:00`` or
``Mo-Fr 08:00-17:00; Sa 08:00-12:00``.  A closing time earlier than the opening time runs past
midnight (``T6 20:00-02:00`` is open Friday night until 02:00 on Saturday).  Add ``(nghỉ lễ mở cửa)``
/ ``(open on holidays)`` when the service keeps its hours on public holidays; otherwise it is
closed on the days listed in ``hotline/data/holidays.json`` (``hotline.holidays``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hotline.holidays import public_holidays
from hotline.i18n import Text
from hotline.text import fold

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # HSDS byday codes, Monday first
_DAY_WORDS = {
    "t2": 0, "t3": 1, "t4": 2, "t5": 3, "t6": 4, "t7": 5, "cn": 6,
    "thu 2": 0, "thu 3": 1, "thu 4": 2, "thu 5": 3, "thu 6": 4, "thu 7": 5, "chu nhat": 6,
    "mo": 0, "tu": 1, "we": 2, "th": 3, "fr": 4, "sa": 5, "su": 6,
    "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
}
_ALWAYS = {"24/7", "24 / 7", "24h", "24/24", "ca ngay", "always"}
_HOLIDAY_OPEN = re.compile(r"\((?:nghi le mo cua|open on holidays)\)")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class HoursError(ValueError):
    """Raised with a ``Text`` naming the value and what is wrong with it."""


def _bad(original: str, problem: Text) -> HoursError:
    return HoursError(Text("invalid opening hours %(value)r: %(problem)s", value=original, problem=problem))


@dataclass(frozen=True)
class Slot:
    byday: str  # MO..SU
    opens_at: str  # HH:MM
    closes_at: str  # HH:MM; earlier than opens_at = past midnight; "24:00" allowed


@dataclass(frozen=True)
class Hours:
    always: bool
    slots: tuple[Slot, ...]
    open_on_holidays: bool


def _hm(text: str, original: str) -> str:
    m = _TIME.match(text.strip())
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59 or (int(m.group(1)) == 24 and m.group(2) != "00"):
        raise _bad(original, Text("%(time)r is not a time HH:MM (example: 'T2-T6 07:30-17:00; T7 08:00-12:00' or "
                                  "'24/7')", time=text.strip()))
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def _days(text: str, original: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = (p.strip() for p in part.split("-", 1))
            if a not in _DAY_WORDS or b not in _DAY_WORDS:
                raise _bad(original, Text("unknown day in %(part)r (T2…T7, CN or Mo…Su)", part=part))
            i, j = _DAY_WORDS[a], _DAY_WORDS[b]
            out.extend(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        else:
            if part not in _DAY_WORDS:
                raise _bad(original, Text("unknown day %(part)r (T2…T7, CN or Mo…Su)", part=part))
            out.append(_DAY_WORDS[part])
    return out


def parse(value: str | None) -> Hours:
    """Parse the written form; raise ``HoursError`` that shows the value on anything wrong."""
    original = (value or "").strip()
    text = fold(original)
    if not text:
        return Hours(False, (), False)
    open_holidays = bool(_HOLIDAY_OPEN.search(text))
    text = _HOLIDAY_OPEN.sub("", text).strip()
    if text in _ALWAYS:
        return Hours(True, (), True)
    slots: list[Slot] = []
    for group in filter(None, (g.strip() for g in text.split(";"))):
        m = re.match(r"^(.*?)\s+(\d.*)$", group)
        if not m:
            raise _bad(original, Text("group %(group)r needs days then times, e.g. 'T2-T6 07:30-17:00'", group=group))
        days = _days(m.group(1), original)
        for span in m.group(2).split(","):
            if "-" not in span:
                raise _bad(original, Text("%(span)r needs the form HH:MM-HH:MM", span=span.strip()))
            a, b = span.split("-", 1)
            opens, closes = _hm(a, original), _hm(b, original)
            if opens == closes:
                raise _bad(original, Text("opens and closes at the same time (%(time)s)", time=opens))
            slots.extend(Slot(DAYS[d], opens, closes) for d in days)
    return Hours(False, tuple(slots), open_holidays)


def render(hours: Hours) -> str:
    """Back to the written form (used by exports; ``parse(render(h)) == h``)."""
    if hours.always:
        return "24/7"
    groups: dict[tuple[str, str], list[str]] = {}
    for s in hours.slots:
        groups.setdefault((s.opens_at, s.closes_at), []).append(s.byday)
    names = dict(zip(DAYS, ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"), strict=True))
    text = "; ".join(f"{','.join(names[d] for d in days)} {o}-{c}" for (o, c), days in groups.items())
    return text + (" (open on holidays)" if hours.open_on_holidays and text else "")


def holidays() -> dict[date, tuple[str, str]]:
    return public_holidays()  # core's table, shared with the lines' opening hours


def _minutes(hm: str) -> int:
    h, m = hm.split(":")
    return int(h) * 60 + int(m)


def is_open(*, always: bool, slots: Iterable[Slot], open_on_holidays: bool, now: datetime,
            timezone: str = "Asia/Ho_Chi_Minh") -> bool:
    """Open at ``now`` (aware), reading the schedule in the service's (the centre's) timezone."""
    if always:
        return True
    local = now.astimezone(ZoneInfo(timezone))
    today, minute = local.date(), local.hour * 60 + local.minute
    yesterday = today - timedelta(days=1)
    hol = holidays()
    for s in slots:
        o, c = _minutes(s.opens_at), _minutes(s.closes_at)
        overnight = c <= o
        today_ok = s.byday == DAYS[today.weekday()] and (open_on_holidays or today not in hol)
        if today_ok and o <= minute < (24 * 60 if overnight else c):
            return True
        yday_ok = overnight and s.byday == DAYS[yesterday.weekday()] and (open_on_holidays or yesterday not in hol)
        if yday_ok and minute < c:
            return True
    return False


def local_now(timezone: str = "Asia/Ho_Chi_Minh") -> time:
    return datetime.now(ZoneInfo(timezone)).time()
