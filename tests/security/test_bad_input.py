"""#14 finding 7: malformed input gets a clear 4xx naming what was wrong, never a 500 — checked over
every route of the app (ids above 2^63 in each path, non-object JSON bodies on each write route)."""

from __future__ import annotations

import re

import pytest

from tests.live.conftest import sign_in

BIG = str(2**63)
JSON = {"Accept": "application/json"}


def _routes(app):
    def walk(routes):
        for r in routes:
            if hasattr(r, "original_router"):
                yield from walk(r.original_router.routes)
            elif hasattr(r, "methods") and r.methods:
                yield r
    return list(walk(app.routes))


@pytest.mark.parametrize("query, field", [
    ("line=²", None), ("until=9999-12-31", "until"), ("since=0001-01-01", "since"),
    ("offset=12345678901234567890", "offset"), ("since=%2B10000-01-01", "since")])
def test_api_calls_query_values(client, staff, query, field):
    r = client.get(f"/api/calls?{query}", headers={"Authorization": "Bearer test-api-token", **JSON})
    assert 400 <= r.status_code < 500, r.text
    if field:
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", field]
        assert r.json()["detail"][0]["msg"]


def test_ids_above_2_63_in_every_route_and_non_object_bodies(client, staff):
    token = sign_in(client, "admin1")
    headers = {**JSON, "X-CSRF-Token": token, "Authorization": "Bearer test-api-token"}
    tried, errors = 0, []
    for route in _routes(client.app):
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            if "{" in route.path:
                path = re.sub(r"\{[^}:]+(:[^}]+)?\}", BIG, route.path)
                r = client.request(method, path, headers=headers)
                tried += 1
                if r.status_code >= 500:
                    errors.append(f"{method} {route.path} (id {BIG}): {r.status_code}")
            if method in ("POST", "PUT", "PATCH"):
                path = re.sub(r"\{[^}:]+(:[^}]+)?\}", "1", route.path)
                for body in (b"[]", b"1", b'"x"', b"null", b"[{}]"):
                    r = client.request(method, path, content=body,
                                       headers={**headers, "Content-Type": "application/json"})
                    tried += 1
                    if r.status_code >= 500:
                        errors.append(f"{method} {route.path} body {body!r}: {r.status_code}")
    assert tried > 100 and not errors, errors


def test_the_refusal_explains_in_the_users_language(client, staff):
    sign_in(client, "tvv1")
    r = client.get(f"/records/{BIG}", headers=JSON)
    assert r.status_code == 422 and "9223372036854775807" in r.json()["detail"][0]["msg"]
    page = client.get(f"/records/{BIG}", headers={"Accept": "text/html"})
    assert page.status_code == 422 and "record_id" in page.text and "9223372036854775807" in page.text
    token = sign_in(client, "tvv1")
    r = client.put("/records/1", content=b"[1, 2]", headers={**JSON, "X-CSRF-Token": token,
                                                             "Content-Type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"][0]["msg"]


def test_the_refusal_is_in_vietnamese_by_default(client, staff):
    sign_in(client, "tvv1")
    r = client.get("/api/calls?until=9999-12-31", headers=JSON)
    assert r.status_code == 422 and r.json()["detail"][0]["msg"].startswith("hãy nhập một ngày")
