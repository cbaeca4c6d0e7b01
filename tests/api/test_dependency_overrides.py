"""Each backend is a FastAPI dependency: a test can swap one without rebuilding the others."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.services import get_dagster, get_ledger
from orchestration.ledger import Asked, Asker, Ledger
from tests.api.conftest import auth


class _DownDagster:
    def ping(self) -> None:
        raise ConnectionError("scheduler down")


def test_overriding_one_backend_changes_only_that_backend(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    client.app.dependency_overrides[get_dagster] = _DownDagster
    try:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert "dagster=unreachable (ConnectionError)" in response.json()["message"]
        assert "warehouse=ok" in response.json()["message"] and "storage=ok" in response.json()["message"]
    finally:
        client.app.dependency_overrides.clear()
    assert client.get("/healthz").status_code == 200


def test_the_job_routes_read_the_ledger_they_are_given(client: TestClient, tmp_path) -> None:
    other = Ledger(f"sqlite:///{tmp_path / 'other.sqlite'}")
    other.migrate()

    other.requests.add_requester(Asked(1, "catalog", "k" * 64, {"x": 1}), Asker(10, "alfa"), job_id="run-elsewhere")
    assert client.get("/institution/reports/jobs", headers=auth()).json()["total"] == 0
    client.app.dependency_overrides[get_ledger] = lambda: other
    try:
        page = client.get("/institution/reports/jobs", headers=auth()).json()
        assert page["total"] == 1 and page["items"][0]["id"] == "run-elsewhere"
    finally:
        client.app.dependency_overrides.clear()
        other.dispose()
