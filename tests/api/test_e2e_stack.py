"""End to end: `lxp-reports up` (Dagster webserver + daemon + API) on a generated tiny warehouse.

A client requests an async report, polls its job until it succeeds, downloads
the file through the signed link, and the identical request is then a cache
hit; a sync report answers from the same warehouse. Slow (real processes):
marked ``e2e``; run with ``pytest -m e2e tests/api/test_e2e_stack.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest

from tests.e2e.stack import JWT_SECRET as SECRET
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


def _token(institution: int, user: int) -> str:
    claims = {
        "institutionId": institution,
        "userId": user,
        "subdomain": "demo",
        "privilegio_id": 2,
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def stack_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e_home")


@pytest.fixture(scope="module")
def stack(stack_home: Path) -> Iterator[str]:
    """`lxp-reports up` on free ports over a fresh tiny warehouse (tests/e2e/stack.py runs it)."""
    from orchestration.warehouse.generate import generate_warehouse

    generate_warehouse("tiny", 42, str(stack_home / "warehouse.duckdb"))
    running = Stack(stack_home, {})
    running.start()
    try:
        yield running.base
    finally:
        running.stop()


def _last_full_month() -> tuple[int, int]:
    now = datetime.now(UTC)
    return (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)


def _wait_for(base: str, job_id: str, headers: dict[str, str], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{base}/institution/reports/jobs/{job_id}", headers=headers, timeout=10).json()
        if job.get("status") in ("succeeded", "failed", "canceled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(1)


def test_async_report_runs_in_dagster_and_downloads_then_hits_the_cache(stack: str, stack_home: Path) -> None:
    year, month = _last_full_month()
    headers = {"Authorization": f"Bearer {_token(1, 501)}"}
    url = f"{stack}/institution/reports/storyboard-usage?month={month}&year={year}"
    first = httpx.get(url, headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    job_id = first.json()["results"]["id"]
    # An identical request by a colleague while it runs joins the same job.
    colleague = {"Authorization": f"Bearer {_token(1, 502)}"}
    joined = httpx.get(url, headers=colleague, timeout=30).json()["results"]
    assert joined in ({"id": job_id}, {"cached": True})

    job = _wait_for(stack, job_id, headers)
    assert job["status"] == "succeeded", job
    assert job["rows"] is not None and job["url"].startswith(f"{stack}/downloads/")
    download = httpx.get(job["url"], timeout=30)
    assert download.status_code == 200 and download.content[:2] == b"PK"
    assert job["filename"] in download.headers["content-disposition"]

    # Another institution's user cannot see the job.
    other = {"Authorization": f"Bearer {_token(2, 601)}"}
    assert httpx.get(f"{stack}/institution/reports/jobs/{job_id}", headers=other, timeout=10).status_code == 404

    again = httpx.get(url, headers={"Authorization": f"Bearer {_token(1, 503)}"}, timeout=30)
    assert again.json() == {"results": {"cached": True}}

    # The delivery sensor releases the requesters' notifications of the finished run.
    from orchestration.ledger import Ledger

    outbox = Ledger(f"sqlite:///{stack_home / 'outbox.sqlite'}")
    deadline = time.monotonic() + 90
    while True:
        rows = outbox.deliveries.list(job_id=job_id)
        if rows and all(n.state != "waiting" for n in rows):
            break
        assert time.monotonic() < deadline, [(n.recipient_user_id, n.state) for n in rows]
        time.sleep(2)
    assert 501 in {n.recipient_user_id for n in rows}
    assert all(n.status_of_job == "succeeded" and n.storage_key for n in rows)
    cached = [n for n in outbox.deliveries.list(recipient_user_id=503) if n.cached]
    assert len(cached) == 1 and cached[0].job_id.startswith("cache:")


def test_sync_report_and_library_on_the_generated_warehouse(stack: str, stack_home: Path) -> None:
    import duckdb

    with duckdb.connect(str(stack_home / "warehouse.duckdb"), read_only=True) as con:
        (admin,) = con.execute(
            "SELECT id FROM users WHERE institution_id = 1 AND privilege_id <> 4 AND deleted_at IS NULL ORDER BY id LIMIT 1"
        ).fetchone()
    headers = {"Authorization": f"Bearer {_token(1, int(admin))}"}
    workload = httpx.post(f"{stack}/reports/bookings-workload", headers=headers, timeout=60)
    assert workload.status_code == 200 and isinstance(workload.json(), list)
    library = httpx.get(f"{stack}/institution/library/contents?limit=5", headers=headers, timeout=30)
    assert library.status_code == 200 and library.json()["limit"] == 5


def test_adhoc_catalog_with_school_filter(stack: str) -> None:
    headers = {"Authorization": f"Bearer {_token(1, 501)}"}
    year, month = _last_full_month()
    bad = httpx.get(
        f"{stack}/institution/reports/catalog?start_date={year}-{month:02d}-01&end_date={year}-{month:02d}-10&school_ids=999999",
        headers=headers,
        timeout=30,
    )
    assert bad.status_code == 400 and "Not schools of this institution" in bad.json()["message"]
    url = f"{stack}/institution/reports/catalog?start_date={year}-{month:02d}-01&end_date={year}-{month:02d}-10"
    response = httpx.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    job = _wait_for(stack, response.json()["results"]["id"], headers)
    assert job["status"] == "succeeded", job
    assert httpx.get(job["url"], timeout=30).content[:2] == b"PK"
    # The ad-hoc file is found again through the run's cache-key tag.
    assert httpx.get(url, headers={"Authorization": f"Bearer {_token(1, 777)}"}, timeout=30).json() == {
        "results": {"cached": True}
    }
