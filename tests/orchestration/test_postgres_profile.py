"""The production profile on a real PostgreSQL server: Dagster instance storage in
PostgreSQL and the warehouse in PostgreSQL give the same report as DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import openpyxl
import pytest

from assets.periods import previous_month
from assets.registry import REPORTS
from orchestration.defs.reports.asset import report_asset
from orchestration.defs.resources import WarehouseResource
from orchestration.instance_config import postgres_profile
from orchestration.settings import Settings
from orchestration.warehouse.generate import generate
from orchestration.warehouse.load import load_postgres
from tests.services.postgres import create_database, postgres_url  # noqa: F401 - fixture

pytestmark = pytest.mark.services


def _rows(path: Path) -> list[tuple]:
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = [tuple(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    return rows


def test_postgres_instance_and_warehouse_match_duckdb(
    postgres_url,  # noqa: F811 - the imported fixture
    resources,
    report_dir,
    tiny_warehouse,
    tmp_path,
    monkeypatch,
) -> None:
    warehouse_url = create_database(postgres_url)
    load_postgres(generate("tiny", 42), warehouse_url)

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(postgres_profile(Settings()), encoding="utf-8")
    monkeypatch.setenv(
        "DAGSTER_PG_URL", create_database(postgres_url).replace("postgresql://", "postgresql+psycopg2://", 1)
    )
    month = previous_month(datetime.now(UTC).date())
    pk = f"1|{month:%Y-%m-%d}"
    spec = REPORTS["storyboard_usage"]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions("institution", ["1", "2", "3"])
        pg_resources = {**resources, "warehouse": WarehouseResource(url=warehouse_url)}
        assert dg.materialize(
            [report_asset(spec, Settings())], instance=instance, resources=pg_resources, partition_key=pk
        ).success
        rec = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["storyboard_usage"]), asset_partitions=[pk]), limit=1
        ).records[0]
        pg_key = rec.event_log_entry.asset_materialization.metadata["storage_key"].value
        pg_rows = _rows(report_dir / pg_key)
        (report_dir / pg_key).rename(report_dir / "pg.xlsx")

    duck = dg.DagsterInstance.ephemeral()
    duck.add_dynamic_partitions("institution", ["1"])
    assert dg.materialize(
        [report_asset(spec, Settings())], instance=duck, resources=resources, partition_key=pk
    ).success
    assert _rows(report_dir / pg_key) == pg_rows  # same cells from both engines
    assert len(pg_rows) > 1
