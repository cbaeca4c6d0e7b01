"""Cancel on the real stack (issue 10 #1): a double DELETE while the run is running and a
DELETE while it is STARTING were 500s (Dagster refuses to terminate CANCELING and
STARTING runs). Every DELETE must now be 204 or 400 failed_precondition, and the runs end
canceled (or finished first)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.stack import Person, Stack, months_ago, wait_until
from tests.reliability.report import summary

pytestmark = pytest.mark.e2e

JOBS = "/institution/reports/jobs"


def _launch(stack: Stack, person: Person, last_day: int) -> str:
    year, month = months_ago(2)
    period = f"{year}-{month:02d}"
    response = stack.request(
        "/institution/reports/catalog", person.bearer, start_date=f"{period}-01", end_date=f"{period}-{last_day:02d}"
    )
    assert response.status_code == 200, response.text
    return str(response.json()["results"]["id"])


def _delete(stack: Stack, person: Person, job_id: str) -> httpx.Response:
    response = httpx.delete(
        f"{stack.base}{JOBS}/{job_id}", headers={"Authorization": f"Bearer {person.bearer}"}, timeout=60
    )
    assert response.status_code in (204, 400), response.text
    if response.status_code == 400:
        assert response.json()["code"] == "failed_precondition", response.text
    return response


def test_double_cancel_while_running_and_cancel_while_starting_are_never_500(
    stack: Stack, people: dict[int, list[Person]]
) -> None:
    person = people[2][3]
    answers: list[int] = []

    # 1. Double DELETE while the run is running.
    running = _launch(stack, person, 11)
    wait_until(lambda: stack.run_status(running) in ("STARTED", "SUCCESS", "FAILURE"), 120, "the run to start", 0.1)
    answers += [_delete(stack, person, running).status_code, _delete(stack, person, running).status_code]
    final = stack.wait_job(running, person.bearer)["status"]
    assert final in ("canceled", "succeeded", "failed")
    if answers[0] == 204:
        assert final == "canceled" and answers[1] in (204, 400)

    # 2. DELETE while STARTING: watch the run's status closely and cancel the moment it starts launching.
    starting = _launch(stack, person, 12)
    seen = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = stack.run_status(starting)
        seen.add(status)
        if status != "QUEUED":
            break
        time.sleep(0.02)
    answers.append(_delete(stack, person, starting).status_code)
    answers.append(_delete(stack, person, starting).status_code)
    assert stack.wait_job(starting, person.bearer)["status"] in ("canceled", "succeeded", "failed")
    summary(
        "cancel",
        deletes=len(answers),
        answers="/".join(map(str, answers)),
        statuses_seen="+".join(sorted(seen)),
        **{"5xx": 0},
    )
