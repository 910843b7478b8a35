"""No 5xx on any input (#14 "What to build" 4), pages and forms as well as the JSON API: hypothesis
draws a route from the app's own route list, a role (administrator, counsellor, supervisor, the API
token), path values (the fixture's real ids, huge and odd ones), query strings, form fields (the
names the templates use, plus odd ones) or JSON bodies, and the answer must be below 500.

Bounded (a few hundred requests, SQLite) to stay within the suite's budget; every failure names
the request so it can be replayed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.live.conftest import sign_in
from tests.security.test_authz_matrix import STREAMS, app_routes, client, staff, world  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
FIELD_NAMES = sorted({m for p in ROOT.glob("**/templates/**/*.html") if ".venv" not in p.parts
                      for m in re.findall(r' name="([A-Za-z_][A-Za-z0-9_]*)"', p.read_text(encoding="utf-8"))}
                     | {"q", "since", "until", "line", "offset", "limit", "page", "centre", "day", "province",
                        "version", "fields", "kind", "ref_id", "label", "next", "format", "status"})
ODD = ["", " ", "0", "-1", "1e400", "NaN", str(2**63), "99999999999999999999", "0001-01-01", "9999-12-31",
       "2026-02-30", "²", "١٢", "\x00", "<script>alert(1)</script>", "' OR 1=1 --", "=cmd|' /C calc'!A0",
       "../../etc/passwd", "é" * 300, "x" * 5000, "true", "null", "[]", "{}", "%", "%%", "\ud7ff"]
text_values = st.one_of(st.sampled_from(ODD), st.text(max_size=30), st.integers().map(str))
json_values: Any = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(ODD),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(FIELD_NAMES + ["fields", "version"]), inner, max_size=5)),
    max_leaves=12)
params = st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(min_size=1, max_size=10)), text_values,
                         max_size=6)
ROLES = {"admin": "admin1", "cA": "tvv1", "sA": "gs1", "cB": "tvv_other"}


def test_no_route_answers_5xx_whatever_it_is_sent(client, world):  # noqa: F811 - a fixture imported by name
    routes = [mp for mp in app_routes(client.app) if mp not in STREAMS]
    sessions: dict[str, str] = {}
    errors: list[str] = []
    sent: list[str] = []

    def send(method: str, template: str, role: str, path_values: dict[str, str], query: dict[str, str],
             body: Any, as_json: bool) -> None:
        client.cookies.clear()
        headers = {}
        if role == "tok":
            headers["Authorization"] = "Bearer test-api-token"
        else:
            if role not in sessions or method != "GET":  # a write may have signed the session out
                sessions[role] = sign_in(client, ROLES[role])
            else:
                sign_in(client, ROLES[role])
            headers["X-CSRF-Token"] = sessions[role]
        path = re.sub(r"\{([^}:]+)(?::[^}]+)?\}", lambda m: path_values.get(m.group(1)) or world[m.group(1)],
                      template)
        kwargs: dict[str, Any] = {"params": query, "headers": headers, "follow_redirects": False}
        if method != "GET":
            if as_json:
                headers["Accept"] = "application/json"
                kwargs["json"] = body
            else:
                kwargs["data"] = {**(body if isinstance(body, dict) else {}), "csrf_token": headers.get("X-CSRF-Token", "")}
        sent.append(method)
        try:
            r = client.request(method, path, **kwargs)
        except Exception as exc:  # an exception escaping the app is a 500 behind a real server
            errors.append(f"{method} {path} as {role} {kwargs}: raised {exc!r}")
            raise
        if r.status_code >= 500:
            errors.append(f"{method} {path} as {role} {kwargs}: {r.status_code}")
        assert r.status_code < 500, errors[-1]

    path_value = st.one_of(st.none(), st.sampled_from(["0", "-1", str(2**63), "abc", "%20", "é", "1.5", "9" * 30]))

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.data_too_large])
    @given(st.sampled_from(routes), st.sampled_from(["admin", "cA", "sA", "cB", "tok"]),
           st.dictionaries(st.sampled_from(sorted(world)), path_value, max_size=2), params,
           st.one_of(params, json_values), st.booleans())
    def fuzz(route: tuple[str, str], role: str, path_values: dict[str, Any], query: dict[str, str], body: Any,
             as_json: bool) -> None:
        method, template = route
        if template in ("/logout", "/logout-everywhere") or template.startswith("/admin/users/"):
            role = "cB"  # keep the accounts the other draws use (an administrator could disable them)
        send(method, template, role, {k: v for k, v in path_values.items() if v is not None}, query, body, as_json)

    fuzz()
    assert not errors, errors
    assert len(sent) >= 300 and "POST" in sent, f"only {len(sent)} requests were sent"
