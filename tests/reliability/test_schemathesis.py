"""Schemathesis over the running API's own OpenAPI document (real stack, loopback only),
with a valid token: positive and negative examples for every operation, bounded
(``max_examples`` per operation, no deadline). Every response must: not be a 5xx,
have a status, content type and body the schema declares, and, when it is an error,
carry the Encore body ``{"code","message","details": null}``. (Schemathesis's
``negative_data_rejection`` is not used: it counts unknown query parameters, which HTTP
APIs ignore, and the dropped Authorization header we always send, as accepted bad input.)
``LXP_FUZZ_EXAMPLES`` changes the bounded run's examples; the ``soak`` variant tries 200."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.stack import Person, Stack
from tests.reliability.report import summary

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = int(os.environ.get("LXP_FUZZ_EXAMPLES", "8"))
SOAK_EXAMPLES = 200
STATUSES: Counter[int] = Counter()
OPERATIONS: set[str] = set()
EXAMPLES_USED: list[int] = []


def encore_error_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every non-2xx (OPTIONS/HEAD aside) is the Encore body."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], str) and body["message"] and body["details"] is None, body
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    encore_error_body,
]


@pytest.fixture(scope="session")
def fuzz_user(people: dict[int, list[Person]]) -> Person:
    return people[3][1]


def _operations(stack: Stack) -> list[Any]:
    assert stack.base.startswith("http://127.0.0.1:")  # loopback only
    loaded = schemathesis.openapi.from_url(f"{stack.base}/openapi.json")
    return [result.ok() for result in loaded.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi(stack: Stack, fuzz_user: Person, mode: GenerationMode) -> None:
    _fuzz(stack, fuzz_user, mode, MAX_EXAMPLES)


@pytest.mark.soak
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_soak(stack: Stack, fuzz_user: Person, mode: GenerationMode) -> None:
    _fuzz(stack, fuzz_user, mode, SOAK_EXAMPLES)


def _fuzz(stack: Stack, fuzz_user: Person, mode: GenerationMode, examples: int) -> None:
    """Each operation, ``examples`` examples of ``mode`` (driven by hypothesis directly:
    schemathesis's pytest plugin does not run under this pytest)."""
    EXAMPLES_USED.append(examples)
    headers = {"Authorization": f"Bearer {fuzz_user.bearer}"}
    operations = _operations(stack)
    assert len(operations) >= 10
    for operation in operations:

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)
            STATUSES[response.status_code] += 1
            OPERATIONS.add(f"{case.operation.method.upper()} {case.operation.path}")

        try:
            fuzz()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to negate (e.g. /healthz has no input)


def test_fuzzing_summary(stack: Stack, fuzz_user: Person) -> None:
    """Prints the figures, and cancels the runs the fuzzer queued (through the API, as their
    requester) so they do not hold the run queue for the scenarios after it."""
    canceled = 0
    jobs = stack.request("/institution/reports/jobs", fuzz_user.bearer, limit=100).json()["items"]
    for job in jobs:
        if job["status"] in ("queued", "running"):
            response = httpx.delete(
                f"{stack.base}/institution/reports/jobs/{job['id']}",
                headers={"Authorization": f"Bearer {fuzz_user.bearer}"},
                timeout=60,
            )
            assert response.status_code in (204, 400), response.text
            canceled += response.status_code == 204
    requests = sum(STATUSES.values())
    server_errors = sum(n for status, n in STATUSES.items() if status >= 500)
    assert requests > 0
    summary(
        "schemathesis",
        requests=requests,
        operations=len(OPERATIONS),
        max_examples_per_operation_and_mode=max(EXAMPLES_USED),
        **{"5xx": server_errors},
        runs_launched_then_canceled=canceled,
        statuses="/".join(f"{s}:{n}" for s, n in sorted(STATUSES.items())),
    )
    assert server_errors == 0
