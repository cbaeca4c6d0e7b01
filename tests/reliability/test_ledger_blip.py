"""Issue 15 #4: the request ledger's PostgreSQL restarts (``pg_ctl restart -m fast``) while the
real stack is under load.

Two admins of institution 2 keep asking for four monthly storyboard reports (one launches,
the repeats join) and for their job history; the ledger's server is restarted two seconds in,
just as the last two months are asked for. Every answer must be 200 or 503 ``unavailable`` with ``Retry-After`` (never 500),
and every request answered 200 with a job id must end and be notified exactly once (one
webhook, one e-mail per job and requester).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Person, Stack, months_ago
from tests.reliability.conftest import Mailer, Platform
from tests.reliability.deliveries import Key, wait_delivered
from tests.reliability.report import summary
from tests.services import postgres

pytestmark = pytest.mark.e2e

REPORT = "/institution/reports/storyboard-usage"
MONTHS = (8, 9, 10, 11)  # months back: no other scenario asks for these
NOTIFY_TIMEOUT = 180


def test_ledger_restart_under_load_no_500_and_every_acknowledged_request_is_notified_once(
    stack: Stack, people: dict[int, list[Person]], platform: Platform, mailer: Mailer, ledger_url: str
) -> None:
    if not ledger_url.startswith("postgresql"):
        pytest.skip("the stack's ledger is SQLite here (no PostgreSQL binaries)")
    admins = people[2][:2]
    stop = threading.Event()
    lock = threading.Lock()
    answers: list[tuple[str, int, int, dict[str, Any], str | None]] = []  # (what, user, status, body, Retry-After)

    def record(what: str, user: int, response: httpx.Response) -> None:
        with lock:
            answers.append((what, user, response.status_code, response.json(), response.headers.get("Retry-After")))

    def reports(months_back: int, person: Person) -> None:
        """Ask again and again for one month: the first answer launches, the next ones join."""
        year, month = months_ago(months_back)
        with httpx.Client(base_url=stack.base, timeout=60) as http:
            while not stop.is_set():
                headers = {"Authorization": f"Bearer {person.bearer}"}
                record("report", person.user, http.get(REPORT, params={"month": month, "year": year}, headers=headers))

    def history(person: Person) -> None:
        with httpx.Client(base_url=stack.base, timeout=60) as http:
            while not stop.is_set():
                headers = {"Authorization": f"Bearer {person.bearer}"}
                record("history", person.user, http.get("/institution/reports/jobs", headers=headers))

    def run(target: Any, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        return thread

    # Two months launched before the restart (joined during it), two launched as it begins,
    # and job history polled all along.
    threads = [run(history, person) for person in admins for _ in range(2)]
    threads += [run(reports, months_back, person) for months_back in MONTHS[:2] for person in admins]
    time.sleep(2.0)
    threads += [run(reports, months_back, person) for months_back in MONTHS[2:] for person in admins]
    took = postgres.restart(ledger_url)
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(60)

    statuses = Counter(status for _, _, status, _, _ in answers)
    assert set(statuses) <= {200, 503}, [a for a in answers if a[2] not in (200, 503)][:5]
    for _, _, status, body, retry_after in answers:
        if status == 503:
            assert body["code"] == "unavailable" and body["details"] is None and retry_after, body
    acknowledged = {
        (str(body["results"]["id"]), user)
        for what, user, status, body, _ in answers
        if what == "report" and status == 200 and "id" in body["results"]
    }
    cached = sum(
        1 for what, _, status, body, _ in answers if what == "report" and status == 200 and "cached" in body["results"]
    )
    jobs = {job for job, _ in acknowledged}
    bearer = {p.user: p.bearer for p in admins}
    for job, user in sorted(acknowledged):
        assert stack.wait_job(job, bearer[user])["status"] == "succeeded", job
    keys: list[Key] = sorted(acknowledged)
    delivered = wait_delivered(platform, mailer, keys, NOTIFY_TIMEOUT)
    assert delivered.duplicated(keys) == []
    retried = stack.log_tail(10_000_000).count("retrying once on a fresh connection")
    summary(
        "ledger restart",
        restart_seconds=f"{took:.2f}",
        requests=len(answers),
        statuses="/".join(f"{s}:{n}" for s, n in sorted(statuses.items())),
        retried=retried,
        runs=len(jobs),
        acknowledged=len(keys),
        cached=cached,
        lost=len(delivered.lost(keys)),
        duplicated=len(delivered.duplicated(keys)),
    )
