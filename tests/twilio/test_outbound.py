"""Callbacks on Twilio: ``hotline.pbx.place_call`` → Twilio's REST API (a real local HTTP server standing
in for api.twilio.com, reached through the twilio client), the TwiML Twilio then asks for, and the
signed status / dial callbacks that record the call as that callback."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from hotline import domains
from hotline.calls.models import Call
from hotline.centres.service import add_line, ensure_default_centre, map_agent
from hotline.db import session_scope
from hotline.pbx import service as pbx
from hotline.pbx import twilio as pbx_twilio
from hotline.pbx.models import PbxCommand
from hotline.settings import get_settings, reset_settings
from tests.helpers import create_user, wait_for
from tests.twilio.conftest import ACCOUNT_SID, LINE

CALL_SID = "CA" + "7" * 32
DIALED_SID = "CA" + "8" * 32


class TwilioApi:
    """``POST /2010-04-01/Accounts/{sid}/Calls.json`` as Twilio answers it, or as it fails (``mode``)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.mode = "ok"
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                auth = base64.b64decode(self.headers.get("Authorization", "Basic ")[6:]).decode()
                api.requests.append({"path": self.path, "auth": auth, "form": parse_qs(body)})
                if api.mode == "slow":
                    time.sleep(3)
                if api.mode == "refused":
                    status, out = 400, {"code": 21211, "message": "The 'To' number is not a valid phone number.",
                                        "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}
                elif api.mode == "down":
                    status, out = 503, {"code": 20500, "message": "Internal Server Error", "status": 503}
                else:
                    status, out = 201, {"sid": CALL_SID, "account_sid": ACCOUNT_SID, "status": "queued",
                                        "to": "client:tvv1", "from": LINE,
                                        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"}
                data = json.dumps(out).encode()
                with contextlib.suppress(OSError):  # the client gave up (the timeout case)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class Who:
    id: int
    username: str
    role: str
    centre_id: int | None


@pytest.fixture
def api(env, monkeypatch):
    server = TwilioApi()
    monkeypatch.setenv("HOTLINE_TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("HOTLINE_TWILIO_API_BASE_URL", server.url)
    reset_settings()
    yield server
    server.stop()


@pytest.fixture
def heard(monkeypatch):
    got: list[tuple[str, str, str]] = []
    monkeypatch.setattr(domains, "pbx_result_hooks",
                        lambda: {"cb": lambda session, cmd: got.append((cmd.ref, cmd.status, cmd.reason))})
    return got


def counsellor() -> Who:
    uid = create_user("tvv1", "Outbound-Pass-2026!", "counsellor")
    s = get_settings()
    with session_scope() as db:
        centre = ensure_default_centre(db, code=s.default_centre_code, name=s.default_centre_name,
                                       timezone=s.default_timezone)
        add_line(db, centre=centre, provider="twilio", kind="number", identifier=LINE)
        map_agent(db, centre=centre, provider="twilio", identity="client:tvv1", user_id=uid)
        return Who(uid, "tvv1", "counsellor", centre.id)


def place(who: Who, ref: str = "cb:41") -> int:
    with session_scope() as db:
        return pbx.place_call(db, actor=who, centre_id=who.centre_id or 0, number="0912 345 678", ref=ref).id


def ended(command_id: int) -> PbxCommand:
    def done() -> PbxCommand | None:
        with session_scope() as db:
            cmd = db.get(PbxCommand, command_id)
            db.expunge(cmd)
            return cmd if cmd.status in ("placed", "failed") else None
    return wait_for(done, timeout=20, what="the command's end")


def test_a_callback_through_the_rest_api_then_its_twiml_and_callbacks_record_it(client, post, api, heard):
    who = counsellor()
    command_id = place(who)
    cmd = ended(command_id)
    assert (cmd.status, cmd.reason, cmd.call_uid) == ("placed", "", CALL_SID)
    assert heard == [("cb:41", "placed", "")]
    [req] = api.requests
    assert req["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert req["auth"] == f"{ACCOUNT_SID}:{get_settings().twilio_auth_token}"
    form = {k: v if len(v) > 1 else v[0] for k, v in req["form"].items()}
    base = "https://hotline.example.org/webhooks/twilio/outbound"
    assert form["To"] == "client:tvv1"  # the counsellor's own phone first
    assert form["From"] == LINE  # the hotline number
    assert form["Url"] == f"{base}/{command_id}"
    assert form["StatusCallback"] == f"{base}/{command_id}/status?callback=cb%3A41"
    assert form["Timeout"] == "30"
    assert set(form["StatusCallbackEvent"]) == {"initiated", "ringing", "answered", "completed"}

    common = {"AccountSid": ACCOUNT_SID, "CallSid": CALL_SID, "From": LINE, "To": "client:tvv1",
              "Direction": "outbound-api", "ApiVersion": "2010-04-01"}
    # the counsellor answered: Twilio asks what to do, and dials the number, showing the hotline number
    r = post(f"/webhooks/twilio/outbound/{command_id}", {**common, "CallStatus": "in-progress"})
    assert r.status_code == 200, r.text
    assert "<Say" not in r.text  # nothing names the service
    assert f'callerId="{LINE}"' in r.text and "<Number>+84912345678</Number>" in r.text
    assert f'action="{base}/{command_id}/dial?callback=cb%3A41"' in r.text
    # unsigned: refused
    assert post(f"/webhooks/twilio/outbound/{command_id}", common, signature="").status_code == 403

    path = f"/webhooks/twilio/outbound/{command_id}/status?callback=cb%3A41"
    assert post(path, {**common, "CallStatus": "initiated"}).status_code == 200
    with session_scope() as db:
        call = db.scalar(select(Call).where(Call.provider_key == CALL_SID))
        assert call is not None and call.facts["callback"] == "cb:41"
        assert call.caller_masked == "0912 *** 678"  # the person called, not the hotline number
    r = post(f"/webhooks/twilio/outbound/{command_id}/dial?callback=cb%3A41",
             {**common, "DialCallStatus": "completed", "DialCallSid": DIALED_SID, "DialCallDuration": "42"})
    assert r.status_code == 200, r.text
    assert post(path, {**common, "CallStatus": "completed", "CallDuration": "50"}).status_code == 200
    with session_scope() as db:
        call = db.scalar(select(Call).where(Call.provider_key == CALL_SID))
        assert (call.status, call.talk_seconds, call.counsellor_id) == ("completed", 42, who.id)
        assert call.facts["callback"] == "cb:41"
        assert db.get(PbxCommand, command_id).dial_number is None  # the call is over: number forgotten
    # asked again afterwards, the TwiML dials nobody
    r = post(f"/webhooks/twilio/outbound/{command_id}", {**common, "CallStatus": "in-progress"})
    assert "<Number>" not in r.text and "<Hangup" in r.text


def test_the_person_not_answering_ends_the_callback_failed(client, post, api, heard):
    who = counsellor()
    command_id = place(who)
    assert ended(command_id).status == "placed"
    common = {"AccountSid": ACCOUNT_SID, "CallSid": CALL_SID, "From": LINE, "To": "client:tvv1"}
    post(f"/webhooks/twilio/outbound/{command_id}/status?callback=cb%3A41", {**common, "CallStatus": "ringing"})
    post(f"/webhooks/twilio/outbound/{command_id}/dial?callback=cb%3A41", {**common, "DialCallStatus": "no-answer"})
    with session_scope() as db:
        call = db.scalar(select(Call).where(Call.provider_key == CALL_SID))
        assert call.status == "failed" and call.facts["callback"] == "cb:41"


@pytest.mark.parametrize(("mode", "reason"), [("refused", pbx_twilio.API_REFUSED), ("down", pbx_twilio.API_FAILED),
                                              ("slow", pbx_twilio.API_UNREACHABLE)])
def test_a_twilio_api_error_ends_the_command_failed_with_the_reason(client, api, heard, monkeypatch, mode, reason):
    monkeypatch.setattr(pbx_twilio, "API_TIMEOUT_SECONDS", 1)
    api.mode = mode
    who = counsellor()
    cmd = ended(place(who))
    assert (cmd.status, cmd.reason) == ("failed", reason)
    assert cmd.dial_number is None
    assert heard == [("cb:41", "failed", reason)]
    assert len(api.requests) == 1  # sent once; a failed call goes back to the worklist, not retried here


def test_without_twilio_credentials_the_command_fails_with_the_reason(client, heard, monkeypatch):
    monkeypatch.setenv("HOTLINE_TWILIO_ACCOUNT_SID", "")
    reset_settings()
    who = counsellor()
    cmd = ended(place(who))
    assert (cmd.status, cmd.reason) == ("failed", pbx_twilio.NOT_CONFIGURED)
