"""Referral jobs: one delivery try per job run (webhook, e-mail or SMS), and the periodic sweep.

Each delivery is an RQ job (``hotline.queue.enqueue``) with exponential backoff between tries
(``HOTLINE_REFERRAL_RETRY_SECONDS``).  Every try of one delivery carries the same delivery id
(the idempotency key), and a try is claimed atomically in the database first, so two workers
never send it twice; after the last try the delivery is dead-lettered with the reason and the
centre's supervisors are alerted.  The sweep (every 30 s) escalates unanswered emergency
referrals and expires old ones.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from sqlalchemy import select

from hotline.db import session_scope
from hotline.queue import Periodic, enqueue
from hotline.settings import get_settings
from referral import service, signing
from referral.models import Delivery

log = logging.getLogger(__name__)


SWEEP_SECONDS = 30
WEBHOOK_TIMEOUT = 10.0
USER_AGENT = "hotline-referral/1"
_emails = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates" / "referral" / "email"),
                             autoescape=jinja2.select_autoescape(["html"]))


class DeliveryFailed(RuntimeError):
    """A try failed; raised so that the queue tries again after its backoff."""


# ---------------------------------------------------------------------- queueing
def queue_delivery(delivery_id: str) -> None:
    enqueue(deliver, delivery_id, queue="high", job_id=f"referral-{delivery_id}",
            retry_intervals=service.retry_intervals())


def queue_for(referrals: list[Any]) -> None:
    """Queue the deliveries of freshly committed referrals."""
    for ref in referrals:
        if ref.delivery is not None:
            queue_delivery(ref.delivery.delivery_id)


# ---------------------------------------------------------------------- one try
def deliver(delivery_id: str) -> str:
    """Send one delivery once; returns what happened (sent, skipped, dead) or raises to be retried."""
    with session_scope() as db:
        claimed = service.claim(db, delivery_id=delivery_id)
        if claimed is None:
            return "skipped"  # already sent, dead, cancelled, or another worker holds this try
        if claimed["method"] == "webhook":
            from directory import service as directory

            try:
                claimed["secret"] = directory.referral_target(db, claimed["service_id"])["webhook_secret"]
            except LookupError:
                claimed["secret"] = ""
    try:
        provider_ref = SENDERS[claimed["method"]](target=claimed["target"], payload=claimed["payload"],
                                                  delivery_id=delivery_id, secret=claimed.get("secret", ""))
    except Exception as exc:  # noqa: BLE001 - any failure is a failed try, kept with its reason
        reason = _reason(exc)
        with session_scope() as db:
            d = db.get(Delivery, claimed["pk"])
            assert d is not None
            dead = service.mark_failed(db, delivery=d, reason=reason)
        log.warning("referral.delivery_failed", extra={"delivery": delivery_id, "attempt": claimed["attempts"],
                                                       "dead": dead, "reason": reason[:200]})
        if dead:
            return "dead"
        raise DeliveryFailed(reason) from None
    with session_scope() as db:
        service.mark_sent(db, claimed=claimed, provider_ref=provider_ref or "")
    return "sent"


def _reason(exc: Exception) -> str:
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:2000]


# ---------------------------------------------------------------------- webhook
def _check_url(url: str) -> None:
    # Names and notes never travel in clear text: https:// only, unless a development set-up says
    # otherwise explicitly (HOTLINE_REFERRAL_ALLOW_HTTP_WEBHOOKS, refused in production).
    parts = urlsplit(url)
    settings = get_settings()
    allow_http = settings.referral_allow_http_webhooks and not settings.is_production
    if parts.scheme != "https" and not (parts.scheme == "http" and allow_http):
        raise ValueError(f"webhook URL must be https:// (got {parts.scheme or 'nothing'}://)")


_http: Any = None


def http_client() -> Any:
    """One HTTP client per process, made when the module is imported: RQ forks a child per job,
    and building a client (its TLS context) in every child would cost more than the delivery."""
    global _http
    if _http is None:
        import httpx

        _http = httpx.Client(follow_redirects=False, headers={"User-Agent": USER_AGENT})
    return _http


def send_webhook(*, target: str, payload: dict[str, Any], delivery_id: str, secret: str = "") -> str:
    import httpx

    _check_url(target)
    if not secret:
        raise ValueError("the directory entry has no webhook secret: add one (at least 16 characters)")
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    ts = int(time.time())
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
               "X-Hotline-Delivery": delivery_id, "X-Hotline-Timestamp": str(ts),
               "X-Hotline-Signature": signing.sign(secret, ts, body)}
    try:
        resp = http_client().post(target, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except httpx.TimeoutException:
        raise ConnectionError(f"the partner's webhook did not answer within {WEBHOOK_TIMEOUT:.0f} s") from None
    except httpx.HTTPError as exc:
        raise ConnectionError(f"could not reach the partner's webhook ({exc.__class__.__name__}: {exc})") from None
    if not 200 <= resp.status_code < 300:
        raise ConnectionError(f"the partner's webhook answered HTTP {resp.status_code}: {resp.text[:200]}")
    return f"http {resp.status_code}"


# ---------------------------------------------------------------------- e-mail
def render_email(payload: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, plain text, HTML).  The subject carries the case code only, nothing sensitive."""
    from referral.content import place_label

    ctx = {"p": payload, "r": payload["referral"], "place": place_label(payload["referral"].get("extra"))}
    subject = f"Hotline: yêu cầu chuyển gửi {payload['referral']['code']} / referral {payload['referral']['code']}"
    return subject, _emails.get_template("referral.txt").render(ctx), _emails.get_template("referral.html").render(ctx)


def send_email(*, target: str, payload: dict[str, Any], delivery_id: str, secret: str = "") -> str:
    s = get_settings()
    if not s.smtp_host:
        raise RuntimeError("no SMTP server configured: set HOTLINE_SMTP_HOST (and port, user, password)")
    subject, plain, html = render_email(payload)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = s.smtp_from
    msg["To"] = target
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{delivery_id}@{(s.smtp_from.rpartition('@')[2] or 'hotline').strip('>')}>"
    msg["X-Hotline-Delivery"] = delivery_id
    msg.set_content(plain)
    msg.add_alternative(html, subtype="html")
    with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=15) as smtp:
        smtp.ehlo()
        if s.smtp_starttls and smtp.has_extn("starttls"):
            smtp.starttls()
            smtp.ehlo()
        if s.smtp_username:
            smtp.login(s.smtp_username, s.smtp_password)
        smtp.send_message(msg)
    return msg["Message-ID"]


# ---------------------------------------------------------------------- SMS through Twilio
def twilio_client() -> Any:
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    s = get_settings()
    if not (s.twilio_account_sid and s.twilio_auth_token and s.twilio_sms_from):
        raise RuntimeError("Twilio SMS is not configured: set HOTLINE_TWILIO_ACCOUNT_SID, "
                           "HOTLINE_TWILIO_AUTH_TOKEN and HOTLINE_TWILIO_SMS_FROM")
    base = s.twilio_api_base_url.rstrip("/")

    class _Http(TwilioHttpClient):
        """Twilio's own HTTP client, sent to a stand-in API when ``twilio_api_base_url`` is set."""

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if base:
                parts = urlsplit(url)
                url = base + parts.path + (f"?{parts.query}" if parts.query else "")
            return super().request(method, url, *args, **kwargs)

    return Client(s.twilio_account_sid, s.twilio_auth_token, http_client=_Http(timeout=15))


def sms_text(payload: dict[str, Any]) -> str:
    r = payload["referral"]
    urgent = {"emergency": "KHẨN CẤP ", "urgent": "gấp "}.get(r["urgency"], "")
    return f"Hotline: {urgent}chuyển gửi {r['code']} / referral. Xem và trả lời / open: {payload['respond_url']}"


def send_sms(*, target: str, payload: dict[str, Any], delivery_id: str, secret: str = "") -> str:
    from twilio.base.exceptions import TwilioException

    client = twilio_client()
    try:
        msg = client.messages.create(to=target, from_=get_settings().twilio_sms_from, body=sms_text(payload))
    except TwilioException as exc:
        raise ConnectionError(f"Twilio refused the SMS: {exc}") from None
    return str(msg.sid or "")


SENDERS = {"webhook": send_webhook, "email": send_email, "sms": send_sms}


# ---------------------------------------------------------------------- periodic work
def sweep() -> dict[str, int]:
    """Escalate unanswered emergency referrals, expire old ones, forget old acknowledgement nonces,
    and queue again any delivery left pending (e.g. queued while Redis was down) or left "sending" by a
    worker that died in the middle of a try."""
    from datetime import timedelta

    from hotline.db import utcnow

    with session_scope() as db:
        escalated = service.escalate_due(db)
        expired = service.expire_due(db)
        service.purge_nonces(db)
        stuck_before = utcnow() - timedelta(minutes=2)
        stuck = list(db.scalars(select(Delivery.delivery_id).where(
            Delivery.status == "pending", Delivery.attempts == 0,
            Delivery.created_at < stuck_before).limit(200)))
        # A try whose worker died mid-send (SIGKILL) stays "sending" and no queued job is left for it.
        from referral.delivery import CLAIM_STALE

        stuck += list(db.scalars(select(Delivery.delivery_id).where(
            Delivery.status == "sending", Delivery.claimed_at < utcnow() - CLAIM_STALE).limit(200)))
    for delivery_id in stuck:
        queue_delivery(delivery_id)
    return {"escalated": len(escalated), "expired": len(expired), "requeued": len(stuck)}


def _sweep() -> None:
    sweep()


PERIODIC = [Periodic("referral.sweep", SWEEP_SECONDS, _sweep)]
http_client()  # in the worker's parent, before it forks


def on_worker_start() -> None:
    """Catch up at once on anything due while no worker ran."""
    sweep()
