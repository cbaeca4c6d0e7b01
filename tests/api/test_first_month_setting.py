"""One settings object: ``first_month`` given to ``create_app`` and ``build_definitions`` is
what the Dagster partitions, the API's exact-month cache and launch, and the sync route's
partition-file answer all use (nothing reads ``LXP_FIRST_MONTH`` behind their back)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Services
from assets.contract import MONTH_DIMENSION
from assets.periods import DEFAULT_FIRST_MONTH
from orchestration.definitions import build_definitions
from orchestration.settings import Settings
from tests.api.conftest import auth
from tests.api.fake_dagster import FakeDagster

FIRST = "2025-03"  # not the default: a module reading the environment instead would see 2024-01
STORYBOARD = "/institution/reports/storyboard-usage"

assert FIRST != DEFAULT_FIRST_MONTH


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return Settings(**{**settings.model_dump(), "first_month": FIRST})


def _store(settings: Settings, key: str, content: bytes) -> None:
    path = Path(settings.storage_location) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _storyboard_file(settings: Settings, fake: FakeDagster, month: str) -> None:
    """A fresh materialization of institution 1's storyboard partition for ``month`` (YYYY-MM), file stored."""
    key = f"storyboard-usage/institution=1/{month}/storyboard-usage_1_{month}.xlsx"
    _store(settings, key, b"PK-fake-xlsx")
    meta = {"storage_key": key, "filename": f"storyboard-usage_1_{month}.xlsx", "rows": 3, "format": "xlsx"}
    fake.add_materialization("storyboard_usage", f"1|{month}-01", meta, age_seconds=60)


def _questions_file(settings: Settings, fake: FakeDagster, month: str) -> list[dict[str, str]]:
    key = f"questions/institution=1/{month}/questions_1_{month}.json"
    rows = [{"question_id": f"from-the-{month}-partition-file"}]
    _store(settings, key, json.dumps(rows).encode())
    meta = {"storage_key": key, "filename": f"questions_1_{month}.json", "rows": 1, "format": "json"}
    fake.add_materialization("questions", f"1|{month}-01", meta, age_seconds=30)
    return rows


def _month_ms(start: str, end: str) -> dict[str, int]:
    """A whole local month of institution 1 (São Paulo, UTC-3) as the sync body's inclusive ms range."""
    return {
        "start_date": int(datetime.fromisoformat(f"{start}T00:00:00-03:00").timestamp() * 1000),
        "end_date": int(datetime.fromisoformat(f"{end}T00:00:00-03:00").timestamp() * 1000) - 1,
    }


def test_the_dagster_month_partitions_start_at_the_given_first_month(settings: Settings) -> None:
    repo = build_definitions(settings).get_repository_def()
    partitions = repo.asset_graph.get(dg.AssetKey(["storyboard_usage"])).partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    months = partitions.get_partitions_def_for_dimension(MONTH_DIMENSION)
    assert months.get_first_partition_key() == f"{FIRST}-01"
    # every monthly asset shares the one partitions definition
    assert repo.asset_graph.get(dg.AssetKey(["questions"])).partitions_def is partitions


def test_the_api_cache_and_launch_follow_the_given_first_month(
    client: TestClient, fake_dagster: FakeDagster, settings: Settings
) -> None:
    assert client.app.state.settings is settings  # type: ignore[attr-defined]
    assert client.app.state.services.settings is settings  # type: ignore[attr-defined]
    # At the first month: the partition's file answers, nothing is launched.
    _storyboard_file(settings, fake_dagster, FIRST)
    assert client.get(f"{STORYBOARD}?month=3&year=2025", headers=auth()).json() == {"results": {"cached": True}}
    assert fake_dagster.launches() == []
    # The month before: not a partition (under the default first month it would be a cache hit),
    # so its materialization is not asked for and the ad-hoc job runs.
    _storyboard_file(settings, fake_dagster, "2025-02")
    before = client.get(f"{STORYBOARD}?month=2&year=2025", headers=auth()).json()["results"]
    (run,) = fake_dagster.launches()
    assert before == {"id": run.run_id} and run.job_name == "storyboard_usage_adhoc"
    assert "dagster/partition" not in run.tags
    # A month after the first, not cached: the partition job, with the partition tags.
    after = client.get(f"{STORYBOARD}?month=4&year=2025", headers=auth()).json()["results"]
    (partition_run,) = [r for r in fake_dagster.launches() if r.run_id == after["id"]]
    assert partition_run.job_name == "storyboard_usage_job"
    assert partition_run.tags["dagster/partition"] == "1|2025-04-01"


def test_the_sync_route_serves_partition_files_only_from_the_given_first_month(
    client: TestClient, fake_dagster: FakeDagster, settings: Settings
) -> None:
    cached = _questions_file(settings, fake_dagster, FIRST)
    at_first = client.post("/reports/questions", json=_month_ms("2025-03-01", "2025-04-01"), headers=auth())
    assert at_first.status_code == 200 and at_first.json() == cached
    # The month before has a file too, but it is not a partition month: computed (no questions then).
    _questions_file(settings, fake_dagster, "2025-02")
    before = client.post("/reports/questions", json=_month_ms("2025-02-01", "2025-03-01"), headers=auth())
    assert before.status_code == 200 and before.json() == []


def test_create_app_refuses_services_built_from_other_settings(settings: Settings) -> None:
    services = Services.from_settings(Settings(**settings.model_dump()))  # equal values, another object
    try:
        with pytest.raises(ValueError, match="other settings"):
            create_app(settings, services=services)
    finally:
        services.close()
