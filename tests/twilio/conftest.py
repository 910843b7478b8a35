"""Signed Twilio requests for the webhook tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from hotline.settings import get_settings

CALLER = "+84912345678"
LINE = "+842873001234"  # a Twilio number of the test centre
CALL_SID = "CA" + "1" * 32
AGENT_CALL_SID = "CA" + "2" * 32
ACCOUNT_SID = "AC" + "0" * 32


def sign(path: str, params: dict[str, str], token: str | None = None) -> str:
    settings = get_settings()
    url = settings.public_base_url.rstrip("/") + path
    return RequestValidator(token or settings.twilio_auth_token).compute_signature(url, params)


def base_params(**extra: str) -> dict[str, str]:
    params = {"AccountSid": ACCOUNT_SID, "CallSid": CALL_SID, "From": CALLER, "Caller": CALLER, "To": LINE,
              "Called": LINE, "Direction": "inbound", "ApiVersion": "2010-04-01", "FromCountry": "VN",
              "CallerName": ""}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


@pytest.fixture
def post(client: Any) -> Callable[..., Any]:
    """``post(path, params)``: a request signed as Twilio signs it (path may carry a query)."""
    # FastAPI resolves routers on the first request; do it before a test freezes time (freezegun's
    # FakeDate would otherwise reach other domains' route signatures).
    assert client.get("/webhooks/twilio/voice").status_code == 405

    def _post(path: str, params: dict[str, str], *, signature: str | None = None, headers: dict | None = None):
        sig = sign(path, params) if signature is None else signature
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **({"X-Twilio-Signature": sig} if sig else {}),
                **(headers or {})}
        return client.post(path, content=urlencode(params), headers=hdrs)

    return _post
