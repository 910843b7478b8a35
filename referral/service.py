"""Referral hand-offs: consent first, minimal data, delivered reliably, acknowledged, escalated.

The façade of the referral package: views, jobs, the CLI and other domains import this module; the
work is done by one module per concern beside it:

============  ==============================================================================
base          limits, roles, errors, the parsed request, events (shared by the others)
reads         what other domains read: ``states_for_records``, ``counts_by_state``
consent       what the caller agreed to share and with whom; supervisor overrides
content       the minimal content, its targets in the directory, preview and create
delivery      what partners receive; claim / sent / failed / retry of each delivery try
staff         staff reading and cancelling (who may see which)
answers       the partner's answer and the first opening
links         single-use links for partners without accounts
partners      partner users and what they see
acks          signed webhook acknowledgements and their nonces
escalation    escalating unanswered emergencies, expiring old referrals
retention     removing free text past its period (declared in ``hotline.domains``)
============  ==============================================================================

Plain keyword-only functions over a session.  Other domains read referrals through
``states_for_records`` and ``counts_by_state`` only.
"""

from __future__ import annotations

from referral.acks import (
    acknowledge_signed,
    purge_nonces,
)
from referral.answers import (
    decide,
    mark_opened,
)
from referral.base import (
    ANY_WORDS,
    ASK_MAX,
    CREATE_ROLES,
    EXTRAS,
    MAX_SERVICES,
    NAME_MAX,
    OVERRIDE_ROLES,
    REASON_MIN,
    NotAllowed,
    NotFound,
    ReferralError,
    ReferralRequest,
    _base,
    _event,
    _expiry,
    default_urgency,
    digest_text,
    max_attempts,
    parse_request,
    retry_intervals,
)
from referral.consent import (
    _extra_allowed,
    _within_to,
    _words,
    check_consent,
    consent_state,
    is_child,
)
from referral.content import (
    _label,
    _record_for,
    _target,
    _targets,
    build_content,
    create,
    new_code,
    preview,
)
from referral.delivery import (
    _publish_failed,
    claim,
    link_for,
    link_url,
    mark_failed,
    mark_sent,
    partner_payload,
    payload_for,
    retry_delivery,
    staff_payload,
)
from referral.escalation import (
    escalate_due,
    expire_due,
    suggest_next,
)
from referral.links import (
    LinkProblem,
    answer_by_link,
    open_link,
)
from referral.partners import (
    get_for_partner,
    link_partner,
    list_for_partner,
    partner_members,
    partner_org,
    unlink_partner,
)
from referral.reads import (
    STATE_LABELS,
    counts_by_state,
    state_labels,
    states_for_records,
)
from referral.retention import (
    PURGED_TEXT,
    _purge_content,
    retain,
)
from referral.staff import (
    _record_visible,
    _staff_can_view,
    cancel,
    for_record,
    get_for_staff,
    list_for_staff,
)

__all__ = [
    "acknowledge_signed",
    "answer_by_link",
    "ANY_WORDS",
    "ASK_MAX",
    "_base",
    "build_content",
    "cancel",
    "check_consent",
    "claim",
    "consent_state",
    "counts_by_state",
    "create",
    "CREATE_ROLES",
    "decide",
    "default_urgency",
    "digest_text",
    "escalate_due",
    "_event",
    "expire_due",
    "_expiry",
    "_extra_allowed",
    "EXTRAS",
    "for_record",
    "get_for_partner",
    "get_for_staff",
    "is_child",
    "_label",
    "link_for",
    "link_partner",
    "link_url",
    "LinkProblem",
    "list_for_partner",
    "list_for_staff",
    "mark_failed",
    "mark_opened",
    "mark_sent",
    "max_attempts",
    "MAX_SERVICES",
    "NAME_MAX",
    "new_code",
    "NotAllowed",
    "NotFound",
    "open_link",
    "OVERRIDE_ROLES",
    "parse_request",
    "partner_members",
    "partner_org",
    "partner_payload",
    "payload_for",
    "preview",
    "_publish_failed",
    "_purge_content",
    "purge_nonces",
    "PURGED_TEXT",
    "REASON_MIN",
    "_record_for",
    "_record_visible",
    "ReferralError",
    "ReferralRequest",
    "retain",
    "retry_delivery",
    "retry_intervals",
    "_staff_can_view",
    "staff_payload",
    "STATE_LABELS",
    "state_labels",
    "states_for_records",
    "suggest_next",
    "_target",
    "_targets",
    "unlink_partner",
    "_within_to",
    "_words",
]
