"""The words the live screen's scripts get from views by key (the wallboard's labels).

``TEXT`` maps a short key to an English message id (marked with ``N_`` for extraction); the
Vietnamese lives in the Babel catalogue like every other string.  ``text(lang)`` returns a lookup
that translates (``t("saved")``) for views that hand labels to JavaScript; templates call ``_()``.
"""

from __future__ import annotations

from collections.abc import Callable

from hotline.i18n import N_, translator

TEXT: dict[str, str] = {
    "available": N_("Available"),
    "busy": N_("Busy"),
    "wrap_up": N_("Wrap-up"),
    "away": N_("Away"),
    "connection_lost": N_("Connection lost, reconnecting…"),
    "connected": N_("Connected"),
    "nobody_waiting": N_("Nobody is waiting."),
    "no_calls_in_progress": N_("No calls in progress."),
    "no_counsellors": N_("No counsellors yet."),
    "overflow_in": N_("overflow from another centre"),
    "overflow_out": N_("overflowed to another centre"),
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
