"""Consent first: what the caller agreed to share, with whom, and supervisor overrides."""

from __future__ import annotations

from typing import Any

from hotline.calls.models import CallRecord
from hotline.i18n import Text
from hotline.text import fold
from referral.base import ANY_WORDS, EXTRAS, OVERRIDE_ROLES, REASON_MIN, ReferralError, ReferralRequest


def is_child(record: CallRecord) -> bool:
    return record.caller_age_group == "under_16"


def consent_state(record: CallRecord) -> dict[str, Any]:
    """What was recorded: whether a referral may go ahead without an override, and why not."""
    scope = dict(record.consent_referral_scope or {})
    child = is_child(record)
    given = bool(record.consent_referral) and (not child or bool(record.child_consent and record.representative_consent))
    missing: Text | str
    if given:
        missing = ""
    elif not record.consent_referral:
        missing = Text("The caller's consent to referral is not recorded.")
    else:
        missing = Text("The caller is under 16: both the child and the legal representative must consent.")
    return {"given": given, "missing": missing, "to": scope.get("to") or "", "data": scope.get("data") or "",
            "child": child, "imminent": record.risk == "imminent",
            "override_possible": child or record.risk == "imminent"}


def _words(text: str) -> str:
    return " " + " ".join(fold(text or "").lower().replace(",", " ").replace(";", " ").split()) + " "


def _within_to(scope_to: str, target: dict[str, Any]) -> bool:
    """Whether a service fits the recorded "refer to": its name, organisation, or type named."""
    if not scope_to.strip():
        return True
    hay = _words(scope_to)
    if any(f" {w} " in hay for w in ANY_WORDS):
        return True
    from directory.service import service_types

    t = service_types().get(target.get("service_type") or "")
    names = [target.get("name") or "", target.get("organization") or "", target.get("service_type") or ""]
    if t is not None:
        names += [getattr(t, "vi", ""), getattr(t, "en", ""), *list(getattr(t, "words", ()) or ())]
    for n in names:
        w = _words(n).strip()
        if w and f" {w} " in hay:
            return True
    return False


def _extra_allowed(scope_data: str, extra: str) -> bool:
    hay = _words(scope_data)
    if any(f" {w} " in hay for w in ANY_WORDS):
        return True
    return any(f" {w} " in hay for w in EXTRAS[extra][2])


def check_consent(record: CallRecord, *, actor: Any, req: ReferralRequest, targets: list[dict[str, Any]]) -> bool:
    """Raise ``ReferralError`` unless the referral is covered by the recorded consent (and its scope),
    or a supervisor overrides for a child or imminent danger with a written reason.
    Returns True when the referral goes ahead on an override."""
    c = consent_state(record)
    if not c["given"]:
        if not c["override_possible"]:
            raise ReferralError({"consent": Text("%(missing)s Ask the caller and record the consent on the call "
                                                 "record first.", missing=c["missing"])})
        if actor.role not in OVERRIDE_ROLES:
            raise ReferralError({"consent": Text("%(missing)s For a child or imminent danger a supervisor may refer "
                                                 "with a written reason.", missing=c["missing"])})
        if len(req.override_reason) < REASON_MIN:
            raise ReferralError({"override_reason": Text("Write why you refer without consent (at least %(min)d "
                                                         "characters).", min=REASON_MIN)})
        return True
    errors: dict[str, Text] = {}
    outside = [t["name"] for t in targets if not _within_to(c["to"], t)]
    if outside:
        errors["service_ids"] = Text("Outside what the caller agreed to (\"%(scope)s\"): %(services)s. Change the "
                                     "consent on the record if the caller agrees, or choose another service.",
                                     scope=c["to"], services=", ".join(outside))
    refused = [x for x in req.extras if not _extra_allowed(c["data"], x)]
    if refused:
        errors["extras"] = Text("The caller did not agree to share: %(items)s (recorded: \"%(scope)s\"). Untick "
                                "them, or record the caller's wider consent first.",
                                items=[{"vi": EXTRAS[x][0], "en": EXTRAS[x][1]} for x in refused], scope=c["data"] or "-")
    if errors:
        raise ReferralError(errors)
    return False
