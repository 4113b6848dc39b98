"""Property-based fuzzing of the whole REST API from its own OpenAPI schema (schemathesis).

Every operation in /openapi.json gets generated requests, valid (positive) and invalid
(negative), sent through the real WSGI stack with an operator key, so the store is exercised
and not just the grant check. Each response is checked by schemathesis: never a 5xx, the status
code, headers and body match what the schema documents, and invalid input is refused. The
"schema-valid input is accepted" check is left out: JSON Schema cannot say everything the
store checks (byte sizes in UTF-8, whitespace-only names, lone surrogates), and those 400s are
tested directly in tests/graph/test_api.py. The number of examples is bounded to keep the suite fast; set FUZZ_EXAMPLES for a deeper run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import Persona

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
APP = get_wsgi_application()
SCHEMA = schemathesis.openapi.from_wsgi("/openapi.json", APP)
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


@pytest.fixture
def wsgi_requests_share_the_test_transaction(db, settings):
    # Like Django's test client: keep the test's connection (and its transaction) open across
    # requests instead of closing it when each request finishes.
    settings.MEMORYHUB_RATE_LIMIT = {"PER_MINUTE": 0, "BURST": 1}
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_every_endpoint_is_in_the_schema() -> None:
    # 30 graph operations, banks list and ping, memory write/search/delete/clear/history/update/restore/supersede
    assert len(OPERATIONS) == 40
    assert "POST /v1/memory/search" in OPERATIONS
    assert "POST /v1/graph/find_path" in OPERATIONS


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_the_api_keeps_its_documented_contract(
    label: str, mode: GenerationMode, root_key: Persona, wsgi_requests_share_the_test_transaction
) -> None:
    headers = {"X-API-Key": root_key.secret}

    @given(case=OPERATIONS[label].as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    check()
