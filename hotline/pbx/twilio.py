"""Placing a callback through Twilio's REST API (``calls.create``).

Twilio first rings the counsellor's own phone (their Twilio identity: ``client:tvv1`` or their
number), from the hotline number; answered, it fetches the TwiML of
``/webhooks/twilio/outbound/{command id}`` (``webhooks.twilio.outbound``), which says nothing and
``<Dial callerId=hotline number>`` the number.  Status callbacks carry the ref (``?callback=cb:12``)
so the call is recorded as a callback.  Any API error (4xx, 5xx, timeout) ends the command
``failed`` with the reason; a sent request ends it ``placed`` (with the CallSid).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from hotline.db import session_scope
from hotline.i18n import N_
from hotline.pbx import service
from hotline.settings import get_settings

log = logging.getLogger(__name__)

NOT_CONFIGURED = N_("Twilio is not configured (account SID and auth token)")
API_REFUSED = N_("Twilio refused the call")
API_FAILED = N_("Twilio's API failed; try again later")
API_UNREACHABLE = N_("Twilio's API could not be reached")
API_TIMEOUT_SECONDS = 10


def client() -> Any:
    """Twilio's own client; sent to a stand-in API when ``twilio_api_base_url`` is set (tests)."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    s = get_settings()
    base = s.twilio_api_base_url.rstrip("/")

    class _Http(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints for it
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if base:
                parts = urlsplit(url)
                url = base + parts.path + (f"?{parts.query}" if parts.query else "")
            return super().request(method, url, *args, **kwargs)

    return Client(s.twilio_account_sid, s.twilio_auth_token, http_client=_Http(timeout=API_TIMEOUT_SECONDS))


def urls(command_id: int, ref: str) -> tuple[str, str]:
    """(TwiML URL, status callback URL) of a command."""
    base = get_settings().public_base_url.rstrip("/")
    return (f"{base}/webhooks/twilio/outbound/{command_id}",
            f"{base}/webhooks/twilio/outbound/{command_id}/status?{urlencode({'callback': ref})}")


def send(command_id: int) -> str:
    """Claim the command and ask Twilio for the call; returns its end status (or '' when not ours)."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    s = get_settings()
    with session_scope() as db:
        cmd = service.claim(db, command_id, by="twilio")
        if cmd is None:
            return ""
        device, caller_id, ref = cmd.device, cmd.caller_id, cmd.ref
    status, reason, sid, detail = "failed", "", "", ""
    if not (s.twilio_account_sid and s.twilio_auth_token):
        reason = NOT_CONFIGURED
    else:
        twiml, status_url = urls(command_id, ref)
        try:
            call = client().calls.create(to=device, from_=caller_id, url=twiml, method="POST",
                                         status_callback=status_url, status_callback_method="POST",
                                         status_callback_event=["initiated", "ringing", "answered", "completed"],
                                         timeout=s.pbx_ring_seconds)
            status, sid = "placed", str(call.sid or "")
        except TwilioRestException as exc:
            reason = API_FAILED if exc.status >= 500 else API_REFUSED
            detail = f"HTTP {exc.status}, code {exc.code}"
        except (TwilioException, OSError) as exc:  # requests' connection errors and timeouts are OSErrors
            reason, detail = API_UNREACHABLE, type(exc).__name__
    with session_scope() as db:
        service.finish(db, command_id, status=status, reason=reason, call_uid=sid)
    log.info("pbx.twilio", extra={"command": command_id, "status": status, "reason": reason,
                                     "detail": detail})
    return status


def send_pending() -> int:
    """Send any Twilio command still pending (its queued job was lost); the sweep calls it."""
    with session_scope() as db:
        ids = service.pending_ids(db, provider="twilio")
    return sum(1 for i in ids if send(i))
