"""#14 finding 11 and "What to build" 6: security headers on every answer, a CSP without inline
scripts (and no template that needs one), no-store on the API, no anonymous API schema in
production, and ``hotline check`` warning about each missing protection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hotline.settings import reset_settings
from tests.live.conftest import sign_in

ROOT = Path(__file__).resolve().parents[2]
TOKEN = {"Authorization": "Bearer test-api-token"}


def test_pages_and_api_carry_the_security_headers(client, staff):
    page = client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    api = client.get("/api/calls", headers=TOKEN)
    assert api.status_code == 200 and api.headers["cache-control"] == "no-store"
    assert client.get("/api/calls").headers["cache-control"] == "no-store"  # refusals too
    static = client.get("/static/js/app.js")
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")


def test_no_template_needs_an_inline_script_or_style():
    """Every template of every domain: scripts come from files, data in application/json blocks."""
    offenders = []
    for path in ROOT.glob("*/**/templates/**/*.html"):
        if ".venv" in path.parts or "email" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"<script\b([^>]*)>", text):
            attrs = m.group(1)
            if "src=" not in attrs and 'type="application/json"' not in attrs:
                offenders.append(f"{path.relative_to(ROOT)}: inline <script>")
        for m in re.finditer(r"\s(on[a-z]+)\s*=\s*[\"']", text):
            offenders.append(f"{path.relative_to(ROOT)}: {m.group(1)}= handler")
        if re.search(r"\sstyle\s*=\s*[\"']|<style\b", text):
            offenders.append(f"{path.relative_to(ROOT)}: inline style")
        if "javascript:" in text:
            offenders.append(f"{path.relative_to(ROOT)}: javascript: URL")
    assert not offenders, offenders


@pytest.fixture
def production(env, monkeypatch):
    from hotline.security import crypto

    monkeypatch.setenv("HOTLINE_ENVIRONMENT", "production")
    monkeypatch.setenv("HOTLINE_ENCRYPTION_KEYS", crypto.generate_key())
    monkeypatch.setenv("HOTLINE_TOTP_REQUIRED_ROLES", "supervisor,administrator")
    reset_settings()
    yield
    monkeypatch.setenv("HOTLINE_ENVIRONMENT", "test")
    monkeypatch.delenv("HOTLINE_ENCRYPTION_KEYS")
    reset_settings()


def test_the_api_schema_is_not_for_anonymous_users_in_production(production, staff):
    from hotline.app import create_app

    with TestClient(create_app(), base_url="https://testserver") as c:
        assert c.get("/openapi.json", headers={"Accept": "application/json"}).status_code == 401
        assert c.get("/api/docs").status_code == 404 and c.get("/docs").status_code == 404
        page = c.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        sign_in(c, "tvv1")
        schema = c.get("/openapi.json")
        assert schema.status_code == 200 and "/api/calls" in schema.json()["paths"]


def test_hotline_check_warns_about_each_missing_protection(env, monkeypatch, capsys):
    from hotline import web
    from hotline.cli import main

    monkeypatch.setenv("HOTLINE_TOTP_REQUIRED_ROLES", "supervisor,administrator")
    reset_settings()
    assert main(["check"]) in (0, 1)
    out = capsys.readouterr().out
    assert re.search(r"OK\s+web-protections", out), out
    monkeypatch.setattr(web, "SECURITY_HEADERS", {"x-content-type-options": "nosniff"})
    monkeypatch.setenv("HOTLINE_REFERRAL_ALLOW_HTTP_WEBHOOKS", "true")
    monkeypatch.setenv("HOTLINE_TOTP_REQUIRED_ROLES", "administrator")
    reset_settings()
    main(["check"])
    out = capsys.readouterr().out
    for text in ("without a Content-Security-Policy", "without X-Frame-Options", "without a Referrer-Policy",
                 "second factor is not required of: supervisor", "HOTLINE_REFERRAL_ALLOW_HTTP_WEBHOOKS"):
        assert text in out, (text, out)
