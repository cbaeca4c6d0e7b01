"""Issue 15 #4: the request ledger's PostgreSQL blips under a real API process.

A real uvicorn API (fake Dagster over HTTP) keeps its ledger on a private
PostgreSQL server that the tests restart (``pg_ctl restart -m fast``) while
requests are in flight, and stop for longer than the one retry covers. Ledger
errors must be retried once on a fresh connection and otherwise answered
``503 unavailable`` with ``Retry-After`` and the Encore body: never 500. Every
request answered 200 with a job id has its requester recorded for that job.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestration.ledger import Ledger
from tests.api.conftest import SECRET, auth
from tests.api.fake_dagster import FakeDagster
from tests.services import postgres
from tests.services.api_process import ApiProcess

pytestmark = pytest.mark.services

REPORT = "/institution/reports/storyboard-usage"


@pytest.fixture(scope="module")
def ledger_server() -> Iterator[str]:
    """A PostgreSQL server of this module's own: restarting it disturbs no other test."""
    with postgres.postgres_server() as url:
        yield url


@pytest.fixture
def api(tmp_path: Path, warehouse_url: str, dagster_url: str, ledger_server: str) -> Iterator[tuple[ApiProcess, str]]:
    ledger = postgres.create_database(ledger_server)
    env = {
        "LXP_HOME": str(tmp_path),
        "LXP_WAREHOUSE_URL": warehouse_url,
        "LXP_LEDGER_URL": ledger,
        "LXP_JWT_SECRET": SECRET,
        "LXP_JWT_ALGORITHMS": "HS256",
        "LXP_DAGSTER_URL": dagster_url,
        "LXP_RATE_LIMIT": "100000/minute",
        "LXP_LINK_SECRET": "link-secret-for-tests",
    }
    process = ApiProcess(env, tmp_path / "api.log").start()
    try:
        yield process, ledger
    finally:
        process.stop()


def check_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {"code": "unavailable", "message": response.json()["message"], "details": None}
    assert "database" in response.json()["message"]
    assert int(response.headers["Retry-After"]) > 0


def test_restart_under_load_answers_200_or_503_never_500(
    api: tuple[ApiProcess, str], fake_dagster: FakeDagster
) -> None:
    process, ledger = api
    stop = threading.Event()
    answers: list[tuple[str, int, int, Any, dict[str, str]]] = []  # (kind, user, status, body, headers)
    lock = threading.Lock()

    def client(worker: int) -> None:
        user = (10, 12)[worker % 2]
        i = 0
        with httpx.Client(base_url=process.base, timeout=30) as http:
            while not stop.is_set():
                i += 1
                if i % 2:
                    kind, response = "history", http.get("/institution/reports/jobs", headers=auth({"userId": user}))
                else:  # a new month every other time (launch), the same as a colleague's otherwise (join)
                    month = 1 + (i // 2 + worker // 2) % 12
                    kind = f"report {month}"
                    response = http.get(REPORT, params={"month": month, "year": 2025}, headers=auth({"userId": user}))
                with lock:
                    answers.append((kind, user, response.status_code, response.json(), dict(response.headers)))

    threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    before = len(answers)
    took = postgres.restart(ledger)
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(60)
    statuses = Counter(status for _, _, status, _, _ in answers)
    during = Counter(status for _, _, status, _, _ in answers[before:])
    retried = process.log_text().count("retrying once on a fresh connection")
    print(
        f"ledger restart under load: restart={took:.2f}s requests={len(answers)} statuses={dict(statuses)} "
        f"after_restart_began={dict(during)} retried={retried} runs={len(fake_dagster.launches())}"
    )
    assert set(statuses) <= {200, 503}, [a for a in answers if a[2] not in (200, 503)][:5]
    for _kind, _, status, body, headers in answers:
        if status == 503:
            check_unavailable(httpx.Response(503, json=body, headers=headers))
    assert statuses[200] > 0 and retried > 0
    # Every acknowledged launch or join has its requester recorded for its run.
    store = Ledger(ledger)
    try:
        for kind, user, status, body, _ in answers:
            if status == 200 and kind.startswith("report"):
                job = body["results"]["id"]
                assert job in fake_dagster.runs
                assert user in {r.user_id for r in store.requests.recipients(job)}, (kind, user, job)
        assert all(r.status == "QUEUED" for r in fake_dagster.launches())
    finally:
        store.dispose()
    # And the API is whole again.
    after = httpx.get(f"{process.base}/institution/reports/jobs", headers=auth(), timeout=10)
    assert after.status_code == 200, after.text


def test_ledger_down_longer_than_the_retry_is_503_with_retry_after(api: tuple[ApiProcess, str]) -> None:
    process, ledger = api
    assert httpx.get(f"{process.base}/institution/reports/jobs", headers=auth(), timeout=10).status_code == 200
    postgres.stop(ledger)
    try:
        for path, params in (("/institution/reports/jobs", {}), (REPORT, {"month": 5, "year": 2025})):
            started = time.monotonic()
            response = httpx.get(f"{process.base}{path}", params=params, headers=auth(), timeout=30)
            check_unavailable(response)
            assert time.monotonic() - started >= 0.4  # retried once before giving up
    finally:
        postgres.start(ledger)
    response = httpx.get(f"{process.base}/institution/reports/jobs", headers=auth(), timeout=10)
    assert response.status_code == 200, response.text
    assert "unhandled error" not in process.log_text()
