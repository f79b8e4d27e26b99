"""Property-based fuzzing of every documented operation: no input gives a 5xx, and every answer is one the
document describes (its status, media type, body schema and required headers)."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

# Its tests write only scores (and idempotency keys) of their own and count nothing else the store holds, so
# it shares one server with the other such modules of its test process (conftest `server`).
SHARES_SERVER = True

MAX_EXAMPLES = int(os.environ.get("REINTEGRA_TEST_FUZZ_EXAMPLES", "30"))
# What a client generated from the document relies on; the checks of what the server should accept or refuse
# are left out, since it reads more than the schema says (`1` for yes, a band by the served model's spec).
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def test_no_generated_input_gives_a_server_error(server):
    """Schemathesis draws bodies, paths and queries from the OpenAPI schema, valid and not."""
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {server.keys['admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=os.environ.get("REINTEGRA_TEST_FUZZ_RANDOM") is None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            response = case.call(headers=headers, timeout=30)
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text[:300]}"
            if response.status_code >= 400:
                assert response.headers["content-type"] in (
                    "application/problem+json",
                    ["application/problem+json"],
                )
            case.validate_response(response, checks=CONFORMANCE)

        check()
