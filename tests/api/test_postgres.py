"""The same API on PostgreSQL: warehouse queries (library search, tenant checks, a sync report)
and the requests store / outbox (dedup) on a real PostgreSQL server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import psycopg2
import pytest

from tests.api.conftest import FIXTURE_SQL, SCHEMA, auth, build_client
from tests.services.postgres import postgres_db, postgres_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.services


@pytest.fixture
def pg_client(settings, fake_dagster, postgres_db: str):  # noqa: F811
    with psycopg2.connect(postgres_db) as con, con.cursor() as cur:
        cur.execute(SCHEMA.read_text())
        cur.execute(FIXTURE_SQL)
    # The outbox module takes the URL as is, so name the driver (psycopg2) explicitly.
    outbox_url = postgres_db.replace("postgresql://", "postgresql+psycopg2://")
    pg_settings = settings.model_copy(update={"warehouse_url": postgres_db, "ledger_url": outbox_url})
    with build_client(pg_settings, fake_dagster) as client:
        yield client


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", [3, 2, 1]),
        ("?search=introducao", [1]),
        ("?search=INTRODUÇÃO", [1]),
        ("?search=avaliacao", [2]),
        ("?search=100%25", [3]),
        ("?search=_", []),
        ("?cycleId=180&status=0", [2]),
        ("?limit=1&page=2", [2]),
    ],
)
def test_library_on_postgres(pg_client, query: str, expected: list[int]) -> None:
    response = pg_client.get(f"/institution/library/contents{query}", headers=auth())
    assert response.status_code == 200, response.text
    assert [i["id"] for i in response.json()["items"]] == expected
    assert response.json()["total"] == (len(expected) if "limit" not in query else 3)


def test_library_item_identical_on_both_engines(pg_client, client) -> None:
    pg = pg_client.get("/institution/library/contents", headers=auth()).json()
    duck = client.get("/institution/library/contents", headers=auth()).json()
    assert pg == duck


def test_sync_report_and_tenant_check_on_postgres(pg_client, client) -> None:
    march = {
        "start_date": int(datetime.fromisoformat("2026-03-01T00:00:00-03:00").timestamp() * 1000),
        "end_date": int(datetime.fromisoformat("2026-04-01T00:00:00-03:00").timestamp() * 1000) - 1,
    }
    pg = pg_client.post("/reports/questions", json=march, headers=auth())
    assert pg.status_code == 200 and pg.json() == client.post("/reports/questions", json=march, headers=auth()).json()
    refused = pg_client.post("/reports/questions", json={**march, "group_ids": ["g-x"]}, headers=auth())
    assert refused.status_code == 400


def test_dedup_on_postgres_store(pg_client, fake_dagster) -> None:
    fake_dagster.launch_delay = 0.2

    def call(user: int) -> str:
        response = pg_client.get(
            "/institution/reports/storyboard-usage?month=3&year=2026", headers=auth({"userId": user})
        )
        assert response.status_code == 200, response.text
        return response.json()["results"]["id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = set(pool.map(call, range(3000, 3020)))
    assert len(ids) == 1 and len(fake_dagster.launches()) == 1
    assert len(pg_client.app.state.services.ledger.requests.recipients(ids.pop())) == 20
