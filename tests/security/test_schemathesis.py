"""No 5xx on any input, over the OpenAPI schema (#14 "What to build" 4): Schemathesis reads the app's
own ``/openapi.json`` (fetched as a signed-in administrator: production hides it from anonymous
users) and sends every operation valid (positive) and invalid (negative) examples, against the real
ASGI app on SQLite holding the authorisation matrix's world (a call, a record, a referral, partners,
blocks, the legal library), so that paths with ids also meet rows that exist.

Each response must pass Schemathesis's checks: no server error, a status code and a content type
the schema declares (the app declares its error answers and the HTML pages once, in
``hotline.web.document_responses``), and a body that fits the declared schema. Bounded and
derandomized (the same examples on every run): EXAMPLES per operation and mode."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hotline.auth.deps import SESSION_COOKIE
from tests.live.conftest import sign_in
from tests.security.test_authz_matrix import client, staff, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
EXAMPLES = 6  # per operation and mode
STREAMS = {"/live/events"}  # an event stream never ends: its own tests read it
# Operations that end the session or the sign-in stages: sent without the administrator's session,
# so the other operations keep it.
ANONYMOUS = {"/logout", "/logout-everywhere", "/login", "/login/second-factor", "/login/password",
             "/login/enrol", "/language"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_operation_of_the_openapi_schema_answers_without_a_server_error(client, world):  # noqa: F811
    token = sign_in(client, "admin1")
    cookie = client.cookies.get(SESSION_COOKIE)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app, cookies={SESSION_COOKIE: cookie})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 100, "the schema lost its operations"
    failures: list[str] = []
    sent = {"requests": 0}
    statuses: Counter[str] = Counter()
    started = time.monotonic()

    def send(case: Any) -> None:
        anonymous = case.path in ANONYMOUS
        headers = {"Authorization": "Bearer test-api-token", "X-CSRF-Token": token}
        cookies = {} if anonymous else {SESSION_COOKIE: cookie}
        sent["requests"] += 1
        try:
            response = case.call(headers=headers, cookies=cookies)
        except Exception as exc:  # noqa: BLE001 - an exception out of the app is a 500 behind a real server
            failures.append(f"{case.method} {case.formatted_path}: raised {exc!r}\n{case.as_curl_command()}")
            return
        statuses[f"{response.status_code // 100}xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, every operation still runs
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{str(exc)[:600]}\n{case.as_curl_command(headers=headers)}")

    for operation in operations:
        if operation.path in STREAMS:
            continue
        names = re.findall(r"\{([^}]+)\}", operation.path)
        real = {name: world[name] for name in names if name in world}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies = [operation.as_strategy(generation_mode=mode)]
            if real and mode is GenerationMode.POSITIVE:
                strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=real))

            @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=st.one_of(strategies))
            def run(case: Any) -> None:
                send(case)

            try:
                run()
            except Exception as exc:  # noqa: BLE001 - e.g. a schema no example can satisfy in this mode
                if "Unsatisfiable" not in type(exc).__name__ and "unsatisfiable" not in str(exc).lower():
                    failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc!r}")
    elapsed = time.monotonic() - started
    print(f"schemathesis: {len(operations)} operations, {sent['requests']} requests "
          f"({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}), {len(failures)} failures, {elapsed:.0f} s")
    assert not failures, "\n\n".join(failures[:30]) + f"\n\n({len(failures)} failures)"
    assert sent["requests"] >= 6 * len(operations)
