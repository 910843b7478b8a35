"""Real local peers on 127.0.0.1 for referral tests and the benchmark: a webhook receiver that
verifies signatures, an SMTP server (aiosmtpd) and a stand-in for Twilio's REST API."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from referral import signing
from tests.helpers import free_port, wait_for  # noqa: F401  (re-exported for the referral tests)


class Receiver:
    """A partner's webhook endpoint: checks ``X-Hotline-Signature`` over timestamp + body and keeps
    every request (``requests``) and every distinct delivery id it accepted (``accepted``).

    ``fail_next`` answers that many requests with 503; ``stop()`` closes the port (down), ``start()``
    opens it again on the same port (back)."""

    def __init__(self, secret: str, port: int | None = None):
        self.secret = secret
        self.port = port or free_port()
        self.requests: list[dict[str, Any]] = []
        self.accepted: dict[str, int] = {}  # delivery id -> how many times seen
        self.bad_signatures = 0
        self.fail_next = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ts = self.headers.get("X-Hotline-Timestamp", "")
                sig = self.headers.get("X-Hotline-Signature", "")
                delivery = self.headers.get("X-Hotline-Delivery", "")
                try:
                    signing.verify(receiver.secret, ts, body, sig)
                    ok = True
                except signing.BadSignature:
                    ok = False
                with receiver.lock:
                    receiver.requests.append({"delivery": delivery, "body": body, "ok": ok, "at": time.time()})
                    if not ok:
                        receiver.bad_signatures += 1
                        status = 401
                    elif receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        status = 503
                    else:
                        receiver.accepted[delivery] = receiver.accepted.get(delivery, 0) + 1
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests if r["ok"]]


class SMTPSink:
    """aiosmtpd on 127.0.0.1 keeping every message it accepted."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        # aiosmtpd logs each command at INFO from its own thread, which outlives a test's captured
        # stderr ("I/O operation on closed file" noise): only its warnings matter here.
        logging.getLogger("mail.log").setLevel(logging.WARNING)

        self.messages: list[Any] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                import email
                from email import policy

                sink.messages.append({"to": envelope.rcpt_tos, "from": envelope.mail_from,
                                      "message": email.message_from_bytes(envelope.content, policy=policy.default)})
                return "250 OK"

        self.port = free_port()
        self._make = lambda: Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller = None
        self.running = False

    def start(self) -> SMTPSink:
        """Start (again, on the same port: a stopped aiosmtpd controller cannot be restarted)."""
        self.controller = self._make()
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running and self.controller is not None:
            self.controller.stop()
            self.running = False


class TwilioStandIn:
    """Answers ``POST /2010-04-01/Accounts/{sid}/Messages.json`` like Twilio's API does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[dict[str, Any]] = []
        self.auth: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                sink.auth.append(base64.b64decode(self.headers.get("Authorization", "Basic ")[6:]).decode())
                parts = self.path.split("/")
                if len(parts) < 5 or not self.path.endswith("/Messages.json"):
                    self.send_response(404)
                    self.end_headers()
                    return
                sid = f"SM{len(sink.messages):032d}"
                sink.messages.append({"path": self.path, **form})
                out = json.dumps({"sid": sid, "account_sid": parts[3], "to": form.get("To"), "from": form.get("From"),
                                  "body": form.get("Body"), "status": "queued", "num_segments": "1",
                                  "uri": f"/2010-04-01/Accounts/{parts[3]}/Messages/{sid}.json"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TwilioStandIn:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
