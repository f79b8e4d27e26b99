"""Property-based fuzzing of every documented operation: no input gives a 5xx."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("REINTEGRA_FUZZ_EXAMPLES", "30"))


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
            derandomize=os.environ.get("REINTEGRA_FUZZ_RANDOM") is None,
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

        check()
