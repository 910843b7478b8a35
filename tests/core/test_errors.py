"""One set of domain errors, one mapping to HTTP (hotline/errors.py): each 4xx says what is wrong in
the reader's language (an error page for a browser, JSON for scripts), and a bug answers 500 with
a request id and nothing else while the log keeps the traceback under that id."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from hotline import errors
from hotline.i18n import Text
from tests.helpers import create_user, login

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
HTML = {"accept": "text/html"}


@pytest.fixture
def app(env):
    from hotline.app import create_app

    app = create_app()

    @app.get("/test/raise/{kind}")
    def boom(kind: str) -> None:
        if kind == "missing":
            raise errors.NotFound(None, 42)
        if kind == "refused":
            raise errors.NotAllowed(Text("Your role may not see full numbers."))
        if kind == "invalid":
            raise errors.Invalid({"phone": Text("The comment is empty; write something.")})
        if kind == "conflict":
            raise errors.Conflict
        raise RuntimeError("caller 0912345678 said something private")

    return app


def test_domain_errors_map_to_their_status_with_a_message_in_the_readers_language(app) -> None:
    with TestClient(app) as client:
        r = client.get("/test/raise/missing")
        assert (r.status_code, r.json()) == (404, {"detail": "Không tìm thấy, hoặc bạn không được xem."})
        client.cookies.set("hotline_lang", "en")
        r = client.get("/test/raise/refused")
        assert (r.status_code, r.json()) == (403, {"detail": "Your role may not see full numbers."})
        client.cookies.clear()
        r = client.get("/test/raise/invalid")
        assert r.status_code == 422 and r.json()["errors"] == {"phone": r.json()["detail"]}
        assert "write something" not in r.json()["detail"]  # Vietnamese by default
        assert client.get("/test/raise/conflict").status_code == 409
        page = client.get("/test/raise/missing", headers=HTML)
        assert page.status_code == 404 and "text/html" in page.headers["content-type"]
        assert "Không tìm thấy, hoặc bạn không được xem." in page.text


def test_a_bug_is_a_500_with_a_request_id_that_leaks_nothing(app, caplog) -> None:
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        page = client.get("/test/raise/bug", headers={**HTML, "x-request-id": "abc123"})
        api = client.get("/test/raise/bug")
    assert page.status_code == 500 and "text/html" in page.headers["content-type"]
    assert "abc123" in page.text and page.headers["x-request-id"] == "abc123"
    assert "0912345678" not in page.text and "RuntimeError" not in page.text and "Traceback" not in page.text
    assert api.status_code == 500 and set(api.json()) == {"detail", "request_id"}
    assert "0912345678" not in api.text and api.json()["request_id"] in api.json()["detail"]
    logged = [r for r in caplog.records if r.getMessage() == "request.failed"]
    assert [getattr(r, "request_id", None) for r in logged][:2] == ["abc123", api.json()["request_id"]]
    assert logged[0].exc_info is not None  # the traceback stays in the log


def test_a_missing_record_and_a_foreign_referral_say_what_is_wrong(client) -> None:
    create_user("tuvanvien9", "correct horse battery 9", "counsellor")
    login(client, "tuvanvien9", "correct horse battery 9")
    r = client.get("/records/999999", headers=HTML)
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    r = client.get("/records/999999", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.json()["detail"]
    r = client.get("/referrals/999999", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.json()["detail"]


def test_every_domain_error_is_the_one_set(env) -> None:
    from daily_log import service as daily_log
    from hotline.live import service as live
    from hotline.records import service as records
    from referral import service as referral

    for cls in (records.NotFound, referral.NotFound, daily_log.NotFound, live.CallNotFound):
        assert issubclass(cls, errors.NotFound) and issubclass(cls, LookupError)
    for cls in (records.NotAllowed, referral.NotAllowed, daily_log.NotAllowed):
        assert issubclass(cls, errors.NotAllowed) and issubclass(cls, PermissionError)
    for cls in (records.RecordError, referral.ReferralError, daily_log.DayRefused, live.LiveError):
        assert issubclass(cls, errors.Invalid) and issubclass(cls, ValueError)
    assert issubclass(records.VersionConflict, errors.Conflict)
    assert records.Actor is errors.Actor is daily_log.Actor is live.Actor
