"""The OpenAPI document against a running gateway: schemathesis finds no 5xx, undocumented status or bad body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from services.gateway.routes import ROUTES, TIMEOUT
from services.stack import LocalStack
from tests.e2e.test_stack_e2e import get_json, http_base, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 20  # per operation and generation mode: about 500 requests in all
# A deadline the client itself makes too short is answered degraded or 503 by design; the generated requests get
# one long enough that any 5xx would be the server's fault. (The header's own validation is tested in test_stack_e2e.)
ROOMY_TIMEOUT_MS = "10000"
# Per-attempt timeouts long enough that a machine busy with other work does not turn a slow hop into a 503: the
# test is about the contract, not latency.
PATIENT_TIERS = {f"WREN_{tier}_TIMEOUT_MS": "2000" for tier in ("FEATURE", "RECALL", "RANKING")}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    running = await start_stack(tiny_artifacts, tmp_path_factory.mktemp("openapi"), 1, PATIENT_TIERS)
    yield running
    await running.stop()


def fuzz(document: dict, base_url: str, mode: schemathesis.GenerationMode) -> list[str]:
    """Runs every operation's examples of `mode` (negative: operations that take input); returns their labels."""
    schema = schemathesis.openapi.from_dict(document)
    takes_input = {f"{route.method} {route.path}" for route in ROUTES if route.params or route.body}
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is schemathesis.GenerationMode.NEGATIVE and operation.label not in takes_input:
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def check(case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), TIMEOUT.name: ROOMY_TIMEOUT_MS}
            case.call_and_validate(base_url=base_url, checks=CHECKS)

        check()
        tried.append(operation.label)
    return tried


async def test_the_document_describes_every_route(stack: LocalStack) -> None:
    async with aiohttp.ClientSession() as session:
        status, document = await get_json(session, f"{http_base(stack)}/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert operations == {(route.method, route.path) for route in ROUTES}
    for path in (
        "/v1/recommendations",
        "/v1/items/{item_id}/similar",
        "/v1/events",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/items/{item_id}",
        "/v1/items",
        "/v1/genres",
        "/v1/genres/{genre}/items",
        "/v1/users/{user_id}",
        "/openapi.json",
    ):
        assert path in document["paths"]
    for route in ROUTES:
        responses = document["paths"][route.path][route.method.lower()]["responses"]
        assert ("400" in responses) == bool(route.params or route.body), route.path
        assert ("503" in responses) == (route.path.startswith("/v1/") or route.path == "/readyz"), route.path
        assert ("404" in responses) == ("{" in route.path), route.path
    similar = document["paths"]["/v1/items/{item_id}/similar"]["get"]["responses"]
    assert set(similar) == {"200", "400", "404", "503"}
    assert similar["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
async def test_schemathesis_finds_nothing(stack: LocalStack, mode: schemathesis.GenerationMode) -> None:
    async with aiohttp.ClientSession() as session:
        _, document = await get_json(session, f"{http_base(stack)}/openapi.json")
    tried = await asyncio.to_thread(fuzz, document, http_base(stack), mode)
    negative = mode is schemathesis.GenerationMode.NEGATIVE
    assert len(tried) == len([route for route in ROUTES if route.params or route.body or not negative])
