"""Materialize report partitions in process against the generated tiny warehouse
and read the files back with an independent reader."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import openpyxl
import pytest

from assets.periods import month_bounds, previous_month
from assets.registry import REPORTS
from orchestration.defs.reports.asset import report_asset
from orchestration.defs.reports.jobs import adhoc_job
from orchestration.settings import Settings
from orchestration.warehouse.client import Warehouse

LAST_MONTH = previous_month(datetime.now(UTC).date())


def _latest(instance: dg.DagsterInstance, name: str, partition: str) -> dg.AssetMaterialization:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey([name]), asset_partitions=[partition]), limit=1
    ).records
    assert records, f"no materialization for {name} {partition}"
    return records[0].event_log_entry.asset_materialization


def _read_xlsx(path: Path) -> list[tuple]:
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = [tuple(r) for ws in wb.worksheets for r in ws.iter_rows(values_only=True)]
    wb.close()
    return rows


def test_storyboard_partition_file_matches_warehouse(instance, resources, report_dir, tiny_warehouse) -> None:
    spec = REPORTS["storyboard_usage"]
    pk = f"1|{LAST_MONTH:%Y-%m-%d}"
    result = dg.materialize([report_asset(spec, Settings())], instance=instance, resources=resources, partition_key=pk)
    assert result.success
    meta = _latest(instance, "storyboard_usage", pk).metadata
    key = meta["storage_key"].value
    path = report_dir / key
    assert path.exists() and path.stat().st_size == meta["bytes"].value
    rows = _read_xlsx(path)
    assert list(rows[0]) == spec.headers  # exact seed 000 headers, in order
    assert len(rows) - 1 == meta["rows"].value > 0
    # independent count from the warehouse: distinct (user, storyboard) with a view or reaction in the local month
    start, end = month_bounds(LAST_MONTH, "America/Sao_Paulo")
    wh = Warehouse(tiny_warehouse)
    tz = wh.query("SELECT timezone FROM institutions WHERE id = 1")["timezone"][0]
    start, end = month_bounds(LAST_MONTH, tz)
    params = {"i": 1, "s": start.astimezone(UTC).replace(tzinfo=None), "e": end.astimezone(UTC).replace(tzinfo=None)}
    expected = wh.query(
        """SELECT COUNT(*) AS n FROM (
             SELECT user_id, storyboard_id FROM story_views WHERE institution_id = :i AND viewed_at >= :s AND viewed_at < :e
             UNION
             SELECT user_id, storyboard_id FROM storyboard_reactions WHERE institution_id = :i AND reacted_at >= :s AND reacted_at < :e)""",
        params,
    )["n"][0]
    assert meta["rows"].value == expected
    assert "|" in meta["preview"].value  # markdown preview for the UI
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"all_partitions_built": True, "file_stored": True}


def test_batched_run_materializes_each_partition_with_its_own_file(instance, resources, report_dir) -> None:
    """A multi-partition range in ONE run (as BackfillPolicy.multi_run batches it)."""
    spec = REPORTS["course_catalog"]
    asset = report_asset(spec, Settings())
    defs = dg.Definitions(
        assets=[asset], jobs=[dg.define_asset_job("batch", selection=[asset.key])], resources=resources
    )
    job = defs.resolve_job_def("batch")
    month = f"{LAST_MONTH:%Y-%m-%d}"
    tags = {
        "dagster/asset_partition_range_start": f"1|{month}",
        "dagster/asset_partition_range_end": f"3|{month}",
    }
    result = job.execute_in_process(instance=instance, tags=tags)
    assert result.success
    keys = set()
    for inst_id in (1, 2, 3):
        meta = _latest(instance, "course_catalog", f"{inst_id}|{month}").metadata
        keys.add(meta["storage_key"].value)
        assert (report_dir / meta["storage_key"].value).exists()
    assert len(keys) == 3


def test_adhoc_job_with_range_and_school_filter(instance, resources, report_dir, tiny_warehouse) -> None:
    spec = REPORTS["course_catalog"]
    wh = Warehouse(tiny_warehouse)
    school = wh.query("SELECT s.id, s.name FROM schools s WHERE s.institution_id = 1 ORDER BY s.id LIMIT 1").row(
        0, named=True
    )
    linked = wh.query(
        "SELECT COUNT(DISTINCT course_id) AS n FROM course_schools WHERE institution_id = 1 AND school_id = :s",
        {"s": school["id"]},
    )["n"][0]
    start = datetime(2020, 1, 1).astimezone(UTC).isoformat()
    end = datetime.now(UTC).isoformat()
    config = {
        "institution_id": 1,
        "start": start,
        "end": end,
        "filters_json": json.dumps({"school_ids": [int(school["id"])]}),
        "fmt": "csv",
    }
    result = adhoc_job(spec, Settings()).execute_in_process(
        run_config={"ops": {"build_report": {"config": config}}}, resources=resources, instance=instance
    )
    assert result.success
    out = result.output_for_node("build_report")
    with open(report_dir / out["storage_key"], encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == spec.csv_headers
    assert len(rows) - 1 == linked == out["rows"]
    escola = spec.csv_headers.index("Escola")
    assert all(school["name"] in r[escola] for r in rows[1:])
    run = instance.get_run_by_id(result.run_id)
    assert run.tags["lxp/storage_key"] == out["storage_key"]


def test_unknown_institution_fails_visibly(instance, resources) -> None:
    spec = REPORTS["storyboard_usage"]
    instance.add_dynamic_partitions("institution", ["999"])
    result = dg.materialize(
        [report_asset(spec, Settings())],
        instance=instance,
        resources=resources,
        partition_key=f"999|{LAST_MONTH:%Y-%m-%d}",
        raise_on_error=False,
    )
    assert not result.success


def test_adhoc_job_refuses_a_filter_the_report_does_not_offer(instance, resources) -> None:
    config = {
        "institution_id": 1,
        "start": "2026-01-01T00:00:00-03:00",
        "end": "2026-02-01T00:00:00-03:00",
        "filters_json": json.dumps({"group_ids": ["x"]}),
        "fmt": "xlsx",
    }
    result = adhoc_job(REPORTS["course_catalog"], Settings()).execute_in_process(
        run_config={"ops": {"build_report": {"config": config}}},
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "group_ids" in failure.event_specific_data.error.message


def test_adhoc_range_without_offset_is_institution_local_and_must_be_ordered() -> None:
    from assets.contract import AdhocParams
    from assets.request import RequestedReport
    from assets.spec import Institution

    spec, sp = REPORTS["course_catalog"], Institution(1, "Demo", "demo", "America/Sao_Paulo")

    def bounds(start: str, end: str) -> tuple[datetime | None, datetime | None]:
        request = RequestedReport.from_adhoc(spec, sp, AdhocParams(institution_id=1, start=start, end=end))
        return request.start, request.end

    start, end = bounds("2026-10-01T00:00", "2026-11-01T00:00")
    assert start is not None and start.astimezone(UTC) == datetime(2026, 10, 1, 3, tzinfo=UTC)
    assert end is not None and end.astimezone(UTC) == datetime(2026, 11, 1, 3, tzinfo=UTC)
    assert bounds("", "") == (None, None)
    with pytest.raises(ValueError, match="before"):
        bounds("2026-11-01T00:00", "2026-10-01T00:00")
    with pytest.raises(ValueError, match="both"):
        bounds("2026-11-01T00:00", "")


def test_nested_report_renders_its_document_without_building_the_flat_table(tiny_warehouse, tmp_path) -> None:
    """groups_usage json/xlsx come from the summary alone (the flat table would compute the aggregates twice)."""
    from assets.request import RequestedReport
    from assets.writers.render import render_file
    from orchestration.institutions import load_institution
    from orchestration.produce import compute

    spec = REPORTS["groups_usage"]
    wh = Warehouse(tiny_warehouse)
    group_ids = wh.query("SELECT id FROM groups WHERE institution_id = 1 ORDER BY id")["id"].to_list()
    request = RequestedReport.for_month(
        spec, load_institution(wh, 1), LAST_MONTH, filters={"group_ids": group_ids}
    ).inputs(Settings().report_options())
    computed = compute(spec, request, wh)
    rendered = render_file(spec, computed, request, "json", tmp_path / "g.json")
    assert "frame" not in computed.__dict__  # never built
    document = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert rendered.rows == len(document["students"]) and "total_questions" in rendered.preview_md
    csv_rendered = render_file(spec, computed, request, "csv", tmp_path / "g.csv")
    assert csv_rendered.rows == computed.frame.height == rendered.rows  # same students either way
