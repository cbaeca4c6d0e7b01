"""The JWT attack set (tests/api/auth_attacks.py, the same one the in-process auth matrix
uses) on every secured endpoint of the real stack: each attack refused with the Encore
body, and no Dagster run launched by any of them."""

from __future__ import annotations

import httpx
import pytest

from tests.api.auth_attacks import ENDPOINTS, attack_every_endpoint
from tests.e2e.stack import JWT_SECRET, Person, Stack, months_ago
from tests.reliability.report import summary

pytestmark = pytest.mark.e2e


def test_every_jwt_attack_is_refused_on_every_endpoint_of_the_real_stack(
    stack: Stack, people: dict[int, list[Person]]
) -> None:
    victim = people[2][1]
    year, month = months_ago(5)
    launched = stack.request("/institution/reports/storyboard-usage", victim.bearer, month=month, year=year)
    assert launched.status_code == 200, launched.text
    job = launched.json()["results"].get("id", "cache-hit")
    runs_before = stack.run_count()
    claims = {"institutionId": victim.institution, "userId": victim.user, "subdomain": victim.subdomain}
    with httpx.Client(base_url=stack.base, timeout=30) as client:
        tried, names = attack_every_endpoint(client, JWT_SECRET, claims, job)
    assert stack.run_count() == runs_before, "an attack launched a run"
    if job != "cache-hit":
        assert stack.request(f"/institution/reports/jobs/{job}", victim.bearer).status_code == 200
    summary("jwt-attacks", attacks=len(names), endpoints=len(ENDPOINTS), requests=tried, accepted=0, runs_launched=0)
