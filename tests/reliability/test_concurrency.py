"""50 concurrent identical requests (the ten admins of institution 1, five requests each,
all at once) -> one Dagster run, and once it finishes one webhook and one e-mail per
requester: nobody is left out, nobody is notified twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.stack import Person, Stack, months_ago
from tests.reliability.conftest import Mailer, Platform
from tests.reliability.deliveries import wait_delivered
from tests.reliability.report import summary

pytestmark = pytest.mark.e2e

REQUESTS = 50
NOTIFY_TIMEOUT = 180


def test_fifty_identical_requests_make_one_run_and_one_notification_per_requester(
    stack: Stack, people: dict[int, list[Person]], platform: Platform, mailer: Mailer
) -> None:
    requesters = people[1][:10]
    year, month = months_ago(3)
    url = f"{stack.base}/institution/reports/storyboard-usage?month={month}&year={year}"
    runs_before = stack.run_count()

    def ask(i: int) -> httpx.Response:
        person = requesters[i % len(requesters)]
        return httpx.get(url, headers={"Authorization": f"Bearer {person.bearer}"}, timeout=120)

    with ThreadPoolExecutor(REQUESTS) as pool:
        responses = list(pool.map(ask, range(REQUESTS)))
    assert all(r.status_code == 200 for r in responses), [
        (r.status_code, r.text) for r in responses if r.status_code != 200
    ]
    ids = {r.json()["results"].get("id") for r in responses} - {None}
    assert len(ids) == 1, ids
    (job_id,) = ids
    assert stack.run_count() == runs_before + 1
    assert stack.wait_job(job_id, requesters[0].bearer)["status"] == "succeeded"
    keys = [(job_id, p.user) for p in requesters]
    delivered = wait_delivered(platform, mailer, keys, NOTIFY_TIMEOUT)
    assert delivered.duplicated(keys) == []
    summary(
        "concurrency",
        requests=REQUESTS,
        requesters=len(requesters),
        runs=stack.run_count() - runs_before,
        notified=len(keys),
        lost=len(delivered.lost(keys)),
        duplicated=len(delivered.duplicated(keys)),
    )
