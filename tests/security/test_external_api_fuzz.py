"""Schemathesis against the external API's OpenAPI schema, through a real uvicorn, with a valid API key:
whatever it generates (valid and invalid data), the server never answers 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from backend.config import Settings
from backend.main import create_app

EXAMPLES_PER_OPERATION = 40

schema = schemathesis.openapi.from_dict(create_app(Settings(), run_worker=False).openapi()).include(
    path_regex=r"^/api/v1/external/"
)


@pytest.fixture
async def fuzz_key(make_api_key):
    """A key that may do everything the external API offers, with a budget the fuzzer cannot exhaust."""
    return await make_api_key(name="fuzzer", permissions=["read", "write"], rate_limit_per_minute=100_000)


def test_the_schema_covers_every_external_operation():
    assert sorted(op.ok().label for op in schema.get_all_operations()) == [
        "GET /api/v1/external/alerts/alertmanager/incidents/{incident_id}",
        "GET /api/v1/external/incidents/{incident_id}",
        "GET /api/v1/external/knowledge/search",
        "POST /api/v1/external/alerts/alertmanager",
        "POST /api/v1/external/incidents",
    ]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_generated_request_gets_a_server_error(case, live_server, fuzz_key):
    case.call_and_validate(base_url=live_server.url, headers=fuzz_key.headers, checks=[not_a_server_error], timeout=30)
