"""/healthz: 200 only when warehouse, Dagster and storage are all reachable."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import build_client


def test_all_reachable(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "components": {"warehouse": "ok", "dagster": "ok", "storage": "ok"}}


def test_dagster_down_is_503_with_component_status(client: TestClient, fake_dagster) -> None:
    fake_dagster.down = True
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "unavailable" and body["details"] is None
    assert (
        "warehouse=ok" in body["message"]
        and "dagster=unreachable" in body["message"]
        and "storage=ok" in body["message"]
    )


def test_missing_warehouse_is_503(settings, fake_dagster, tmp_path) -> None:
    broken = settings.model_copy(update={"warehouse_url": f"duckdb:///{tmp_path / 'absent' / 'nope.duckdb'}"})
    with build_client(broken, fake_dagster) as client:
        response = client.get("/healthz")
        assert response.status_code == 503 and "warehouse=unreachable" in response.json()["message"]
        # Report endpoints say "unavailable" too, not 500.
        from tests.api.conftest import auth

        report = client.get("/institution/reports/storyboard-usage?month=3&year=2026", headers=auth())
        assert report.status_code == 503 and report.json()["code"] == "unavailable"
        library = client.get("/institution/library/contents", headers=auth())
        assert library.status_code == 503
