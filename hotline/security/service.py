"""Security of stored data: key status and rotation, retention, legal hold.

Key rotation (``rotate_keys``) walks every encrypted column in id order, a batch per
transaction, and rewrites values that are plaintext or under an older key; each update names the
value it read (``WHERE id = … AND col = old``), so a row the application changed meanwhile is left
alone (it was written under the newest key anyway).  The service keeps running throughout: every
configured key decrypts.  Number hashes are recomputed from the (decrypted) full number where it
is still kept; a call whose number retention removed keeps its old hash, which still links caller
history while its key stays in ``HOTLINE_NUMBER_HASH_KEYS``.

Retention (``run_retention``) removes, past their periods, the free text of call records (notes,
safe call-back time, the information a caller agreed to share, reasons typed for late edits, also
inside revisions) and full caller numbers (the call's number and raw caller ID, and the caller-ID
fields of raw provider events and dead letters).  Coded fields stay for statistics, and so does
the masked number and the keyed hash.  A record under legal hold keeps everything; a call whose
record has a follow-up still due keeps its number until the follow-up date has passed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    LargeBinary,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from hotline.audit import service as audit
from hotline.calls.models import Call, CallKey, CallRecord, DeadLetter, RawEvent
from hotline.db import Base, EncryptedBytes, EncryptedJSON, EncryptedText, session_scope, utcnow
from hotline.records.models import CallRecordRevision
from hotline.security import crypto

PURGED = "[purged]"
# Shown in a revision's history where retention removed the text.
PURGED_TEXT = "[đã xoá khi hết thời hạn lưu trữ / removed at the end of the retention period]"
# Free-text values in a record and its revisions' changes.
REVISION_TEXT_FIELDS = ("notes", "callback_safe_time", "referral_data", "lock_reason")
SCOPE_TEXT_KEYS = ("data",)  # consent_referral_scope: "to" names the agency, kept with the consent
HOLD_REASON_MAX = 1000


class SecurityError(ValueError):
    """Bad input to a security command: says what was wrong and what to do."""


@dataclass(frozen=True)
class RetentionHook:
    """A domain's own retention step, declared in its record in ``hotline.domains`` (``retention``).

    ``func(*, now, notes_cutoff, numbers_cutoff, dry_run) -> int`` removes (or, on a dry run,
    counts) the domain's free text older than ``notes_cutoff`` and full numbers older than
    ``numbers_cutoff`` (either may be None: kept forever), skipping anything tied to a call record
    under legal hold, commits its own batches, and returns how many rows it changed.
    """

    name: str
    func: Callable[..., int]


def retention_steps() -> list[RetentionHook]:
    """Every domain's retention steps, as the composition root declares them."""
    from hotline import domains

    return domains.retention_steps()


# ---------------------------------------------------------------------- encrypted columns
@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    column: str
    kind: str  # text | bytes | json

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def encrypted_columns() -> list[EncryptedColumn]:
    """Every column of every model that is encrypted at rest (domains that adopt the types join in)."""
    import hotline.models  # noqa: F401  (every table)

    kinds = {EncryptedText: "text", EncryptedBytes: "bytes", EncryptedJSON: "json"}
    out = []
    for table in Base.metadata.sorted_tables:
        for col in table.columns:
            kind = kinds.get(type(col.type))
            if kind:
                out.append(EncryptedColumn(table.name, col.name, kind))
    return sorted(out, key=lambda c: (c.table, c.column))


def _raw_table(col: EncryptedColumn) -> Table:
    """The table as plain columns: values exactly as stored, no decryption."""
    pk = next(iter(Base.metadata.tables[col.table].primary_key.columns)).name
    typ = LargeBinary() if col.kind == "bytes" else Text()
    return Table(col.table, MetaData(), Column(pk, primary_key=True), Column(col.column, typ))


def _values(col: EncryptedColumn) -> tuple[Any, Any, Any, Any]:
    t = _raw_table(col)
    c = t.c[col.column]
    pk = next(iter(t.primary_key.columns))
    prefix: Any = crypto.PREFIX_B if col.kind == "bytes" else crypto.PREFIX
    return t, pk, c, prefix


# ---------------------------------------------------------------------- key status
@dataclass
class KeyStatus:
    current_key: str
    configured_keys: list[str]
    # key id (or "plaintext") -> column name -> rows
    encryption: dict[str, dict[str, int]] = field(default_factory=dict)
    current_hash_key: str = ""
    configured_hash_keys: list[str] = field(default_factory=list)
    # hash key id (or "legacy") -> {"rows": n, "number_removed": m}
    hashes: dict[str, dict[str, int]] = field(default_factory=dict)

    def rows_left(self) -> int:
        """Rows not yet under the newest keys (what ``rotate`` still has to do)."""
        enc = sum(sum(cols.values()) for kid, cols in self.encryption.items() if kid != self.current_key)
        hashed = sum(v["rows"] - v["number_removed"] for kid, v in self.hashes.items()
                     if kid != self.current_hash_key)
        return enc + hashed

    def unreadable(self) -> list[str]:
        """Key ids that protect rows but are not configured: those rows cannot be read."""
        return [kid for kid in self.encryption if kid not in self.configured_keys and kid != "plaintext"]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_left": self.rows_left(), "unreadable": self.unreadable()}


def key_status(session: Session) -> KeyStatus:
    ring, hashes = crypto.keyring(), crypto.hash_keyring()
    status = KeyStatus(current_key=ring.current, configured_keys=list(ring.ids),
                       current_hash_key=hashes.current, configured_hash_keys=hashes.ids)
    head = len(crypto.PREFIX)
    for col in encrypted_columns():
        t, _pk, c, prefix = _values(col)
        kid = case((func.substr(c, 1, head) == literal(prefix, c.type), func.substr(c, head + 1, crypto.KID_LEN)),
                   else_=None)
        q = select(kid.label("kid"), func.count()).where(c.is_not(None), func.length(c) > 0).group_by(kid)
        counted: Any = session.execute(q)  # rows of (key id, count)
        for key, count in counted:
            if isinstance(key, (bytes, memoryview)):
                key = bytes(key).decode("ascii", "replace")
            status.encryption.setdefault(key or "plaintext", {})[col.name] = int(count)
    kid = case((Call.number_hash.like("%:%"), func.substr(Call.number_hash, 1, crypto.KID_LEN)), else_="legacy")
    removed = func.sum(case((Call.caller_number.is_(None), 1), else_=0))
    q = select(kid, func.count(), removed).where(Call.number_hash.is_not(None)).group_by(kid)
    hashed: Any = session.execute(q)  # rows of (key id, count, numbers removed)
    for key, count, gone in hashed:
        status.hashes[key] = {"rows": int(count), "number_removed": int(gone or 0)}
    return status


# ---------------------------------------------------------------------- rotation
@dataclass
class RotationResult:
    reencrypted: dict[str, int] = field(default_factory=dict)  # column -> rows rewritten
    rehashed: int = 0
    hash_kept: int = 0  # number removed by retention: old hash kept
    changed_meanwhile: int = 0  # rows the application rewrote during the batch (left alone)


def _batches(session_factory: Callable[[], Any], q_for: Callable[[Any], Any], pause: float) -> Iterator[tuple[Session, list[Any]]]:
    last: Any = None
    while True:
        with session_factory() as session:
            rows = session.execute(q_for(last)).all()
            if not rows:
                return
            yield session, rows
            last = rows[-1][0]
        if pause:
            time.sleep(pause)


def rotate_keys(*, batch_size: int = 500, pause: float = 0.0, encryption: bool = True, hashes: bool = True,
                progress: Callable[[str, int], None] | None = None) -> RotationResult:
    """Re-encrypt under the newest key and re-hash under the newest hash key, batch by batch
    (each batch its own transaction), while the service keeps running."""
    if batch_size < 1:
        raise SecurityError("--batch-size must be at least 1")
    result = RotationResult()
    if encryption:
        for col in encrypted_columns():
            _reencrypt_column(col, result, batch_size, pause, progress)
    if hashes:
        _rehash_numbers(result, batch_size, pause, progress)
    return result


def _reencrypt_column(col: EncryptedColumn, result: RotationResult, batch_size: int, pause: float,
                      progress: Callable[[str, int], None] | None) -> None:
    """Rewrite one column's values that are plaintext or under an older key."""
    ring = crypto.keyring()
    head = len(crypto.PREFIX) + crypto.KID_LEN + 1
    t, pk, c, _prefix = _values(col)
    current: Any = ring._bytes_header if col.kind == "bytes" else ring._text_header
    stale = and_(c.is_not(None), func.length(c) > 0, func.substr(c, 1, head) != literal(current, c.type))

    def q_for(last: Any) -> Any:
        q = select(pk, c).where(stale).order_by(pk).limit(batch_size)
        return q.where(pk > last) if last is not None else q

    stmt = update(t).where(pk == bindparam("row_id"), c == bindparam("old")).values({col.column: bindparam("new")})
    done = 0
    for session, rows in _batches(session_scope, q_for, pause):
        params = []
        for row_id, old in rows:
            if isinstance(old, memoryview):
                old = bytes(old)
            new = ring.reencrypt_bytes(old) if col.kind == "bytes" else ring.reencrypt_text(old)
            params.append({"row_id": row_id, "old": old, "new": new})
        # One executemany per batch; a row the application rewrote meanwhile matches no "old".
        done += _apply_batch(session, stmt, params, result)
        if progress:
            progress(col.name, done)
    if done:
        result.reencrypted[col.name] = done


def _rehash_numbers(result: RotationResult, batch_size: int, pause: float,
                    progress: Callable[[str, int], None] | None) -> None:
    """Re-hash callers' numbers under the newest hash key (a call whose number retention removed keeps its hash)."""
    hk = crypto.hash_keyring()
    current_hash = f"{hk.current}:"
    stale_hash = and_(Call.number_hash.is_not(None),
                      func.substr(Call.number_hash, 1, len(current_hash)) != current_hash)

    def hq(last: Any) -> Any:
        q = select(Call.id, Call.number_hash, Call.caller_number).where(stale_hash).order_by(Call.id).limit(batch_size)
        return q.where(Call.id > last) if last is not None else q

    calls: Any = Call.__table__  # a Table (typed as FromClause)
    hstmt = (update(calls).where(calls.c.id == bindparam("row_id"), calls.c.number_hash == bindparam("old"))
             .values(number_hash=bindparam("new")))
    for session, rows in _batches(session_scope, hq, pause):
        params = []
        for call_id, old, number in rows:
            if not number:
                result.hash_kept += 1
                continue
            params.append({"row_id": call_id, "old": old, "new": hk.hash(number)})
        if params:
            result.rehashed += _apply_batch(session, hstmt, params, result)
        if progress:
            progress("calls.number_hash", result.rehashed)


def _apply_batch(session: Session, stmt: Any, params: list[dict[str, Any]], result: RotationResult) -> int:
    """Run one batch of compare-and-set updates; returns the rows changed, counts the others as changed meanwhile."""
    hit = session.connection().execute(stmt, params).rowcount
    hit = len(params) if hit is None or hit < 0 else hit
    result.changed_meanwhile += len(params) - hit
    return int(hit)


# ---------------------------------------------------------------------- retention
@dataclass
class RetentionReport:
    now: datetime
    notes_cutoff: datetime | None
    numbers_cutoff: datetime | None
    dry_run: bool = False
    records: list[int] = field(default_factory=list)  # free text removed
    records_with_text: int = 0  # of those, how many had any free text
    revisions: int = 0  # revisions whose free text was removed
    calls: list[int] = field(default_factory=list)  # full number removed
    raw_events: int = 0
    dead_letters: int = 0
    held_records: int = 0  # skipped: legal hold
    follow_up_calls: int = 0  # skipped: follow-up still due
    domains: dict[str, int] = field(default_factory=dict)  # rows changed by each RetentionHook

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("now", "notes_cutoff", "numbers_cutoff"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


def _held_call_ids(session: Session, call_ids: list[int], today: date) -> tuple[set[int], set[int]]:
    """Of these calls: those whose record is under legal hold, and those with a follow-up still due."""
    if not call_ids:
        return set(), set()
    rows = session.execute(select(CallRecord.call_id, CallRecord.legal_hold, CallRecord.follow_up_needed,
                                  CallRecord.follow_up_date).where(CallRecord.call_id.in_(call_ids))).all()
    held = {cid for cid, hold, _f, _d in rows if hold and cid is not None}
    due = {cid for cid, hold, need, day in rows
           if not hold and need and day is not None and day >= today and cid is not None}
    return held, due


def number_variants(raw: str | None, normalized: str | None) -> list[str]:
    """The ways a caller's number may be written in a provider payload, longest first."""
    forms: set[str] = set()
    for value in (raw, normalized):
        if not value:
            continue
        value = value.strip()
        if len(re.sub(r"\D", "", value)) >= 5:
            forms.add(value)
    if normalized and normalized.startswith("+"):
        digits = normalized[1:]
        forms |= {digits, "%2B" + digits, "%2b" + digits, "00" + digits}
        if digits.startswith("84"):
            forms |= {"0" + digits[2:], "084" + digits[2:]}
    return sorted(forms, key=len, reverse=True)


_AMI_FIELD = re.compile(r"^((?:Dest)?(?:CallerID|ConnectedLine)\w*)[ \t]*:[^\r\n]*",
                        re.IGNORECASE | re.MULTILINE)
_FORM_FIELD = re.compile(r"(^|[&?\n])((?:From|Caller|ForwardedFrom)\w*)=[^&\r\n]*")


def redact_payload(payload: str, variants: Sequence[str] = ()) -> str:
    """A provider payload without the caller's identity: caller-ID fields of AMI frames and of
    Twilio requests are replaced, and so is the caller's number wherever else it appears."""
    if not payload:
        return payload
    out = _AMI_FIELD.sub(lambda m: f"{m.group(1)}: {PURGED}", payload)
    out = _FORM_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}={PURGED}", out)
    for form in variants:
        out = out.replace(form, PURGED)
    return out


def _purge_revisions(revisions: list[CallRecordRevision]) -> int:
    changed = 0
    for rev in revisions:
        changes = dict(rev.changes or {})
        touched = False
        for name in REVISION_TEXT_FIELDS:
            pair = changes.get(name)
            if isinstance(pair, list) and any(v not in (None, "") for v in pair):
                changes[name] = [PURGED_TEXT if v not in (None, "") else v for v in pair]
                touched = True
        if touched:
            rev.changes = changes
            changed += 1
    return changed


def run_retention(*, now: datetime | None = None, dry_run: bool = False, batch_size: int = 200,
                  notes_days: int | None = None, numbers_days: int | None = None) -> RetentionReport:
    """Apply the retention periods of the settings (or those given). Each batch commits alone."""
    from hotline.settings import get_settings

    settings = get_settings()
    now = now or utcnow()
    notes_days = settings.retention_notes_days if notes_days is None else notes_days
    numbers_days = settings.retention_numbers_days if numbers_days is None else numbers_days
    report = RetentionReport(
        now=now, dry_run=dry_run,
        notes_cutoff=now - timedelta(days=notes_days) if notes_days else None,
        numbers_cutoff=now - timedelta(days=numbers_days) if numbers_days else None,
    )
    today = now.date()
    if report.notes_cutoff is not None:
        _retain_notes(report, report.notes_cutoff, dry_run, batch_size)
    if report.numbers_cutoff is not None:
        _retain_numbers(report, report.numbers_cutoff, today, dry_run, batch_size)
    for hook in retention_steps():
        report.domains[hook.name] = int(hook.func(now=now, notes_cutoff=report.notes_cutoff,
                                                  numbers_cutoff=report.numbers_cutoff, dry_run=dry_run) or 0)
    if not dry_run:
        with session_scope() as session:
            audit.record(session, actor=None, action="retention.run", object_type="retention", object_id=None,
                         detail={"records": len(report.records), "revisions": report.revisions,
                                 "calls": len(report.calls), "raw_events": report.raw_events,
                                 "dead_letters": report.dead_letters, "held_records": report.held_records,
                                 "follow_up_calls": report.follow_up_calls, "domains": report.domains})
    return report


def _retain_notes(report: RetentionReport, cutoff: datetime, dry_run: bool, batch_size: int) -> None:
    with session_scope() as session:
        report.held_records = session.scalar(select(func.count()).select_from(CallRecord).where(
            CallRecord.created_at < cutoff, CallRecord.legal_hold.is_(True), CallRecord.purged_at.is_(None))) or 0
    due = and_(CallRecord.created_at < cutoff, CallRecord.legal_hold.is_(False), CallRecord.purged_at.is_(None))
    last = 0
    while True:
        with session_scope() as session:
            records = list(session.scalars(select(CallRecord).where(due, CallRecord.id > last)
                                           .order_by(CallRecord.id).limit(batch_size)))
            if not records:
                return
            last = records[-1].id
            revisions: dict[int, list[CallRecordRevision]] = {}
            for rev in session.scalars(select(CallRecordRevision).where(
                    CallRecordRevision.record_id.in_([r.id for r in records]))):
                revisions.setdefault(rev.record_id, []).append(rev)
            for record in records:
                scope = dict(record.consent_referral_scope or {})
                has_text = bool(record.notes or record.callback_safe_time
                                or any(scope.get(k) for k in SCOPE_TEXT_KEYS))
                report.records.append(record.id)
                report.records_with_text += has_text
                if dry_run:
                    report.revisions += sum(
                        1 for rev in revisions.get(record.id, [])
                        if any(isinstance((rev.changes or {}).get(n), list)
                               and any(v not in (None, "") for v in rev.changes[n]) for n in REVISION_TEXT_FIELDS))
                    continue
                record.notes = ""
                record.callback_safe_time = None
                record.consent_referral_scope = {k: v for k, v in scope.items() if k not in SCOPE_TEXT_KEYS}
                record.purged_at = report.now
                report.revisions += _purge_revisions(revisions.get(record.id, []))
            if dry_run:
                session.rollback()


def _retain_numbers(report: RetentionReport, cutoff: datetime, today: date, dry_run: bool, batch_size: int) -> None:
    # Raw events and dead letters first, while the calls' numbers are still known.
    last = 0
    while True:
        with session_scope() as session:
            events = list(session.scalars(
                select(RawEvent).where(RawEvent.received_at < cutoff, RawEvent.purged_at.is_(None), RawEvent.id > last)
                .order_by(RawEvent.id).limit(batch_size)))
            if not events:
                break
            last = events[-1].id
            _redact_events(session, events, report, today, dry_run)
            if dry_run:
                session.rollback()
    _redact_orphan_letters(report, cutoff, dry_run)
    _remove_call_numbers(report, cutoff, today, dry_run, batch_size)


def _redact_events(session: Session, events: list[RawEvent], report: RetentionReport, today: date,
                   dry_run: bool) -> None:
    """One batch of raw events (and their dead letters): callers' numbers removed from the payloads,
    except for calls under legal hold or with a follow-up still due."""
    keys = {e.provider_key for e in events if e.provider_key}
    owner: dict[tuple[str, str], int] = {}
    if keys:
        for provider, key, call_id in session.execute(
                select(CallKey.provider, CallKey.key, CallKey.call_id).where(CallKey.key.in_(keys))):
            owner[(provider, key)] = call_id
    held, due = _held_call_ids(session, sorted(set(owner.values())), today)
    numbers = {cid: (raw, num) for cid, raw, num in session.execute(
        select(Call.id, Call.caller_raw, Call.caller_number).where(Call.id.in_(set(owner.values()))))}
    letters: dict[int, list[DeadLetter]] = {}
    for letter in session.scalars(select(DeadLetter).where(
            DeadLetter.raw_event_id.in_([e.id for e in events]), DeadLetter.purged_at.is_(None))):
        letters.setdefault(letter.raw_event_id or 0, []).append(letter)
    for event in events:
        event_call = owner.get((event.provider, event.provider_key)) if event.provider_key else None
        if event_call in held or event_call in due:
            continue
        report.raw_events += 1
        dead = letters.get(event.id, [])
        report.dead_letters += len(dead)
        if dry_run:
            continue
        variants = number_variants(*numbers.get(event_call or 0, (None, None)))
        event.payload = redact_payload(event.payload, variants)
        event.payload_bytes = None
        event.purged_at = report.now
        for letter in dead:
            letter.payload = redact_payload(letter.payload, variants)
            letter.purged_at = report.now


def _redact_orphan_letters(report: RetentionReport, cutoff: datetime, dry_run: bool) -> None:
    """Dead letters without a raw event (kept whole when even storing failed)."""
    with session_scope() as session:
        orphans = list(session.scalars(select(DeadLetter).where(
            DeadLetter.raw_event_id.is_(None), DeadLetter.created_at < cutoff, DeadLetter.purged_at.is_(None))))
        report.dead_letters += len(orphans)
        if not dry_run:
            for letter in orphans:
                letter.payload = redact_payload(letter.payload)
                letter.purged_at = report.now
        else:
            session.rollback()


def _remove_call_numbers(report: RetentionReport, cutoff: datetime, today: date, dry_run: bool,
                         batch_size: int) -> None:
    """The calls' full and raw numbers (the masked number and the keyed hash stay)."""
    last = 0
    while True:
        with session_scope() as session:
            calls = list(session.scalars(select(Call).where(
                Call.received_at < cutoff, or_(Call.caller_raw.is_not(None), Call.caller_number.is_not(None)),
                Call.id > last).order_by(Call.id).limit(batch_size)))
            if not calls:
                return
            last = calls[-1].id
            held, due = _held_call_ids(session, [c.id for c in calls], today)
            report.follow_up_calls += len(due)
            for call in calls:
                if call.id in held or call.id in due:
                    continue
                report.calls.append(call.id)
                if not dry_run:
                    call.caller_number = None
                    call.caller_raw = None
            if dry_run:
                session.rollback()


# ---------------------------------------------------------------------- legal hold
def _record(session: Session, record_id: int) -> CallRecord:
    record = session.get(CallRecord, record_id)
    if record is None:
        raise SecurityError(f"there is no call record {record_id}; check the number on the record's page")
    return record


def set_legal_hold(session: Session, *, record_id: int, reason: str, actor: Any, request: Any = None) -> CallRecord:
    """Keep a record's free text and its call's full number past retention (audited)."""
    reason = (reason or "").replace("\x00", "").strip()
    if not reason:
        raise SecurityError("a legal hold needs a reason (for example the court or police case it serves)")
    if len(reason) > HOLD_REASON_MAX:
        raise SecurityError(f"the reason is {len(reason)} characters long; at most {HOLD_REASON_MAX}")
    record = _record(session, record_id)
    record.legal_hold = True
    record.legal_hold_reason = reason
    audit.record(session, actor=actor, action="record.legal_hold", object_type="call_record", object_id=record.id,
                 request=request, detail={"reason": reason, "already_purged": record.purged_at is not None})
    return record


def release_legal_hold(session: Session, *, record_id: int, actor: Any, request: Any = None) -> CallRecord:
    """End a legal hold: the record falls under the retention periods again (audited)."""
    record = _record(session, record_id)
    if not record.legal_hold:
        raise SecurityError(f"call record {record_id} is not under legal hold")
    previous = record.legal_hold_reason
    record.legal_hold = False
    record.legal_hold_reason = None
    audit.record(session, actor=actor, action="record.legal_hold_released", object_type="call_record",
                 object_id=record.id, request=request, detail={"reason": previous})
    return record


def legal_holds(session: Session) -> list[CallRecord]:
    return list(session.scalars(select(CallRecord).where(CallRecord.legal_hold.is_(True)).order_by(CallRecord.id)))


__all__ = ["EncryptedColumn", "KeyStatus", "RetentionHook", "RetentionReport", "RotationResult",
           "SecurityError", "encrypted_columns", "key_status", "legal_holds", "number_variants", "redact_payload",
           "release_legal_hold", "retention_steps", "rotate_keys", "run_retention", "set_legal_hold"]
