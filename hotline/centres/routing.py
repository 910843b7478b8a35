"""Where a call on a line goes: opening hours and holidays, the overflow centre, the closed message.

Both providers ask this at the start of a call: the Asterisk dialplan through
``GET /api/lines/route`` (func_curl, failing open), the Twilio voice webhook directly.

- A line without hours is always open.  With hours it is open on the listed weekday slots (the
  centre's timezone; a closing time at or before the opening runs past midnight), except on the
  public holidays of ``hotline.holidays`` (when ``closed_on_holidays``) and its own closed dates.
- An open line names its centre's queue, how long a caller waits there (``overflow_wait_seconds``,
  else the PBX's own timeout) and, when set, the overflow centre's queue: a caller who waits
  longer, or finds no counsellor free, goes there.  The call stays the line's centre's.
- A closed line names its message: the emergency numbers, and (``callback``) a key to ask for a
  callback (``call.facts["callback_requested"] = "out_of_hours"``).

A regional line serving several provinces is one line whose centre is the regional centre, with a
provincial centre (or another region) as its overflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.centres.models import Centre, Line
from hotline.errors import Invalid, NotFound
from hotline.holidays import is_public_holiday
from hotline.i18n import N_, Text
from hotline.phone import normalize_line_identifier

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # Monday first, as date.weekday()
WEEKDAY_LABELS = {"MO": N_("Monday"), "TU": N_("Tuesday"), "WE": N_("Wednesday"), "TH": N_("Thursday"),
                  "FR": N_("Friday"), "SA": N_("Saturday"), "SU": N_("Sunday")}
MIN_WAIT, MAX_WAIT = 10, 3600

#: The out-of-hours messages an administrator chooses from: Asterisk sound file, text spoken on
#: Twilio (vi-VN), whether a key asks for a callback.
EMERGENCY = ("Nếu bạn đang gặp nguy hiểm, hãy gọi 113 để báo công an, 115 để gọi cấp cứu, "
             "hoặc 111 để được bảo vệ trẻ em.")
CLOSED_TEXT = ("Xin chào, bạn đã gọi đến đường dây nóng tư vấn và hỗ trợ. Hiện chúng tôi ngoài giờ làm việc. "
               + EMERGENCY)
CLOSED_MESSAGES: dict[str, dict[str, Any]] = {
    "callback": {"sound": "hotline/closed", "callback": True, "label": N_("Emergency numbers, and a key to ask for a callback"),
                 "text": CLOSED_TEXT + " Nếu bạn muốn chúng tôi gọi lại khi mở cửa, hãy bấm một phím bất kỳ."},
    "no_callback": {"sound": "hotline/closed-no-callback", "callback": False,
                    "label": N_("Emergency numbers only (no callback)"),
                    "text": CLOSED_TEXT + " Xin vui lòng gọi lại trong giờ làm việc."},
}
CALLBACK_THANKS = "Cảm ơn bạn. Chúng tôi sẽ gọi lại cho bạn khi mở cửa. Xin chào tạm biệt."

_SLOT = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Route:
    line_id: int | None
    centre_id: int
    open: bool
    wait_seconds: int | None = None
    overflow_centre_id: int | None = None
    message: str = "callback"

    @property
    def callback(self) -> bool:
        return bool(CLOSED_MESSAGES[self.message]["callback"])

    @property
    def sound(self) -> str:
        return str(CLOSED_MESSAGES[self.message]["sound"])

    @property
    def text(self) -> str:
        return str(CLOSED_MESSAGES[self.message]["text"])


# ---------------------------------------------------------------------- hours
def _minutes(hm: str) -> int:
    h, m = hm.split(":")
    return int(h) * 60 + int(m)


def parse_slots(text: str, day: str) -> list[list[str]]:
    """``07:30-11:30, 13:30-17:00`` → [["07:30", "11:30"], ["13:30", "17:00"]]; empty = closed that day."""
    slots: list[list[str]] = []
    for part in filter(None, (p.strip() for p in (text or "").replace(";", ",").split(","))):
        match = _SLOT.match(part)
        ok = match is not None and int(match.group(1)) <= 24 and int(match.group(3)) <= 24 \
            and int(match.group(2)) < 60 and int(match.group(4)) < 60
        if not ok or match is None:
            raise Invalid({f"hours_{day}": Text("Write the hours as 07:30-11:30, 13:30-17:00 (got %(value)s).",
                                                value=part)})
        opens = f"{int(match.group(1)):02d}:{match.group(2)}"
        closes = f"{int(match.group(3)):02d}:{match.group(4)}"
        if opens == closes:
            raise Invalid({f"hours_{day}": Text("A time slot cannot open and close at the same time (%(value)s).",
                                                value=part)})
        slots.append([opens, closes])
    return slots


def slots_text(slots: list[list[str]] | None) -> str:
    return ", ".join(f"{o}-{c}" for o, c in slots or [])


def parse_dates(text: str) -> list[str]:
    """Closed dates, one per line or comma-separated, as dd/mm/yyyy or yyyy-mm-dd → ISO dates."""
    out: set[str] = set()
    for part in filter(None, (p.strip() for p in re.split(r"[\s,;]+", text or ""))):
        for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
            try:
                out.add(datetime.strptime(part, pattern).date().isoformat())
                break
            except ValueError:
                continue
        else:
            raise Invalid({"closed_dates": Text("Write each closed date as dd/mm/yyyy, for example 02/09/2027 "
                                                "(got %(value)s).", value=part)})
    return sorted(out)


def _closed_day(line: Line, day: date) -> bool:
    return (line.closed_on_holidays and is_public_holiday(day)) or day.isoformat() in (line.closed_dates or [])


def is_open(line: Line, *, timezone: str, now: datetime) -> bool:
    """Open at ``now`` (aware), reading the hours in the centre's timezone."""
    local = now.astimezone(ZoneInfo(timezone))
    today, minute = local.date(), local.hour * 60 + local.minute
    if line.hours is None:
        return not (line.closed_dates and today.isoformat() in line.closed_dates)
    yesterday = today - timedelta(days=1)
    for slot in line.hours.get(WEEKDAYS[today.weekday()], []):
        o, c = _minutes(slot[0]), _minutes(slot[1])
        if not _closed_day(line, today) and o <= minute < (24 * 60 if c <= o else c):
            return True
    for slot in line.hours.get(WEEKDAYS[yesterday.weekday()], []):
        o, c = _minutes(slot[0]), _minutes(slot[1])
        if c <= o and minute < c and not _closed_day(line, yesterday):
            return True  # last night's slot running past midnight
    return False


# ---------------------------------------------------------------------- the route of a call
def find_line(session: Session, *, provider: str, dialed: str | None, queue: str | None = None) -> Line | None:
    """The line of a call: its dialled number first (the more specific), then its queue."""
    providers = (provider, "any")
    if dialed:
        ident = normalize_line_identifier(dialed)
        line = session.scalars(select(Line).where(Line.active.is_(True), Line.kind == "number",
                                                  Line.provider.in_(providers), Line.identifier == ident)
                               .order_by(Line.id).limit(1)).first()
        if line is not None:
            return line
    if queue:
        return session.scalars(select(Line).where(Line.active.is_(True), Line.kind == "queue",
                                                  Line.provider.in_(providers), Line.identifier == queue)
                               .order_by(Line.id).limit(1)).first()
    return None


def route_of(session: Session, line: Line, *, now: datetime) -> Route:
    centre = session.get(Centre, line.centre_id)
    return route_at(line, timezone=centre.timezone if centre is not None else "Asia/Ho_Chi_Minh", now=now)


def route_at(line: Line, *, timezone: str, now: datetime) -> Route:
    """``route_of`` when the caller already has the centre's timezone (no statement)."""
    tz = timezone
    message = line.closed_message if line.closed_message in CLOSED_MESSAGES else "callback"
    overflow = line.overflow_centre_id if line.overflow_centre_id != line.centre_id else None
    return Route(line_id=line.id, centre_id=line.centre_id, open=is_open(line, timezone=tz, now=now),
                 wait_seconds=line.overflow_wait_seconds, overflow_centre_id=overflow, message=message)


def available_counsellors(session: Session, centre_id: int) -> int:
    """Counsellors of the centre available on the live screen now (the queue's free members)."""
    from hotline.live.models import CounsellorPresence

    return len(session.scalars(select(CounsellorPresence.user_id).where(
        CounsellorPresence.centre_id == centre_id, CounsellorPresence.state == "available")).all())


def centre_queue(session: Session, centre_id: int, provider: str) -> str | None:
    """The centre's own queue on a provider (its first active queue line), if it has one."""
    return session.scalars(select(Line.identifier).where(
        Line.centre_id == centre_id, Line.active.is_(True), Line.kind == "queue",
        Line.provider.in_((provider, "any"))).order_by(Line.provider == "any", Line.id).limit(1)).first()


# ---------------------------------------------------------------------- administrators' settings
@dataclass(frozen=True)
class LineSettings:
    overflow_centre: str = ""  # centre code, "" = none
    overflow_wait: str = ""  # seconds, "" = the PBX's own timeout
    always_open: bool = True
    hours: dict[str, str] | None = None  # weekday → "07:30-11:30, 13:30-17:00"
    closed_on_holidays: bool = True
    closed_dates: str = ""
    closed_message: str = "callback"
    pbx: str = ""  # the PBX whose trunk carries the line ("" = the centre's)


def lines(session: Session) -> list[Line]:
    return list(session.scalars(select(Line).order_by(Line.centre_id, Line.provider, Line.identifier)))


def update_line(session: Session, *, line_id: int, form: LineSettings) -> Line:
    line = session.get(Line, line_id)
    if line is None:
        raise NotFound(Text("No such line."))
    errors: dict[str, Text] = {}
    overflow: int | None = None
    if form.overflow_centre:
        centre = session.scalar(select(Centre).where(Centre.code == form.overflow_centre))
        if centre is None:
            errors["overflow_centre"] = Text("No centre with code %(code)s.", code=form.overflow_centre)
        elif centre.id == line.centre_id:
            errors["overflow_centre"] = Text("The overflow centre must be another centre than the line's own.")
        else:
            overflow = centre.id
    wait: int | None = None
    if form.overflow_wait.strip():
        text = form.overflow_wait.strip()
        if not text.isdigit() or not MIN_WAIT <= int(text) <= MAX_WAIT:
            errors["overflow_wait"] = Text("The waiting time is a number of seconds from %(low)d to %(high)d.",
                                           low=MIN_WAIT, high=MAX_WAIT)
        else:
            wait = int(text)
    from hotline.centres.service import pbx_name

    pbx = ""
    try:
        pbx = pbx_name(form.pbx)
    except ValueError:
        errors["pbx"] = Text("A PBX's name is the name of its listener (hotline-ami@NAME): letters, digits and "
                             ". _ - : @ only, at most 64 characters (got %(value)s).", value=form.pbx[:70])
    if form.closed_message not in CLOSED_MESSAGES:
        errors["closed_message"] = Text("Choose one of the out-of-hours messages.")
    hours: dict[str, Any] | None = None
    if not form.always_open:
        hours = {}
        for day in WEEKDAYS:
            try:
                slots = parse_slots((form.hours or {}).get(day, ""), day)
            except Invalid as exc:
                errors.update(exc.messages)
                continue
            if slots:
                hours[day] = slots
    try:
        dates = parse_dates(form.closed_dates)
    except Invalid as exc:
        errors.update(exc.messages)
        dates = []
    if errors:
        raise Invalid(errors)
    line.overflow_centre_id, line.overflow_wait_seconds = overflow, wait
    line.hours, line.closed_on_holidays, line.closed_dates = hours, form.closed_on_holidays, dates
    line.closed_message = form.closed_message
    line.pbx = pbx
    session.flush()
    return line
