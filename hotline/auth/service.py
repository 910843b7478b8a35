"""Accounts: passwords (argon2), server-side sessions, sign-in throttling, user administration.

Plain keyword-only functions over a session.  The cookie holds a random value; the database keeps
only its SHA-256, so a copy of the database does not let anyone sign in.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hotline.auth.models import LANGUAGES, ROLES, LoginThrottle, User, UserSession
from hotline.auth.schemas import AgentRow, CentreChoice, LoginResult, NewSession
from hotline.db import insert_ignore, utcnow
from hotline.i18n import N_

log = logging.getLogger(__name__)

SESSION_IDLE = timedelta(hours=2)  # signed out after this long without a request
SESSION_ABSOLUTE = timedelta(hours=12)  # and after one long shift whatever happens
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often

MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class ThrottleRule:
    prefix: str
    free: int  # failures allowed before any wait
    base: timedelta  # the first wait, doubled at each further failure
    cap: timedelta  # the longest wait
    forget_after: timedelta  # failures older than this no longer count


# Failed sign-ins slow down the account *from that address* (#14 finding 6): after 3 free failures
# each further one doubles the wait (1 s, 2 s, 4 s … at most 15 minutes), so guessing is slow while the
# same account signs in normally from any other address: nobody can lock staff out on purpose.
# One address trying many accounts waits too, with a higher bar, because a whole centre often
# shares one public address.
THROTTLE_RULES = (
    ThrottleRule("pair", 3, timedelta(seconds=1), timedelta(minutes=15), timedelta(hours=24)),
    ThrottleRule("ip", 20, timedelta(seconds=1), timedelta(minutes=15), timedelta(hours=24)),
)


def throttle_delay(rule: ThrottleRule, failures: int) -> timedelta:
    """The wait after ``failures`` counted failures (0 while within the free ones)."""
    if failures <= rule.free:
        return timedelta(0)
    delay: timedelta = min(rule.base * (2 ** min(failures - rule.free - 1, 30)), rule.cap)
    return delay


# Argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): a provincial centre's small
# shared server stays responsive under a burst of sign-ins, and guessing stays expensive.  Hashes
# made with other parameters (e.g. argon2-cffi's defaults) still verify and are upgraded on sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verifying against this when the user does not exist keeps the timing the same.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


class AccountError(ValueError):
    """A user-facing problem with account data (says what was wrong and what to do).

    ``message`` is an English Babel message id with ``%(name)s`` placeholders; pages show
    ``exc.translate(gettext)``, ``str(exc)`` is the English text.
    """

    def __init__(self, message: str, **params: object) -> None:
        self.message, self.params = message, params
        super().__init__(message % params if params else message)

    def translate(self, gettext: Callable[[str], str]) -> str:
        text = gettext(self.message)
        return text % self.params if self.params else text


# ------------------------------------------------------------------ passwords
def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str, *, username: str = "", context: tuple[str, ...] = ()) -> None:
    """Refuse a weak password with a message saying why (see ``hotline.auth.passwords``)."""
    from hotline.auth import passwords

    try:
        passwords.check(password, username=username, context=context)
    except passwords.WeakPassword as exc:
        raise AccountError(exc.message, **exc.params) from None


def _password_context(session: Session, user: User | None = None, *, centre_id: int | None = None,
                      display_name: str = "") -> tuple[str, ...]:
    """Names a password must not be built from: the centre's name and code, the person's name."""
    from hotline.centres.models import Centre

    cid = user.centre_id if user is not None else centre_id
    centre = session.get(Centre, cid) if cid is not None else None
    names = [display_name or (user.display_name if user is not None else "")]
    if centre is not None:
        names += [centre.name, centre.code]
    return tuple(n for n in names if n)


def verify_password(user: User | None, password: str) -> bool:
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and user is not None and bool(user.password_hash)


# ------------------------------------------------------------------ users
def normalize_username(username: str) -> str:
    return (username or "").strip().lower()


def get_user(session: Session, *, user_id: int | None = None, username: str | None = None) -> User | None:
    if user_id is not None:
        return session.get(User, user_id)
    if username is not None:
        return session.scalar(select(User).where(User.username == normalize_username(username)))
    raise TypeError("get_user needs user_id or username")


def require_user(session: Session, *, username: str) -> User:
    user = get_user(session, username=username)
    if user is None:
        raise AccountError(N_("No user named '%(user)s'. Check the spelling (see the user list)."), user=username)
    return user


def list_users(session: Session, *, centre_id: int | None = None, include_disabled: bool = True) -> list[User]:
    stmt = select(User).order_by(User.username)
    if centre_id is not None:
        stmt = stmt.where(User.centre_id == centre_id)
    if not include_disabled:
        stmt = stmt.where(User.active.is_(True))
    return list(session.scalars(stmt))


def create_user(session: Session, *, username: str, password: str, role: str, centre_id: int | None,
                display_name: str = "", language: str = "vi") -> User:
    name = normalize_username(username)
    if not name or len(name) > 128 or any(c.isspace() for c in name):
        raise AccountError(N_("A user name must be 1 to 128 characters, without spaces."))
    if role not in ROLES:
        raise AccountError(N_("Unknown role '%(role)s'; use one of: %(roles)s."), role=role, roles=", ".join(ROLES))
    if language not in LANGUAGES:
        raise AccountError(N_("Unknown language '%(lang)s'; use vi or en."), lang=language)
    if get_user(session, username=name) is not None:
        raise AccountError(N_("The user name '%(user)s' is already taken; choose another."), user=name)
    check_password_strength(password, username=name,
                            context=_password_context(session, centre_id=centre_id, display_name=display_name))
    user = User(username=name, password_hash=hash_password(password), role=role, centre_id=centre_id,
                display_name=display_name.strip()[:255], language=language, active=True,
                password_changed_at=utcnow())
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, *, user: User, password: str, temporary: bool = False) -> None:
    """Set a new password and sign the user out everywhere.  ``temporary``: one an administrator
    chose or read out, which the user must change at the next sign-in."""
    check_password_strength(password, username=user.username, context=_password_context(session, user))
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.must_change_password = temporary
    end_all_sessions(session, user_id=user.id)
    session.execute(delete(LoginThrottle).where(LoginThrottle.key.like(f"pair:{user.username}@%")))
    session.flush()


def replace_temporary_password(session: Session, *, user: User, new: str) -> None:
    """The forced change at sign-in (the temporary password was just checked)."""
    if not user.must_change_password:
        raise AccountError(N_("Your password is not temporary; change it from your account page."))
    if verify_password(user, new):
        raise AccountError(N_("The new password must differ from the current one."))
    check_password_strength(new, username=user.username, context=_password_context(session, user))
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    user.must_change_password = False
    session.flush()


def change_password(session: Session, *, user: User, current: str, new: str, keep_session: str | None = None) -> None:
    """The user's own change: needs the current password; other browsers are signed out."""
    if not verify_password(user, current):
        raise AccountError(N_("The current password is wrong; nothing was changed."))
    if verify_password(user, new):
        raise AccountError(N_("The new password must differ from the current one."))
    check_password_strength(new, username=user.username, context=_password_context(session, user))
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    user.must_change_password = False
    stmt = delete(UserSession).where(UserSession.user_id == user.id)
    if keep_session:
        stmt = stmt.where(UserSession.id != keep_session)
    session.execute(stmt)
    session.flush()


def generate_password() -> str:
    """A temporary password an administrator reads out: 4 groups, no look-alike characters."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def set_active(session: Session, *, user: User, active: bool) -> None:
    user.active = active
    if not active:
        end_all_sessions(session, user_id=user.id)
    session.flush()


def set_language(session: Session, *, user: User, language: str) -> None:
    if language not in LANGUAGES:
        raise AccountError(N_("Unknown language '%(lang)s'; use vi or en."), lang=language)
    user.language = language
    session.flush()


# ------------------------------------------------------------------ throttling
def _rules_for(username: str, ip: str) -> list[tuple[str, ThrottleRule]]:
    name = normalize_username(username)[:128]
    keys = {"pair": f"pair:{name}@{ip}"[:200] if name else "", "ip": f"ip:{ip}"[:200] if ip else ""}
    return [(keys[r.prefix], r) for r in THROTTLE_RULES if keys[r.prefix]]


def locked_until(session: Session, *, username: str, ip: str, now: datetime | None = None) -> datetime | None:
    now = now or utcnow()
    latest: datetime | None = None
    for key, _rule in _rules_for(username, ip):
        row = session.get(LoginThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            latest = max(latest, row.locked_until) if latest else row.locked_until
    return latest


def register_failure(session: Session, *, username: str, ip: str, now: datetime | None = None) -> datetime | None:
    """Count one failed attempt (password or second factor) for the account from this address and
    for the address; returns until when the next attempt must wait, if it must."""
    now = now or utcnow()
    until: datetime | None = None
    for key, rule in _rules_for(username, ip):
        session.execute(insert_ignore(session, LoginThrottle.__table__).values(
            key=key, failures=0, window_start=now, locked_until=None))
        row = session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())
        assert row is not None
        session.refresh(row)
        if now - row.window_start > rule.forget_after:
            row.failures = 0
        row.window_start = now  # the last failure: they are forgotten a day after it
        row.failures += 1
        delay = throttle_delay(rule, row.failures)
        row.locked_until = now + delay if delay else None
        if row.locked_until is not None:
            until = max(until, row.locked_until) if until else row.locked_until
    session.flush()
    return until


_register_failure = register_failure


def clear_throttle(session: Session, *, key: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


def authenticate(session: Session, *, username: str, password: str, ip: str) -> LoginResult:
    """Check a sign-in attempt, counting failures; a locked account is refused even with the right password."""
    now = utcnow()
    user = get_user(session, username=username)
    account_id = user.id if user is not None else None
    until = locked_until(session, username=username, ip=ip, now=now)
    if until is not None:
        return LoginResult(None, until, "locked", account_id)
    ok = verify_password(user, password)
    if ok and user is not None and not user.active:
        return LoginResult(None, None, "disabled", account_id)
    if not ok or user is None:
        until = _register_failure(session, username=username, ip=ip, now=now)
        return LoginResult(None, until, "locked" if until else "bad_credentials", account_id)
    clear_throttle(session, key=f"pair:{user.username}@{ip}"[:200])
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    purge_expired(session)
    session.flush()
    return LoginResult(user)


# ------------------------------------------------------------------ sessions
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# Sign-in stages after the password, in this order; each applies to some accounts only.
STAGES = ("second_factor", "password", "enrol")
STAGE_URLS = {"second_factor": "/login/second-factor", "password": "/login/password", "enrol": "/login/enrol"}
STAGE_MAX_AGE = timedelta(minutes=10)  # a half-signed-in session is short-lived


def next_stage(user: User, after: str = "") -> str:
    """The next sign-in stage this account must pass after ``after`` ("" : right after the password):
    the second factor if enrolled, a new password if the current one is temporary, enrolment if
    the role requires a second factor.  "" when fully signed in."""
    from hotline.auth import second_factor

    todo = {"second_factor": second_factor.enabled(user),
            "password": bool(user.must_change_password),
            "enrol": second_factor.required_for(user) and not second_factor.enabled(user)}
    start = STAGES.index(after) + 1 if after in STAGES else 0
    return next((stage for stage in STAGES[start:] if todo[stage]), "")


def advance_session(session: Session, *, row: UserSession, user: User) -> NewSession:
    """The stage in ``row.pending`` is passed: move to the next one ("" when signed in).

    The session is rotated (ASVS 3.2.1): the half-signed-in row is deleted and a new one, with a
    new cookie value and CSRF token, carries the next stage.  Whoever learnt the cookie of the
    password step (a shared PC, a proxy log) holds nothing once the second factor is passed."""
    following = next_stage(user, after=row.pending)
    fresh = start_session(session, user=user, ip=row.ip, user_agent=row.user_agent, pending=following)
    if following:
        fresh.row.expires_at = row.expires_at  # each stage keeps the password step's short deadline
    session.delete(row)
    session.flush()
    return fresh


def start_session(session: Session, *, user: User, ip: str = "", user_agent: str = "",
                  pending: str = "") -> NewSession:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = UserSession(id=_digest(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                      created_at=now, last_seen_at=now,
                      expires_at=now + (STAGE_MAX_AGE if pending else SESSION_ABSOLUTE),
                      ip=ip[:64], user_agent=user_agent[:255], pending=pending)
    session.add(row)
    session.flush()
    return NewSession(token, row)


def load_session(session: Session, *, cookie_value: str) -> tuple[UserSession, User, str | None] | None:
    """The live session, its active user and the user's centre timezone for a cookie, or None.

    One query per request; sessions past their idle or absolute expiry are deleted when met.
    """
    from hotline.centres.models import Centre

    if not cookie_value or len(cookie_value) > 128:
        return None
    found = session.execute(
        select(UserSession, User, Centre.timezone)
        .join(User, User.id == UserSession.user_id)
        .outerjoin(Centre, Centre.id == User.centre_id)
        .where(UserSession.id == _digest(cookie_value))
    ).first()
    if found is None:
        return None
    row, user, tz = found
    now = utcnow()
    if row.expires_at <= now or now - row.last_seen_at > SESSION_IDLE or not user.active:
        _best_effort(session, delete(UserSession).where(UserSession.id == row.id))
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        _best_effort(session, update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now))
    return row, user, tz


def _best_effort(session: Session, statement: Any) -> None:
    """Housekeeping while a request reads its session (the idle timer, an expired row): it may lose
    a race and is done again by a later request.  On SQLite a read that turns into a write after
    another connection committed is refused at once ("database is locked", whatever the busy
    timeout); that must not turn the page into a 500."""
    try:
        session.execute(statement)
        session.flush()
    except OperationalError as exc:
        session.rollback()  # the row and user reload on their next use
        log.warning("auth.session_housekeeping_skipped", extra={"reason": str(exc.orig)[:200]})


def session_id_for(cookie_value: str) -> str:
    return _digest(cookie_value)


def end_session(session: Session, *, cookie_value: str) -> int | None:
    """Sign one browser out; returns the user id it belonged to."""
    row = session.get(UserSession, _digest(cookie_value)) if cookie_value else None
    if row is None:
        return None
    user_id = row.user_id
    session.delete(row)
    session.flush()
    return user_id


def end_all_sessions(session: Session, *, user_id: int) -> int:
    result = session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


def count_sessions(session: Session, *, user_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(UserSession).where(UserSession.user_id == user_id)) or 0)


def purge_expired(session: Session) -> int:
    """Delete sessions past their absolute or idle expiry, and stale throttles (housekeeping)."""
    now = utcnow()
    result = session.execute(delete(UserSession).where(
        (UserSession.expires_at <= now) | (UserSession.last_seen_at < now - SESSION_IDLE)))
    session.execute(delete(LoginThrottle).where(
        LoginThrottle.window_start < now - timedelta(days=1),
        (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now)))
    return int(getattr(result, "rowcount", 0) or 0)


# ------------------------------------------------------------------ centres and phone agents (admin pages)
def centre_choices(session: Session) -> list[CentreChoice]:
    from hotline.centres.models import Centre

    return [CentreChoice(c.id, c.code, c.name) for c in session.scalars(select(Centre).order_by(Centre.name))]


def resolve_centre(session: Session, *, code: str | None) -> int | None:
    """A centre code → id (None for no centre); unknown codes are a clear error."""
    if not code:
        return None
    from hotline.centres.service import get_centre

    try:
        return get_centre(session, code).id
    except LookupError:
        raise AccountError(N_("No centre with code '%(code)s'. Pick one from the list."), code=code) from None


def agent_rows(session: Session) -> list[AgentRow]:
    from hotline.centres.models import AgentIdentity

    rows = session.scalars(select(AgentIdentity).order_by(AgentIdentity.provider, AgentIdentity.identity))
    return [AgentRow(a.id, a.provider, a.identity, a.centre_id, a.user_id) for a in rows]


AGENT_PROVIDERS = ("asterisk", "twilio")


def map_phone_agent(session: Session, *, centre_code: str, provider: str, identity: str, username: str | None) -> AgentRow:
    """Point an AMI queue-member interface or a Twilio client identity at a counsellor (or nobody)."""
    from hotline.centres.service import get_centre, map_agent

    identity = identity.strip()
    if provider not in AGENT_PROVIDERS:
        raise AccountError(N_("The provider must be asterisk or twilio."))
    if not identity or len(identity) > 255:
        raise AccountError(N_("Enter the identity, e.g. PJSIP/counsellor1 or client:counsellor1 "
                              "(at most 255 characters)."))
    try:
        centre = get_centre(session, centre_code)
    except LookupError:
        raise AccountError(N_("No centre with code '%(code)s'. Pick one from the list."), code=centre_code) from None
    user_id = None
    if username:
        user = require_user(session, username=username)
        if user.role not in ("counsellor", "supervisor"):
            raise AccountError(N_("'%(user)s' is not a counsellor; only counsellors and supervisors "
                                  "answer calls."), user=user.username)
        user_id = user.id
    row = map_agent(session, centre=centre, provider=provider, identity=identity, user_id=user_id)
    return AgentRow(row.id, row.provider, row.identity, row.centre_id, row.user_id)
