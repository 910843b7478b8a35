"""Call records as counsellors keep them: drafts saved as they type, completion, later edits.

Plain keyword-only functions over a session.  Every field of ``CallRecord`` is described once in
``FIELDS`` (kind, taxonomy scheme, English label translated through Babel); parsing, validation, the form and the
difference shown to a stale tab are all driven from that table.

Optimistic locking: every save names the ``version`` it was based on; a save based on an older
version raises ``VersionConflict`` carrying the differences, and changes nothing.

Sign-off lock: when a supervisor signs off a record's day, ``locked_at`` is set.  A change to a
locked record then needs a reason (``lock_reason`` in the input, or ``reason=``); the change is
kept as an ``edited_after_sign_off`` revision whose changes include ``lock_reason`` and is
audited (``record.edit_after_sign_off``) with the reason.  Whoever signed the day off finds such
changes as revisions dated after the sign-off (this module knows nothing of the daily log).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline import errors
from hotline.audit import service as audit
from hotline.calls.models import Call, CallRecord, CallRecordIssue
from hotline.db import utcnow
from hotline.errors import Actor
from hotline.i18n import N_, Text, current_language, translator
from hotline.records.models import CallRecordRevision
from hotline.taxonomy import get_taxonomies, non_counselling_codes

NOTES_MAX = 20000
RECORD_CHANNELS_WITHOUT_CALL = ("walk_in", "personal_phone", "transfer_111", "other")
NON_COUNSELLING_QUICK = ("nc.silent", "nc.prank", "nc.wrong_number", "nc.test")
VIEW_ROLES = ("counsellor", "supervisor", "administrator")


@dataclass(frozen=True)
class Message:
    """What is wrong with a field and what to do, as an English message id and its values;
    shown in the reader's language (the field's label first)."""

    about: str  # a field name, or "" when the message is about no single field
    msgid: str
    values: tuple[tuple[str, Any], ...] = ()

    def translate(self, lang: str) -> str:
        text = translator(lang)(self.msgid)
        if self.values:
            text = text % dict(self.values)
        return f"{field_label(self.about, lang)}: {text}" if self.about else text

    def __str__(self) -> str:
        return self.translate(current_language.get())


class RecordError(errors.Invalid):
    """Bad input: ``messages`` maps a field name to a ``Message``; ``translated(lang)`` gives them
    as text in a language, ``errors`` in the current one.

    ``keep_draft``: the typed values were saved to the draft (commit); otherwise roll back.
    """

    def __init__(self, errors: Mapping[str, Any], keep_draft: bool = False):
        self.messages = {k: v if isinstance(v, Message) else Message("", str(v)) for k, v in errors.items()}
        self.keep_draft = keep_draft
        super().__init__("; ".join(f"{k}: {m.translate('en')}" for k, m in self.messages.items()))

    @property
    def errors(self) -> dict[str, str]:
        return self.translated(current_language.get())

    def translated(self, lang: str | None = None) -> dict[str, str]:
        lang = lang or current_language.get()
        return {k: m.translate(lang) for k, m in self.messages.items()}


class NotAllowed(errors.NotAllowed):
    default = N_("You may not change this record.")


class NotFound(errors.NotFound):
    default = N_("No such record, or you may not see it.")


class VersionConflict(errors.Conflict):
    """The record changed since the browser loaded it."""

    def __init__(self, current_version: int, differences: dict[str, dict[str, Any]]):
        super().__init__()
        self.current_version = current_version
        self.differences = differences
        super().__init__(f"record is at version {current_version}")


# ---------------------------------------------------------------------- the field table
@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # choice | multi_choice | int_choice | bool | opt_bool | text | date | province | commune
    en: str  # the label's English message id (Vietnamese in the catalogue)
    scheme: str | None = None
    max_len: int = 255
    section: str = "caller"

    def label(self, lang: str) -> str:
        return translator(lang)(self.en)


FIELDS: tuple[Field, ...] = (
    Field("channel", "choice", N_("Channel"), 'record_channel', section='call'),
    Field("caller_role", "choice", N_("Caller role"), 'caller_role'),
    Field("caller_sex", "choice", N_("Sex"), 'sex'),
    Field("caller_age_group", "choice", N_("Age group"), 'age_group'),
    Field("province_code", "province", N_("Province"), max_len=16),
    Field("commune_code", "commune", N_("Commune or ward"), max_len=16),
    Field("ethnic_minority", "text", N_("Ethnic minority"), max_len=64),
    Field("disability", "opt_bool", N_("Disability")),
    Field("language", "text", N_("Language"), max_len=32),
    Field("flags", "multi_choice", N_("Caller flags"), "caller_flag", section="caller"),
    Field("consent_record", "bool", N_("Consents to the record being kept"), section='consent'),
    Field("consent_statistics", "bool", N_("Consents to statistics"), section='consent'),
    Field("consent_callback", "bool", N_("Consents to a call back"), section='consent'),
    Field("callback_safe_time", "text", N_("Safe time to call back"), section='consent'),
    Field("callback_safe_method", "choice", N_("Safe way to contact"), 'contact_method', section='consent'),
    Field("consent_referral", "bool", N_("Consents to referral"), section='consent'),
    Field("referral_to", "text", N_("Refer to"), section='consent'),
    Field("referral_data", "text", N_("Information that may be shared"), max_len=1000, section='consent'),
    Field("child_consent", "opt_bool", N_("Child consents"), section='consent'),
    Field("representative_consent", "opt_bool", N_("Legal representative consents"), section='consent'),
    Field("service_level", "int_choice", N_("Level of counselling or intervention"), 'service_level', section='issue'),
    Field("child_protection_level", "choice", N_("Child protection level"), 'child_protection_level', section='issue'),
    Field("risk", "choice", N_("Risk"), 'risk', section='issue'),
    Field("outcome", "choice", N_("Outcome"), 'outcome', section='issue'),
    Field("follow_up_needed", "bool", N_("Follow-up needed"), section='issue'),
    Field("follow_up_date", "date", N_("Follow-up date"), section='issue'),
    Field("notes", "text", N_("Notes"), max_len=NOTES_MAX, section='notes'),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}
ISSUE_LABEL = N_("Issues")
LOCK_REASON_LABEL = N_("Reason for changing after the day was signed off")
LOCK_REASON_MAX = 1000
PRIMARY_LABEL = N_("Primary issue")
# Stored inside ``consent_referral_scope`` rather than in columns of their own.
SCOPE_FIELDS = {"referral_to": "to", "referral_data": "data"}
TRUE_WORDS = {"1", "true", "on", "yes", "y", "có"}
FALSE_WORDS = {"0", "false", "off", "no", "n", "không"}


OTHER_LABELS = {"issues": ISSUE_LABEL, "primary_issue": PRIMARY_LABEL, "lock_reason": LOCK_REASON_LABEL,
                "version": N_("Version"), "channel": N_("Channel"), "centre": N_("Centre"), "state": N_("State")}


def field_label(name: str, lang: str = "vi") -> str:
    f = FIELD_BY_NAME.get(name)
    if f is not None:
        return f.label(lang)
    return translator(lang)(OTHER_LABELS[name]) if name in OTHER_LABELS else name


def _msg(name: str, msgid: str, **values: Any) -> Message:
    """A message about field ``name``: ``msgid`` is English with ``%(name)s`` placeholders."""
    return Message(name, msgid, tuple(values.items()))


# ---------------------------------------------------------------------- parsing
def _parse_choice(f: Field, raw: Any) -> Any:
    value = "" if raw is None else str(raw).strip()
    if not value:
        return None
    if not get_taxonomies().is_valid(f.scheme or "", value):
        known = ", ".join(t.code for t in get_taxonomies().terms(f.scheme or ""))
        raise ValueError(_msg(f.name, N_("'%(value)s' is not a known code; choose one of: %(known)s."),
                              value=value, known=known))
    return value


def _parse_int_choice(f: Field, raw: Any) -> Any:
    value = _parse_choice(f, raw)
    return None if value is None else int(value)


def _parse_bool(f: Field, raw: Any) -> Any:
    if isinstance(raw, bool):
        return raw
    value = "" if raw is None else str(raw).strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS or value == "":
        return False if f.kind == "bool" else None
    raise ValueError(_msg(f.name, N_("'%(value)s' is not yes or no."), value=value))


def _parse_opt_bool(f: Field, raw: Any) -> Any:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in {"", "unknown", "none"}):
        return None
    return _parse_bool(f, raw)


def _parse_text(f: Field, raw: Any) -> Any:
    value = "" if raw is None else str(raw)
    value = value.replace("\r\n", "\n").replace("\x00", "")
    if f.name != "notes":
        value = value.strip()
    if len(value) > f.max_len:
        raise ValueError(_msg(f.name, N_("%(length)s characters, at most %(max)s; please shorten it."),
                              length=len(value), max=f.max_len))
    return value if (value or f.name == "notes") else None


def _parse_date(f: Field, raw: Any) -> Any:
    if isinstance(raw, date):
        return raw
    value = "" if raw is None else str(raw).strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(_msg(f.name, N_("'%(value)s' is not a date (dd/mm/yyyy)."), value=value))


def _parse_multi_choice(f: Field, raw: Any) -> Any:
    """Several codes of one scheme (a list, or text separated by commas); order kept, repeats dropped."""
    items = raw if isinstance(raw, (list, tuple)) else ("" if raw is None else str(raw)).split(",")
    codes = list(dict.fromkeys(str(c).strip() for c in items if str(c).strip()))
    bad = [c for c in codes if not get_taxonomies().is_valid(f.scheme or "", c)]
    if bad:
        known = ", ".join(t.code for t in get_taxonomies().terms(f.scheme or ""))
        raise ValueError(_msg(f.name, N_("unknown codes: %(codes)s; choose from: %(known)s."),
                              codes=", ".join(bad), known=known))
    return codes


def _parse_province(f: Field, raw: Any) -> Any:
    """One of the 34 provinces (its code, or a current or old name mapped to it); never free text."""
    from hotline.records import places

    value = "" if raw is None else str(raw).strip()
    if not value:
        return None
    try:
        return places.resolve_province(value)
    except ValueError as exc:
        closest = ", ".join(exc.args[0] if exc.args else [])
        if closest:
            raise ValueError(_msg(f.name, N_("'%(value)s' is not one of the 34 provinces; choose from the list "
                                             "(closest: %(closest)s)."), value=value, closest=closest)) from None
        raise ValueError(_msg(f.name, N_("'%(value)s' is not one of the 34 provinces; choose from the list."),
                              value=value)) from None


def _parse_commune(f: Field, raw: Any) -> Any:
    """A commune's 5-digit code (checked against the province in ``parse_input``)."""
    from hotline.records import places

    value = "" if raw is None else str(raw).strip()
    if not value:
        return None
    if value.isdigit() and places.commune_name(f"{int(value):05d}"):
        return f"{int(value):05d}"
    raise ValueError(_msg(f.name, N_("'%(value)s' is not a commune or ward on the list; choose the province "
                                     "first, then the commune from the list."), value=value))


PARSERS: dict[str, Callable[[Field, Any], Any]] = {
    "province": _parse_province,
    "commune": _parse_commune,
    "choice": _parse_choice,
    "multi_choice": _parse_multi_choice,
    "int_choice": _parse_int_choice,
    "bool": _parse_bool,
    "opt_bool": _parse_opt_bool,
    "text": _parse_text,
    "date": _parse_date,
}


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)
    issues: list[str] | None = None
    primary_issue: str | None = None
    primary_given: bool = False


def parse_input(data: Mapping[str, Any], *, present_bools: bool = False) -> Parsed:
    """Turn form or JSON input into typed values; unknown keys are ignored.

    ``present_bools``: an HTML form omits unticked boxes, so every ``bool`` and ``multi_choice``
    field counts as given.
    """
    out = Parsed()
    errors: dict[str, Any] = {}  # field name -> Message
    for f in FIELDS:
        if f.name not in data and not (present_bools and f.kind in ("bool", "multi_choice")):
            continue
        try:
            out.values[f.name] = PARSERS[f.kind](f, data.get(f.name))
        except ValueError as exc:
            problem = exc.args[0] if exc.args else ""
            errors[f.name] = problem if isinstance(problem, Message) else _msg(f.name, str(problem))
    commune, province = out.values.get("commune_code"), out.values.get("province_code")
    if commune and "province_code" in out.values and "province_code" not in errors:
        from hotline.records import places

        if not province or places.province_of_commune(commune) != province:
            errors["commune_code"] = _msg("commune_code", N_("%(commune)s is not in the province chosen; choose the "
                                                             "commune again from the list."),
                                          commune=places.commune_name(commune))
    if "issues" in data:
        raw = data["issues"]
        codes = raw if isinstance(raw, list) else [c for c in str(raw or "").split(",")]
        codes = [str(c).strip() for c in codes if str(c).strip()]
        bad = [c for c in codes if not get_taxonomies().is_valid("issue", c)]
        if bad:
            errors["issues"] = _msg("issues", N_("unknown issue codes: %(codes)s."), codes=", ".join(bad))
        out.issues = list(dict.fromkeys(codes))
    if "primary_issue" in data:
        out.primary_given = True
        code = str(data.get("primary_issue") or "").strip() or None
        if code and not get_taxonomies().is_valid("issue", code):
            errors["primary_issue"] = _msg("primary_issue", N_("'%(code)s' is not a known issue code."), code=code)
        out.primary_issue = code
    if errors:
        raise RecordError(errors)
    return out


# ---------------------------------------------------------------------- reading values back
def _scope(record: CallRecord) -> dict[str, Any]:
    return dict(record.consent_referral_scope or {})


def get_value(record: CallRecord, name: str) -> Any:
    if name in SCOPE_FIELDS:
        return _scope(record).get(SCOPE_FIELDS[name])
    if name == "issues":
        return [i.code for i in record.issues]
    return getattr(record, name)


def snapshot(record: CallRecord) -> dict[str, Any]:
    """Every form value, JSON-ready (dates as ISO text): for the browser and for diffs."""
    out: dict[str, Any] = {}
    for f in FIELDS:
        v = get_value(record, f.name)
        out[f.name] = v.isoformat() if isinstance(v, date) else v
    out["issues"] = [i.code for i in record.issues]
    out["primary_issue"] = record.primary_issue
    return out


def _set_issues(record: CallRecord, codes: list[str], primary: str | None) -> None:
    if primary and primary not in codes:
        codes = [primary, *codes]
    keep = {i.code: i for i in record.issues}
    record.issues = [keep.get(c) or CallRecordIssue(code=c) for c in codes]
    for issue in record.issues:
        issue.is_primary = issue.code == primary
    record.primary_issue = primary


def _apply(record: CallRecord, parsed: Parsed) -> None:
    scope = _scope(record)
    for name, value in parsed.values.items():
        if name in SCOPE_FIELDS:
            scope[SCOPE_FIELDS[name]] = value
            continue
        if value is None and FIELD_BY_NAME[name].kind in {"bool"}:
            value = False
        if name == "service_level" and value is None:
            value = 0
        if name in {"caller_sex", "caller_age_group"} and value is None:
            value = "unknown"
        if name == "channel" and value is None:
            continue
        if FIELD_BY_NAME[name].kind == "multi_choice":
            value = list(value or [])
        setattr(record, name, value)
    record.consent_referral_scope = {k: v for k, v in scope.items() if v}
    if parsed.issues is not None or parsed.primary_given:
        codes = parsed.issues if parsed.issues is not None else [i.code for i in record.issues]
        primary = parsed.primary_issue if parsed.primary_given else record.primary_issue
        if primary is None and codes and parsed.issues is not None and record.primary_issue in codes:
            primary = record.primary_issue
        _set_issues(record, list(codes), primary)


# ---------------------------------------------------------------------- completeness
def completeness_errors(record: CallRecord) -> dict[str, Message]:
    """What stops a record from being completed, field by field."""
    errors: dict[str, Message] = {}
    nc = non_counselling_codes()
    is_nc = record.primary_issue in nc
    rules: list[tuple[bool, str, str]] = [
        (not record.primary_issue, "primary_issue",
         N_("choose one primary issue.")),
        (not is_nc and (not record.caller_role), "caller_role",
         N_("choose who is calling.")),
        (not is_nc and (not record.outcome), "outcome",
         N_("choose the outcome of the call.")),
        (is_nc and record.service_level != 0, "service_level",
         N_("a non-counselling call has level 0.")),
        (record.consent_callback and (not record.callback_safe_method), "callback_safe_method",
         N_("the caller agreed to a call back: record a safe way to reach them.")),
        (record.consent_referral and (not _scope(record).get('to')), "referral_to",
         N_("the caller agreed to a referral: say to whom.")),
        (record.follow_up_needed and record.follow_up_date is None, "follow_up_date",
         N_("a follow-up is needed: choose a date.")),
    ]
    if record.caller_age_group == "under_16" and not is_nc:
        rules += [
            (record.child_consent is None, "child_consent",
             N_("the caller is under 16: record whether the child consents.")),
            (record.representative_consent is None, "representative_consent",
             N_("the caller is under 16: record whether the legal representative consents.")),
            (bool(record.consent_referral) and (not (record.child_consent and record.representative_consent)),
             "consent_referral",
             N_("referring a child's information needs both the child's and the representative's consent.")),
        ]
    for failed, name, msgid in rules:
        if failed and name not in errors:
            errors[name] = _msg(name, msgid)
    return errors


# ---------------------------------------------------------------------- access
def can_view(actor: Actor, record: CallRecord) -> bool:
    if actor.role == "administrator":
        return True
    if actor.role == "supervisor":  # an overflowed call's record: both centres' supervisors
        return actor.centre_id in (record.centre_id, record.overflow_centre_id)
    if actor.role == "counsellor":
        if record.counsellor_id == actor.id:
            return True
        return record.state == "completed" and record.centre_id == actor.centre_id
    return False


def can_edit(actor: Actor, record: CallRecord) -> bool:
    if actor.role == "administrator":
        return True
    if actor.role == "supervisor":
        return record.centre_id == actor.centre_id
    if actor.role == "counsellor":
        return record.counsellor_id == actor.id
    return False


def get_record(session: Session, *, record_id: int, actor: Actor, for_edit: bool = False) -> CallRecord:
    record = session.get(CallRecord, record_id)
    if record is None or not can_view(actor, record):
        # Not telling a stranger whether the record exists.
        raise NotFound(record_id)
    if for_edit and not can_edit(actor, record):
        raise NotAllowed(record_id)
    return record


def list_records(session: Session, *, actor: Actor, state: str | None = None, limit: int = 100,
                 offset: int = 0) -> list[CallRecord]:
    q = select(CallRecord)
    if actor.role == "supervisor":
        q = q.where(or_(CallRecord.centre_id == actor.centre_id, CallRecord.overflow_centre_id == actor.centre_id))
    elif actor.role == "counsellor":
        q = q.where(or_(CallRecord.counsellor_id == actor.id,
                        (CallRecord.centre_id == actor.centre_id) & (CallRecord.state == "completed")))
    elif actor.role != "administrator":
        return []
    if state:
        q = q.where(CallRecord.state == state)
    q = q.order_by(CallRecord.created_at.desc(), CallRecord.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(q))


# ---------------------------------------------------------------------- creating
def _check_creator(actor: Actor, centre_id: int | None, overflow_centre_id: int | None = None) -> int:
    if actor.role not in VIEW_ROLES:
        raise NotAllowed("records")
    if centre_id is None:
        raise RecordError({"centre": _msg("", N_("Your account belongs to no centre; ask an administrator "
                                                  "to set one."))})
    if actor.role != "administrator" and actor.centre_id not in (centre_id, overflow_centre_id):
        raise NotAllowed("centre")
    return centre_id


def open_for_call(session: Session, *, call_id: int, actor: Actor) -> CallRecord:
    """The record of a call, created as the actor's draft the first time it is opened."""
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(call_id)
    existing = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    if existing is not None:
        if not can_view(actor, existing):
            raise NotFound(existing.id)
        return existing
    # An overflowed call: the other centre's counsellor who answered records it; the record stays
    # the line's centre's.
    _check_creator(actor, call.centre_id, call.overflow_centre_id)
    if actor.role == "counsellor" and call.counsellor_id not in (None, actor.id):
        # The counsellor who answered records the call; another one may not take it over (#14).
        raise NotAllowed(call_id)
    record = CallRecord(call_id=call.id, centre_id=call.centre_id, overflow_centre_id=call.overflow_centre_id,
                        channel="telephony",
                        counsellor_id=actor.id if actor.role == "counsellor" else call.counsellor_id,
                        state="draft", version=1, created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:  # someone opened it at the same moment
        existing = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
        if existing is None or not can_view(actor, existing):
            raise NotFound(call_id) from None
        return existing
    return record


def create_without_call(session: Session, *, actor: Actor, channel: str, centre_id: int | None = None) -> CallRecord:
    """A walk-in, a call on a personal phone, a transfer from 111: a record with no telephony call."""
    if channel not in RECORD_CHANNELS_WITHOUT_CALL:
        raise RecordError({"channel": _msg("channel", N_("choose one of: %(known)s."),
                                           known=", ".join(RECORD_CHANNELS_WITHOUT_CALL))})
    centre = _check_creator(actor, centre_id if centre_id is not None else actor.centre_id)
    record = CallRecord(call_id=None, centre_id=centre, channel=channel, state="draft", version=1,
                        counsellor_id=actor.id if actor.role == "counsellor" else None, created_at=utcnow())
    session.add(record)
    session.flush()
    return record


# ---------------------------------------------------------------------- saving
def _differences(record: CallRecord, parsed: Parsed) -> dict[str, dict[str, Any]]:
    current = snapshot(record)
    diffs: dict[str, dict[str, Any]] = {}
    mine: dict[str, Any] = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in parsed.values.items()}
    if parsed.issues is not None:
        mine["issues"] = parsed.issues
    if parsed.primary_given:
        mine["primary_issue"] = parsed.primary_issue
    for name, value in mine.items():
        theirs = current.get(name)
        if name == "issues" or isinstance(value, list):
            if sorted(value) != sorted(theirs or []):
                diffs[name] = {"yours": value, "theirs": theirs}
        elif (value or None) != (theirs or None):
            diffs[name] = {"yours": value, "theirs": theirs}
    return diffs


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [before.get(k), after.get(k)] for k in after if before.get(k) != after.get(k)}


def _lock_reason(data: Mapping[str, Any], reason: str | None) -> str:
    value = reason if reason is not None else data.get("lock_reason")
    return ("" if value is None else str(value)).replace("\x00", "").strip()


def save(session: Session, *, record: CallRecord, actor: Actor, data: Mapping[str, Any], version: int | str | None,
         complete: bool = False, present_bools: bool = False, reason: str | None = None,
         _action: str | None = None, merged: bool = False) -> CallRecord:
    """Save the given fields (an autosave of a draft, or an edit), optionally completing the record.

    ``merged``: the values resolve a conflict (chosen or merged field by field in the browser);
    the change is kept in the history as a revision even on a draft.

    Raises ``VersionConflict`` when ``version`` is not the record's current one (the rejected
    values are kept as a revision first, so no text is ever lost), ``RecordError``
    when a value is malformed, (on completion) the record is not complete, or the record is locked
    by a sign-off and no reason was given (``lock_reason``; ``reason=`` overrides the input).
    """
    if not can_edit(actor, record):
        raise NotAllowed(record.id)
    base = _base_version(version)
    parsed = parse_input(data, present_bools=present_bools)
    if base is None:
        raise RecordError({"version": _msg("version", N_("missing; reload the page."))})
    if base != record.version:
        differences = _differences(record, parsed)
        keep_rejected(session, record=record, actor=actor, differences=differences)
        raise VersionConflict(record.version, differences)
    before = snapshot(record)
    was_completed = record.state == "completed"
    completing = complete and not was_completed
    locked = record.locked_at is not None
    why = _lock_reason(data, reason) if locked else ""
    if locked and len(why) > LOCK_REASON_MAX:
        raise RecordError({"lock_reason": _msg("lock_reason", N_("at most %(max)s characters."), max=LOCK_REASON_MAX)})
    _apply(record, parsed)
    if locked and not why and (_changes(before, snapshot(record)) or completing):
        raise RecordError({"lock_reason": _msg(
            "lock_reason", N_("this record's day has been signed off; give a reason for the change "
                              "(nothing was saved)."))})
    if complete or was_completed:
        _refuse_incomplete(session, record, was_completed)
    changed = _changes(before, snapshot(record))
    if not changed and not completing:
        return record
    record.version += 1
    record.updated_at = utcnow()
    action = _revision_action(record, completing=completing, was_completed=was_completed, merged=merged,
                              override=_action)
    if locked:
        action = "edited_after_sign_off"
        changed = {**changed, "lock_reason": [None, why]}
        audit.record(session, actor=actor, action="record.edit_after_sign_off", object_type="call_record",
                     object_id=record.id, detail={"reason": why, "version": record.version,
                                                  "fields": sorted(k for k in changed if k != "lock_reason")})
        _tell_signed_day_changed(session, record)
    if action:
        session.add(CallRecordRevision(record_id=record.id, version=record.version, action=action,
                                       user_id=actor.id or None, at=utcnow(), changes=changed))
    session.flush()
    return record


def conflict_after_race(session: Session, *, record_id: int, actor: Actor, data: Mapping[str, Any]) -> VersionConflict:
    """Another save was written between reading the record and writing it (the database refused the
    stale write): roll back, read it again, keep the refused values as a revision, and say so."""
    session.rollback()
    record = get_record(session, record_id=record_id, actor=actor)
    try:
        parsed = parse_input(data)
    except RecordError:
        parsed = Parsed()
    differences = _differences(record, parsed)
    keep_rejected(session, record=record, actor=actor, differences=differences)
    return VersionConflict(record.version, differences)


def _base_version(version: int | str | None) -> int | None:
    """The version the browser edited (``None`` when it sent none)."""
    try:
        return int(version) if version is not None else None
    except (TypeError, ValueError):
        raise RecordError({"version": _msg("version", N_("missing; reload the page."))}) from None


def _refuse_incomplete(session: Session, record: CallRecord, was_completed: bool) -> None:
    """A completed record (or one being completed) must stay complete; a draft keeps what was typed."""
    errors = completeness_errors(record)
    if errors:
        # The draft keeps what was typed; only completion is refused.
        if not was_completed:
            record.version += 1
            record.updated_at = utcnow()
            session.flush()
        raise RecordError(errors, keep_draft=not was_completed)


def _revision_action(record: CallRecord, *, completing: bool, was_completed: bool, merged: bool,
                     override: str | None) -> str | None:
    """What the history calls this save (None: a draft's autosave, not a revision)."""
    action = None
    if completing:
        record.state = "completed"
        record.completed_at = utcnow()
        action = "completed"
    elif was_completed:
        action = "edited"
    if override and action:
        action = override
    if merged and not completing:
        action = "merged"
    return action


REVISION_ACTIONS = {
    "completed": N_("Completed"),
    "edited": N_("Edited after completion"),
    "closed_non_counselling": N_("Closed as a non-counselling call"),
    "edited_after_sign_off": N_("Edited after the day was signed off"),
    "reference_given": N_("Given to the caller"),
    "conflict_kept": N_("Kept from another tab (not saved over the record)"),
    "merged": N_("Merged after a conflict"),
}


def revision_action_label(action: str, lang: str) -> str:
    msgid = REVISION_ACTIONS.get(action)
    return translator(lang)(msgid) if msgid else translator(lang)(N_("Other change"))


def keep_rejected(session: Session, *, record: CallRecord, actor: Actor,
                  differences: dict[str, dict[str, Any]]) -> None:
    """A stale tab's values that differ from the record: kept as a revision (``[saved, rejected]``),
    once per distinct set, so closing the tab or choosing the other version loses no text."""
    if not differences:
        return
    changes = {k: [d.get("theirs"), d.get("yours")] for k, d in differences.items()}
    last = session.scalars(select(CallRecordRevision).where(CallRecordRevision.record_id == record.id)
                           .order_by(CallRecordRevision.id.desc()).limit(1)).first()
    if last is not None and last.action == "conflict_kept" and last.changes == changes \
            and last.user_id == (actor.id or None):
        return
    session.add(CallRecordRevision(record_id=record.id, version=record.version, action="conflict_kept",
                                   user_id=actor.id or None, at=utcnow(), changes=changes))
    session.flush()


def _tell_signed_day_changed(session: Session, record: CallRecord) -> None:
    """The centre's supervisors learn, in their inbox, that a signed-off day changed (once until they
    read it, however many saves follow): the daily log needs a new sign-off."""
    from hotline.notifications import service as notifications

    notifications.notify(session, centre_id=record.centre_id, roles=("supervisor",), kind="daily_log.record_changed",
                         title=Text("Record #%(id)s was changed after its day was signed off: review the change "
                                    "and sign the daily call log off again.", id=record.id),
                         link=f"/records/{record.id}/history", unless_unread=True)


def give_reference(session: Session, *, record: CallRecord, actor: Actor, kind: str, ref_id: str, label: str,
                   reason: str | None = None) -> dict[str, Any]:
    """Note that an address or an article was given to the caller (once per item), as an edit of the
    record: edit rights, the sign-off lock (a reason; the revision marks the signed day changed), a
    revision and an audit entry, like every other change (#14)."""
    from hotline.calls import service as calls

    if not can_edit(actor, record):
        raise NotAllowed(record.id)
    locked = record.locked_at is not None
    why = _lock_reason({}, reason) if locked else ""
    before = list(record.references_given or [])
    for ref in before:
        if ref["kind"] == kind and str(ref["ref_id"]) == str(ref_id):
            return dict(ref)  # already given: nothing changes
    if locked and not why:
        raise RecordError({"lock_reason": _msg(
            "lock_reason", N_("this record's day has been signed off; give a reason for the change "
                              "(nothing was saved)."))})
    if len(why) > LOCK_REASON_MAX:
        raise RecordError({"lock_reason": _msg("lock_reason", N_("at most %(max)s characters."), max=LOCK_REASON_MAX)})
    ref = calls.add_reference(session, record=record, kind=kind, ref_id=ref_id, label=label,
                              given_by=actor.id or None)
    record.version += 1
    record.updated_at = utcnow()
    changed: dict[str, list[Any]] = {"references_given": [before, list(record.references_given)]}
    action = "reference_given"
    if locked:
        action = "edited_after_sign_off"
        changed["lock_reason"] = [None, why]
        audit.record(session, actor=actor, action="record.edit_after_sign_off", object_type="call_record",
                     object_id=record.id, detail={"reason": why, "version": record.version,
                                                  "fields": ["references_given"]})
        _tell_signed_day_changed(session, record)
    session.add(CallRecordRevision(record_id=record.id, version=record.version, action=action,
                                   user_id=actor.id or None, at=utcnow(), changes=changed))
    audit.record(session, actor=actor, action="record.reference_add", object_type="call_record",
                 object_id=record.id, detail={"kind": kind, "ref_id": str(ref_id), "version": record.version})
    session.flush()
    return ref


def close_non_counselling(session: Session, *, record: CallRecord, actor: Actor, code: str,
                          version: int | None = None, reason: str | None = None) -> CallRecord:
    """One action for a silent, prank, wrong-number or test call: issue, level 0, outcome, completed.

    A record locked by a sign-off needs ``reason``, as in ``save``."""
    if code not in non_counselling_codes() or code == "nc":
        choices = ", ".join(NON_COUNSELLING_QUICK)
        raise RecordError({"primary_issue": _msg("primary_issue", N_("'%(code)s' is not a non-counselling "
                                                                     "call; choose: %(known)s."),
                                                 code=code, known=choices)})
    if record.state == "completed":
        raise RecordError({"state": _msg("", N_("The record is already completed; edit it in the form."))})
    data = {"primary_issue": code, "issues": [code], "service_level": "0", "outcome": "non_counselling"}
    return save(session, record=record, actor=actor, data=data,
                version=record.version if version is None else version, complete=True,
                reason=reason if reason is not None else "", _action="closed_non_counselling")


def revisions(session: Session, *, record: CallRecord) -> list[CallRecordRevision]:
    q = select(CallRecordRevision).where(CallRecordRevision.record_id == record.id)
    return list(session.scalars(q.order_by(CallRecordRevision.version.desc())))


# ---------------------------------------------------------------------- caller history
def history_centres(session: Session, *, centre_id: int) -> set[int]:
    """The centres whose caller history a centre's staff see: their own, plus those sharing it with
    them by ``HOTLINE_CALLER_HISTORY_SHARED_CENTRES`` (groups of centre codes)."""
    from hotline.centres.models import Centre
    from hotline.settings import get_settings

    groups = [{c.strip() for c in group.split(",") if c.strip()}
              for group in get_settings().caller_history_shared_centres.split(";")]
    groups = [g for g in groups if len(g) > 1]
    if not groups:
        return {centre_id}
    codes: dict[int, str] = {cid: code for cid, code in session.execute(select(Centre.id, Centre.code))}
    mine = codes.get(centre_id)
    shared = {cid for cid, code in codes.items() if any(mine in g and code in g for g in groups)}
    return shared | {centre_id}


def caller_history(session: Session, *, call: Call, actor: Actor | None = None,
                   limit: int = 10) -> list[dict[str, Any]]:
    """Earlier calls from the same number (same keyed hash) with what was recorded about them.

    Scoped like records (#14): staff see the earlier calls of their own centre (and of centres
    sharing caller history with it by setting), administrators all.  Withheld numbers have no hash:
    two withheld calls are never the same caller.
    """
    from hotline.security.crypto import caller_hashes

    hashes = caller_hashes(call.caller_number, call.number_hash)  # under every configured hash key
    if not hashes:
        return []
    q = (select(Call, CallRecord)
         .outerjoin(CallRecord, CallRecord.call_id == Call.id)
         .where(Call.number_hash.in_(hashes), Call.id != call.id, Call.received_at <= call.received_at))
    if actor is None or actor.role != "administrator":
        if actor is not None and actor.role not in VIEW_ROLES:
            return []
        centre = actor.centre_id if actor is not None and actor.centre_id is not None else call.centre_id
        q = q.where(Call.centre_id.in_(history_centres(session, centre_id=centre)))
    rows = session.execute(q.order_by(Call.received_at.desc()).limit(limit)).all()
    out = []
    for c, r in rows:
        out.append({
            "call_id": c.id,
            "received_at": c.received_at,
            "status": c.status,
            "record_id": r.id if r else None,
            "state": r.state if r else None,
            "issues": [i.code for i in r.issues] if r else [],
            "primary_issue": r.primary_issue if r else None,
            "service_level": r.service_level if r else None,
            "risk": r.risk if r else None,
            "flags": [{"code": t.code, "vi": t.vi, "en": t.en} for t in
                      (get_taxonomies().get("caller_flag", code) for code in ((r.flags or []) if r else [])) if t],
            "follow_up": bool(r and r.follow_up_needed),
            "follow_up_date": r.follow_up_date if r else None,
            "follow_up_open": bool(r and r.follow_up_needed and r.follow_up_date
                                   and r.follow_up_date >= (call.received_at - timedelta(days=1)).date()),
        })
    return out


def completed_between(session: Session, *, centre_id: int, since: datetime, until: datetime) -> list[CallRecord]:
    q = select(CallRecord).where(CallRecord.centre_id == centre_id, CallRecord.state == "completed",
                                 CallRecord.completed_at >= since, CallRecord.completed_at < until)
    return list(session.scalars(q))


def issue_terms(lang: str) -> list[dict[str, Any]]:
    """The issue taxonomy as (group, children) for the form."""
    tax = get_taxonomies()
    groups: list[dict[str, Any]] = []
    for term in tax.terms("issue"):
        if term.parent is None:
            groups.append({"code": term.code, "label": term.label(lang), "children": []})
    by_code = {g["code"]: g for g in groups}
    for term in tax.terms("issue"):
        if term.parent and term.parent in by_code:
            by_code[term.parent]["children"].append({"code": term.code, "label": term.label(lang)})
    return groups


def choices(scheme: str, lang: str) -> list[tuple[str, str]]:
    return [(t.code, t.label(lang)) for t in get_taxonomies().terms(scheme)]


def iter_field_sections(lang: str) -> Iterable[tuple[str, list[Field]]]:
    order = ("call", "caller", "consent", "issue", "notes")
    for section in order:
        yield section, [f for f in FIELDS if f.section == section]
