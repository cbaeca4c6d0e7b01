"""Dagster unreachable (connection refused or timed out): what still works and what says 503.

The synchronous reports and the library never need Dagster; the async routes answer 503
``unavailable`` (Encore body) at once; a job poll is 503 too, unless the ledger already knows
the run succeeded. The real stack's version of this is tests/e2e/test_dagster_down.py.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.dagster_client import DagsterClient, DagsterUnavailable
from api.services import Services
from tests.api.conftest import auth
from tests.api.fake_dagster import FakeDagster
from tests.services.s3 import free_port

STORYBOARD = "/institution/reports/storyboard-usage?month=3&year=2026"
CATALOG = "/institution/reports/catalog?start_date=2026-01-01&end_date=2026-01-15"


class Outage:
    """Wraps the fake: ``mode`` None (up), "refused" or "timeout"."""

    def __init__(self, fake: FakeDagster) -> None:
        self.fake = fake
        self.mode: str | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        return self.fake.handle(request)


@pytest.fixture
def outage(fake_dagster: FakeDagster) -> Outage:
    return Outage(fake_dagster)


@pytest.fixture
def api(settings, outage: Outage) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    dagster = DagsterClient("http://dagster.test", transport=httpx.MockTransport(outage.handle))
    services = Services.from_settings(settings, dagster=dagster)
    with TestClient(create_app(settings, services=services), raise_server_exceptions=False) as client:
        yield client


def _ms(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize("mode", ["refused", "timeout"])
def test_sync_reports_and_library_answer_async_routes_say_unavailable(
    api: TestClient, outage: Outage, fake_dagster: FakeDagster, mode: str
) -> None:
    outage.mode = mode
    body = {"start_date": _ms(2026, 3, 1), "end_date": _ms(2026, 3, 31) - 1}
    sync = api.post("/reports/questions", json=body, headers=auth())
    assert sync.status_code == 200, sync.text
    assert isinstance(sync.json(), list)
    assert api.get("/institution/library/contents", headers=auth()).status_code == 200
    for url in (STORYBOARD, CATALOG):
        response = api.get(url, headers=auth())
        assert response.status_code == 503, response.text
        assert response.json() == {
            "code": "unavailable",
            "message": "The report scheduler (Dagster) is unavailable; nothing was queued. Try again later",
            "details": None,
        }
    assert api.get("/livez").status_code == 200
    assert api.get("/readyz").json()["info"] == {"dagster": "unreachable (DagsterUnavailable)"}
    assert fake_dagster.launches() == []
    outage.mode = None
    assert "id" in api.get(STORYBOARD, headers=auth()).json()["results"]


def test_job_poll_while_dagster_is_down(api: TestClient, outage: Outage, fake_dagster: FakeDagster, settings) -> None:  # type: ignore[no-untyped-def]
    running = api.get(STORYBOARD, headers=auth()).json()["results"]["id"]
    done = api.get(CATALOG, headers=auth()).json()["results"]["id"]
    key = "catalog/institution=1/adhoc/x/c.xlsx"
    path = settings.home / "reports" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK-fake-xlsx")
    fake_dagster.finish(done, "SUCCESS", **{"lxp/storage_key": key, "lxp/filename": "c.xlsx", "lxp/rows": "4"})
    assert api.get(f"/institution/reports/jobs/{done}", headers=auth()).json()["status"] == "succeeded"

    outage.mode = "refused"
    unknown = api.get(f"/institution/reports/jobs/{running}", headers=auth())
    assert unknown.status_code == 503
    assert unknown.json() == {
        "code": "unavailable",
        "message": "The report scheduler (Dagster) is unavailable; the job's status is unknown for now. "
        "Try again later",
        "details": None,
    }
    # The ledger recorded the finished run's file when it was polled: that answer needs no Dagster.
    known = api.get(f"/institution/reports/jobs/{done}", headers=auth())
    assert known.status_code == 200, known.text
    job = known.json()
    assert (job["status"], job["filename"], job["rows"]) == ("succeeded", "c.xlsx", 4)
    assert job["url"].startswith("http://testserver/downloads/")
    assert api.get("/institution/reports/jobs", headers=auth()).status_code == 503  # history needs run statuses


def test_refused_and_silent_webservers_are_unavailable_within_the_timeouts() -> None:
    refused = DagsterClient(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(DagsterUnavailable, match="ConnectError"):
        refused.ping()
    assert time.monotonic() - started < 1
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers: a hung webserver
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hung = DagsterClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(DagsterUnavailable, match="ReadTimeout"):
            hung.ping()
        assert time.monotonic() - started < 1.5
