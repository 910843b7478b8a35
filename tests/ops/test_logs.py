"""JSON logs carry no personal data: calls ingested through Twilio (valid, forged and malformed
requests) and Asterisk, with hotline's own loggers at DEBUG, never log the caller's number."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

from hotline.ingest.providers.asterisk.listener import AmiListener
from hotline.ingest.providers.asterisk.simulator import AmiServer, synthetic_call
from hotline.logging import configure_logging
from tests.ops.conftest import wait_for
from tests.twilio.conftest import base_params, sign

TWILIO_CALLER = "+84903111222"
AMI_CALLER = "0977333444"


def numbers() -> set[str]:
    from sqlalchemy import select

    from hotline.calls.models import Call
    from hotline.db import session_scope

    with session_scope() as db:
        return set(db.scalars(select(Call.caller_number)))


def test_ingested_calls_never_put_a_full_number_in_the_logs(client, capsys):
    configure_logging("INFO", "json")
    for name in ("hotline", "webhooks"):
        logging.getLogger(name).setLevel("DEBUG")
    try:
        path = "/webhooks/twilio/voice"
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        good = base_params(From=TWILIO_CALLER, Caller=TWILIO_CALLER)
        assert client.post(path, content=urlencode(good),
                           headers={**hdrs, "X-Twilio-Signature": sign(path, good)}).status_code == 200
        forged = base_params(From=TWILIO_CALLER, Caller=TWILIO_CALLER, CallSid="CA" + "7" * 32)
        assert client.post(path, content=urlencode(forged), headers={**hdrs, "X-Twilio-Signature": "x"}).status_code == 403
        broken = {"From": TWILIO_CALLER, "Caller": TWILIO_CALLER}  # no CallSid: refused as malformed
        assert client.post(path, content=urlencode(broken),
                           headers={**hdrs, "X-Twilio-Signature": sign(path, broken)}).status_code == 400
        status = base_params(From=TWILIO_CALLER, CallStatus="completed", CallDuration="42")
        spath = "/webhooks/twilio/status"
        assert client.post(spath, content=urlencode(status),
                           headers={**hdrs, "X-Twilio-Signature": sign(spath, status)}).status_code == 200

        with AmiServer(username="u", secret="s") as server:
            listener = AmiListener("127.0.0.1", server.port, "u", "s", source="pbx-test")
            listener.start()
            try:
                assert server.wait_for_login(1)
                call = synthetic_call(caller=AMI_CALLER, queue="hotline")
                server.push(call.stream())
                wait_for(lambda: "+84977333444" in numbers(), 20, "the Asterisk call")
            finally:
                listener.stop()
        assert {"+84903111222", "+84977333444"} <= numbers()  # both calls really were ingested
    finally:
        configure_logging("INFO", "console")
    err = capsys.readouterr().err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    events = {r["event"] for r in records}
    assert "twilio.signature_rejected" in events and "ami.connected" in events  # the logs were captured
    for number in (TWILIO_CALLER, TWILIO_CALLER[3:], "0" + TWILIO_CALLER[3:], AMI_CALLER, AMI_CALLER[1:]):
        assert number not in err, f"the log contains {number}"


def test_database_errors_are_logged_without_the_values_they_quote(env, capsys):
    """A real unique violation quotes the row's values (SQLAlchemy's [parameters: …] and, on
    PostgreSQL, Key (…)=(…)); the log keeps the error and drops the values."""
    from datetime import datetime, timezone

    from sqlalchemy.exc import IntegrityError

    from hotline.calls.models import RawEvent
    from hotline.db import session_scope

    def row() -> RawEvent:
        return RawEvent(provider="twilio", dedupe_key="dup-0912345678", event_type="t",
                        received_at=datetime.now(timezone.utc), payload="From=+84912345678")

    with session_scope() as db:
        db.add(row())
    for fmt in ("json", "console"):
        configure_logging("INFO", fmt)
        try:
            with session_scope() as db:
                db.add(row())
        except IntegrityError as exc:
            assert "0912345678" in str(exc)  # the error itself does quote it
            logging.getLogger("hotline.test").exception("ingest.apply_failed", extra={"reason": str(exc)})
    configure_logging("INFO", "console")
    err = capsys.readouterr().err
    assert err.count("ingest.apply_failed") == 2 and "IntegrityError" in err and "[parameters: hidden]" in err
    assert "0912345678" not in err and "912345678" not in err
