"""Centres, lines and agent identities: which centre a call belongs to and who answered it."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.centres.models import AgentIdentity, Centre, Line
from hotline.phone import normalize_line_identifier


def ensure_default_centre(session: Session, *, code: str, name: str, timezone: str) -> Centre:
    """The centre that takes calls on lines nobody claims; created on first use.

    Several processes may create it at the same moment (the first calls of a new installation):
    the loser of that race finds the winner's row instead of failing.
    """
    centre = session.scalar(select(Centre).where(Centre.is_default.is_(True)))
    if centre is not None:
        return centre
    for _ in range(2):
        centre = session.scalar(select(Centre).where(Centre.code == code))
        try:
            with session.begin_nested():
                if centre is None:
                    centre = Centre(code=code, name=name, timezone=timezone, is_default=True)
                    session.add(centre)
                centre.is_default = True
                session.flush()
            return centre
        except IntegrityError:
            continue
    raise RuntimeError(f"could not create or find the default centre {code!r}")


#: A PBX's name: its AMI listener's (``hotline-ami@NAME``, ``HOTLINE_AMI_NAME``), what calls it reports carry
#: as their source.
PBX_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


def pbx_name(value: str | None) -> str:
    """A PBX's name as typed ("" = none: any listener, as with one PBX); ``ValueError`` when not allowed."""
    name = (value or "").strip()
    if name and not PBX_NAME.match(name):
        raise ValueError(f"invalid PBX name {name[:70]!r}: the name of its listener (hotline-ami@NAME), letters, "
                         "digits and . _ - : @ only, at most 64")
    return name


def set_centre_pbx(session: Session, centre: Centre, pbx: str | None) -> Centre:
    """Name the PBX where the centre's phones and queues live (its callbacks go out there)."""
    centre.pbx = pbx_name(pbx)
    session.flush()
    return centre


def create_centre(session: Session, *, code: str, name: str, timezone: str = "Asia/Ho_Chi_Minh",
                  province_code: str | None = None, pbx: str = "") -> Centre:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {timezone!r}; use an IANA name such as Asia/Ho_Chi_Minh") from None
    if session.scalar(select(Centre).where(Centre.code == code)):
        raise ValueError(f"a centre with code {code!r} already exists")
    centre = Centre(code=code, name=name, timezone=timezone, province_code=province_code, pbx=pbx_name(pbx))
    session.add(centre)
    session.flush()
    return centre


def get_centre(session: Session, code: str) -> Centre:
    centre = session.scalar(select(Centre).where(Centre.code == code))
    if centre is None:
        known = ", ".join(session.scalars(select(Centre.code)).all()) or "none yet"
        raise LookupError(f"no centre with code {code!r} (known: {known})")
    return centre


def add_line(session: Session, *, centre: Centre, provider: str, kind: str, identifier: str,
             label: str = "", pbx: str = "") -> Line:
    if provider not in {"asterisk", "twilio", "any"}:
        raise ValueError("provider must be asterisk, twilio or any")
    if kind not in {"number", "queue"}:
        raise ValueError("kind must be number (a DID or Twilio number) or queue (an Asterisk or Twilio queue)")
    ident = normalize_line_identifier(identifier) if kind == "number" else identifier.strip()
    if not ident:
        raise ValueError("a line needs an identifier")
    line = Line(centre_id=centre.id, provider=provider, kind=kind, identifier=ident, label=label, pbx=pbx_name(pbx))
    session.add(line)
    session.flush()
    return line


def map_agent(session: Session, *, centre: Centre, provider: str, identity: str, user_id: int | None) -> AgentIdentity:
    row = session.scalar(
        select(AgentIdentity).where(AgentIdentity.provider == provider, AgentIdentity.identity == identity)
    )
    if row is None:
        row = AgentIdentity(centre_id=centre.id, provider=provider, identity=identity)
        session.add(row)
    row.user_id = user_id
    row.centre_id = centre.id
    session.flush()
    return row


@dataclass(frozen=True)
class Routing:
    """A snapshot of lines and agent identities for the ingestor (loaded once per batch)."""

    default_centre_id: int
    numbers: dict[tuple[str, str], Line]  # (provider, E.164) → line
    queues: dict[tuple[str, str], Line]  # (provider, queue name) → line
    agents: dict[tuple[str, str], AgentIdentity]

    @classmethod
    def load(cls, session: Session, default_centre_id: int) -> Routing:
        numbers: dict[tuple[str, str], Line] = {}
        queues: dict[tuple[str, str], Line] = {}
        for line in session.scalars(select(Line).where(Line.active.is_(True))):
            target = numbers if line.kind == "number" else queues
            target[(line.provider, line.identifier)] = line
        agents = {(a.provider, a.identity): a for a in session.scalars(select(AgentIdentity))}
        return cls(default_centre_id, numbers, queues, agents)

    def line_for(self, provider: str, *, dialed: str | None, queue: str | None) -> Line | None:
        if queue:
            for p in (provider, "any"):
                if (p, queue) in self.queues:
                    return self.queues[(p, queue)]
        if dialed:
            ident = normalize_line_identifier(dialed)
            for p in (provider, "any"):
                if (p, ident) in self.numbers:
                    return self.numbers[(p, ident)]
        return None

    def counsellor_for(self, provider: str, identity: str | None) -> int | None:
        if not identity:
            return None
        row = self.agents.get((provider, identity))
        return row.user_id if row else None


# ---------------------------------------------------------------------- routing for the ingestor
# The ingestor needs the default centre and the routing snapshot for every batch it applies: three
# statements each time, most of a lone status callback's database round trips.  It keeps the
# snapshot while one cheap statement (a fingerprint of the centres' default, lines and agent
# identities) says nothing changed, and reloads at least every ROUTING_MAX_AGE seconds.
ROUTING_MAX_AGE = 10.0
_routing_cache: dict[str, tuple[tuple[object, ...], float, Routing]] = {}
_routing_lock = threading.Lock()


# Plain SQL built once: composing the same expression with ``select()``/``func`` on every batch
# cost a fifth of a status callback's Python time (statement building and cache-key generation).
_FINGERPRINT = text(
    "SELECT (SELECT id FROM centres WHERE is_default LIMIT 1),"
    " (SELECT count(id) FROM lines), (SELECT coalesce(max(id), 0) FROM lines),"
    " (SELECT coalesce(sum(CASE WHEN active THEN id ELSE 0 END + centre_id * 7 + length(identifier)), 0)"
    "  FROM lines),"
    " (SELECT count(id) FROM agent_identities), (SELECT coalesce(max(id), 0) FROM agent_identities),"
    " (SELECT coalesce(sum(centre_id * 7 + coalesce(user_id, 0) * 13 + length(identity)), 0)"
    "  FROM agent_identities)"
)


def _routing_fingerprint(session: Session) -> tuple[object, ...]:
    return tuple(session.execute(_FINGERPRINT).one())


def ingest_routing(session: Session, *, code: str, name: str, timezone: str) -> Routing:
    """The default centre (created on first use) and the routing snapshot, for the ingestor."""
    key = str(session.get_bind().engine.url)
    fingerprint = _routing_fingerprint(session)
    with _routing_lock:
        hit = _routing_cache.get(key)
    if (hit is not None and fingerprint[0] is not None and hit[0] == fingerprint
            and time.monotonic() - hit[1] < ROUTING_MAX_AGE):
        return hit[2]
    default = ensure_default_centre(session, code=code, name=name, timezone=timezone)
    routing = Routing.load(session, default.id)
    for obj in [*routing.numbers.values(), *routing.queues.values(), *routing.agents.values()]:
        session.expunge(obj)  # read-only from here on, and kept beyond this session
    if fingerprint[0] is not None:
        with _routing_lock:
            _routing_cache[key] = (fingerprint, time.monotonic(), routing)
    return routing
