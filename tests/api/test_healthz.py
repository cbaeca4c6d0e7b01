"""/livez, /readyz and /healthz.

/livez checks nothing; /readyz gates on the ledger, the storage and the warehouse (Dagster only
reported); /healthz gates on everything, Dagster included. Every check has a deadline.
"""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from api.probes import PROBE_DEADLINE_SECONDS, Prober
from api.services import get_ledger, get_warehouse
from orchestration.ledger import Ledger
from tests.api.conftest import auth, build_client
from tests.services.s3 import free_port

READY = {"ledger": "ok", "storage": "ok", "warehouse": "ok"}


def test_all_reachable(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "components": READY, "info": {"dagster": "ok"}}
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "components": {**READY, "dagster": "ok"}}


def test_dagster_down_is_not_a_readiness_gate(client: TestClient, fake_dagster) -> None:
    fake_dagster.down = True
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["components"] == READY
    assert ready.json()["info"] == {"dagster": "unreachable (DagsterUnavailable)"}
    # /healthz, the overview, still says Dagster is down.
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "unavailable" and body["details"] is None
    assert (
        "warehouse=ok" in body["message"]
        and "dagster=unreachable" in body["message"]
        and "storage=ok" in body["message"]
        and "ledger=ok" in body["message"]
    )


def test_missing_warehouse_is_503(settings, fake_dagster, tmp_path) -> None:
    broken = settings.model_copy(update={"warehouse_url": f"duckdb:///{tmp_path / 'absent' / 'nope.duckdb'}"})
    with build_client(broken, fake_dagster) as client:
        assert client.get("/livez").status_code == 200  # a restart would not bring the warehouse back
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == "unavailable"
        assert "warehouse=unreachable" in ready.json()["message"] and "ledger=ok" in ready.json()["message"]
        response = client.get("/healthz")
        assert response.status_code == 503 and "warehouse=unreachable" in response.json()["message"]
        # Report endpoints say "unavailable" too, not 500.
        report = client.get("/institution/reports/storyboard-usage?month=3&year=2026", headers=auth())
        assert report.status_code == 503 and report.json()["code"] == "unavailable"
        library = client.get("/institution/library/contents", headers=auth())
        assert library.status_code == 503


def test_ledger_down_makes_the_replica_unready(client: TestClient) -> None:
    # Nothing listens on that port: every async route would fail, so the replica is not ready.
    down = Ledger(f"postgresql://lxp:lxp@127.0.0.1:{free_port()}/ledger")
    client.app.dependency_overrides[get_ledger] = lambda: down
    try:
        started = time.monotonic()
        ready = client.get("/readyz")
        assert time.monotonic() - started < PROBE_DEADLINE_SECONDS + 1
        assert ready.status_code == 503, ready.text
        assert "ledger=unreachable (OperationalError)" in ready.json()["message"]
        assert "storage=ok" in ready.json()["message"] and "warehouse=ok" in ready.json()["message"]
    finally:
        client.app.dependency_overrides.clear()
        down.engine.dispose()
    assert client.get("/readyz").status_code == 200


class _HungWarehouse:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def ping(self) -> None:
        self.calls += 1
        self.release.wait(30)


def test_a_hung_backend_cannot_hold_the_probe(client: TestClient) -> None:
    hung = _HungWarehouse()
    client.app.dependency_overrides[get_warehouse] = lambda: hung
    try:
        for _ in range(2):
            started = time.monotonic()
            ready = client.get("/readyz")
            took = time.monotonic() - started
            assert (
                ready.status_code == 503
                and f"warehouse=unreachable (timeout after {PROBE_DEADLINE_SECONDS:g}s)" in (ready.json()["message"])
            )
            assert PROBE_DEADLINE_SECONDS - 0.1 <= took < PROBE_DEADLINE_SECONDS + 1, took
        assert hung.calls == 1  # the second probe waited for the hung check instead of starting another
    finally:
        hung.release.set()
        client.app.dependency_overrides.clear()
    assert client.get("/readyz").status_code == 200


def test_prober_runs_checks_concurrently_and_reports_errors() -> None:
    prober = Prober(deadline=1.0)

    def slow() -> None:
        time.sleep(0.5)

    def broken() -> None:
        raise ConnectionError("refused")

    started = time.monotonic()
    assert prober.run({"a": slow, "b": slow, "c": broken}) == {
        "a": "ok",
        "b": "ok",
        "c": "unreachable (ConnectionError)",
    }
    assert time.monotonic() - started < 0.9  # in parallel, not 1 s in a row
