"""The words on the live screen and the record form that scripts and views need by key.

``TEXT`` maps a short key to an English message id (marked with ``N_`` for extraction); the
Vietnamese lives in the Babel catalogue like every other string.  ``text(lang)`` returns a lookup
that translates (``t("saved")``) for views that hand labels to JavaScript; templates call ``_()``.
"""

from __future__ import annotations

from collections.abc import Callable

from hotline.i18n import N_, translator

TEXT: dict[str, str] = {
    "records": N_("Call records"),
    "record": N_("Record"),
    "new_record": N_("New record (not through the phone system)"),
    "new_record_help": N_("For a walk-in, a call on a personal phone or a transfer from 111."),
    "create": N_("Create"),
    "save": N_("Save"),
    "complete": N_("Complete (Ctrl+Enter)"),
    "completed": N_("Completed"),
    "draft": N_("Draft"),
    "state": N_("State"),
    "version": N_("Version"),
    "saved": N_("Saved"),
    "saving": N_("Saving…"),
    "offline": N_("Offline: kept in this browser"),
    "session_ended": N_("Your session has ended. The draft is kept; please sign in again."),
    "sign_in_again": N_("Sign in again"),
    "conflict": N_("Someone else changed this record. Differences:"),
    "conflict_yours": N_("Yours"),
    "conflict_theirs": N_("Saved now"),
    "keep_mine": N_("Keep mine"),
    "take_theirs": N_("Use the saved one"),
    "errors": N_("Please correct the following:"),
    "non_counselling": N_("Close a non-counselling call"),
    "history": N_("Edit history"),
    "no_history": N_("No edits yet."),
    "field": N_("Field"),
    "before": N_("Before"),
    "after": N_("After"),
    "by": N_("By"),
    "when": N_("When"),
    "action": N_("Action"),
    "call": N_("Call"),
    "no_call": N_("Not through the phone system"),
    "yes": N_("Yes"),
    "no": N_("No"),
    "unknown": N_("Unknown"),
    "none": N_("—"),
    "section_call": N_("Call"),
    "section_caller": N_("Caller"),
    "section_consent": N_("Consent"),
    "section_issue": N_("Issue and response"),
    "section_notes": N_("Notes"),
    "issues": N_("Issues (several allowed, one primary)"),
    "primary": N_("Primary"),
    "directory": N_("Service directory"),
    "legal": N_("Legal reference"),
    "search": N_("Search"),
    "created": N_("Created"),
    "counsellor": N_("Counsellor"),
    "primary_issue": N_("Primary issue"),
    "open": N_("Open"),
    "all": N_("All"),
    "shortcuts": N_("Shortcuts: Ctrl+S save, Ctrl+Enter complete, Alt+D directory, Alt+L legal, Alt+N notes"),
    "no_records": N_("No records yet."),
    "child_note": N_("A child under 16: record both the child’s and the legal representative’s consent."),
    "live": N_("Live screen"),
    "wallboard": N_("Wallboard"),
    "presence": N_("Presence"),
    "available": N_("Available"),
    "busy": N_("Busy"),
    "away": N_("Away"),
    "incoming": N_("Incoming call"),
    "waiting_for_calls": N_("Waiting for calls…"),
    "line": N_("Line"),
    "caller": N_("Caller"),
    "caller_id_status": N_("Caller ID"),
    "waited": N_("Waited"),
    "status": N_("Status"),
    "reveal": N_("Reveal number"),
    "open_record": N_("Open the record (Alt+R)"),
    "caller_history": N_("Caller history"),
    "no_earlier_calls": N_("No earlier calls (or the number is withheld)."),
    "date": N_("Date"),
    "level": N_("Level"),
    "follow_up": N_("Follow-up"),
    "open_follow_up": N_("Open follow-up"),
    "connection_lost": N_("Connection lost, reconnecting…"),
    "connected": N_("Connected"),
    "calls_waiting": N_("Calls waiting"),
    "in_progress": N_("Calls in progress"),
    "today": N_("Today"),
    "received": N_("Received"),
    "answered": N_("Answered"),
    "abandoned": N_("Abandoned"),
    "missed": N_("Missed"),
    "records_completed": N_("Records completed"),
    "non_counselling_count": N_("Non-counselling"),
    "nobody_waiting": N_("Nobody is waiting."),
    "no_calls_in_progress": N_("No calls in progress."),
    "no_counsellors": N_("No counsellors yet."),
    "since": N_("Since"),
    "recent_calls": N_("Recent calls"),
}


PRESENCE_KEYS = {"available": "a", "busy": "b", "away": "w"}


def pop_labels(lang: str) -> dict[str, dict[str, str]]:
    """Caller-ID and call-status labels for the pop script (from the taxonomies)."""
    from hotline.taxonomy import get_taxonomies

    tax = get_taxonomies()
    return {"cid": {t.code: t.label(lang) for t in tax.terms("caller_id_status")},
            "status": {t.code: t.label(lang) for t in tax.terms("call_status")}}


def text(lang: str) -> Callable[[str], str]:
    gettext = translator(lang)

    def t(key: str) -> str:
        msgid = TEXT.get(key)
        return gettext(msgid) if msgid else key

    return t
