"""A ranged run (one run, many institutions: how BackfillPolicy.multi_run batches a backfill) extracts
each report's inputs once per chunk of institutions (``orchestration.batch``); every partition's file
must be byte-identical to the one a one-partition run writes, on DuckDB and on PostgreSQL.

The warehouse: the generator's tiny scale with 4 institutions (zones east and west of UTC, so the
month's UTC bounds differ within the range), plus one institution without any data and one with a
misconfigured timezone, which fails alone in both paths.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.batching import NotBatchable, batch_query
from assets.periods import previous_month
from assets.registry import REPORTS
from assets.request import RequestedReport
from assets.spec import Institution
from assets.writers.render import renders_summary
from orchestration.batch import ROW_BYTES, compute_many, plan_chunks
from orchestration.defs.reports.asset import report_asset
from orchestration.defs.resources import ReportOptionsResource, ReportStorageResource, WarehouseResource
from orchestration.institutions import list_institutions
from orchestration.produce import compute
from orchestration.settings import Settings
from orchestration.warehouse.client import Warehouse
from orchestration.warehouse.generate import generate, with_institutions
from orchestration.warehouse.load import load_duckdb, load_postgres
from tests.services.postgres import postgres_db, postgres_url  # noqa: F401 - fixtures

LAST_MONTH = previous_month(datetime.now(UTC).date())
MONTH = f"{LAST_MONTH:%Y-%m-%d}"
EMPTY, BROKEN = 5, 6
MONTHLY = [s for s in REPORTS.values() if s.monthly]


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    out = generate(with_institutions("tiny", 4), 42)
    extra = pl.DataFrame(
        {
            "id": [EMPTY, BROKEN],
            "name": ["Sem Dados", "Fuso Errado"],
            "subdomain": ["vazia", "errada"],
            "timezone": ["Asia/Tokyo", "Mars/Olympus_Mons"],
        }
    )
    out["institutions"] = pl.concat([out["institutions"], extra.cast(dict(out["institutions"].schema))])
    return out


def _order(frames: dict[str, pl.DataFrame]) -> list[str]:
    """Registration order of the institution partitions: by zone, as the institution sync sorts them."""
    return [str(i) for i in frames["institutions"].sort("timezone", "id")["id"]]


def _resources(url: str, report_dir: Path) -> dict:
    return {
        "warehouse": WarehouseResource(url=url),
        "storage": ReportStorageResource(
            location=str(report_dir), public_base_url="http://testserver", link_secret="k"
        ),
        "options": ReportOptionsResource(options_json=json.dumps(Settings().report_options())),
    }


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _both_ways(url: str, order: list[str], tmp_path: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    assets = [report_asset(spec, Settings()) for spec in MONTHLY]

    batched_dir, single_dir = tmp_path / "batched", tmp_path / "single"
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("institution", order)
    defs = dg.Definitions(
        assets=assets,
        jobs=[dg.define_asset_job("range", selection=[a.key for a in assets])],
        resources=_resources(url, batched_dir),
    )
    tags = {
        "dagster/asset_partition_range_start": f"{order[0]}|{MONTH}",
        "dagster/asset_partition_range_end": f"{order[-1]}|{MONTH}",
    }
    result = defs.resolve_job_def("range").execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    assert not result.success  # the misconfigured institution's partitions fail...
    for check in result.get_asset_check_evaluations():
        if check.check_name == "all_partitions_built":
            errors = check.metadata["errors"].value
            assert list(errors) == [f"{BROKEN}|{MONTH}"], errors  # ...alone
    materialized = {
        (m.asset_key.path[-1], m.partition) for m in result.get_asset_materialization_events() if m.partition
    }
    assert materialized == {(s.name, f"{i}|{MONTH}") for s in MONTHLY for i in order if i != str(BROKEN)}

    single_instance = dg.DagsterInstance.ephemeral()
    single_instance.add_dynamic_partitions("institution", order)
    for inst in order:
        one = dg.materialize(
            assets,
            instance=single_instance,
            resources=_resources(url, single_dir),
            partition_key=f"{inst}|{MONTH}",
            raise_on_error=False,
        )
        assert one.success == (inst != str(BROKEN))
    return _files(batched_dir), _files(single_dir)


def _assert_identical(batched: dict[str, bytes], single: dict[str, bytes], order: list[str]) -> None:
    assert len(single) == len(MONTHLY) * (len(order) - 1)
    assert sorted(batched) == sorted(single)
    differing = [name for name in single if batched[name] != single[name]]
    assert not differing
    assert any(f"_{EMPTY}_" in name for name in single)  # the institution without data still gets its files


def test_batched_range_matches_single_partitions_duckdb(frames, tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    load_duckdb(frames, path)
    order = _order(frames)
    _assert_identical(*_both_ways(f"duckdb:///{path}", order, tmp_path), order)


@pytest.mark.services
def test_batched_range_matches_single_partitions_postgres(frames, postgres_db: str, tmp_path: Path) -> None:  # noqa: F811
    load_postgres(frames, postgres_db)
    order = _order(frames)
    _assert_identical(*_both_ways(postgres_db, order, tmp_path), order)


def test_batch_query_rewrites_every_institution_predicate() -> None:
    sql = REPORTS["bookings"].queries["users"]
    batched = batch_query(sql, [3, 1])
    assert batched.count("IN (1, 3)") == 4 and ":institution_id" not in batched
    assert "SELECT u.institution_id AS __lxp_institution, u.id" in batched
    enrollments = batch_query(REPORTS["course_catalog"].queries["enrollments"], [2])
    assert enrollments.count("enrollments.institution_id AS __lxp_institution") == 2  # both UNION ALL branches
    with pytest.raises(NotBatchable):
        batch_query("SELECT id FROM schools", [1])


def test_chunks_share_period_bounds_and_respect_the_memory_budget() -> None:
    spec = REPORTS["questions"]
    zones = ["America/Sao_Paulo", "America/Sao_Paulo", "Asia/Tokyo", "America/Sao_Paulo", "America/Sao_Paulo"]
    requests = [
        RequestedReport.for_month(spec, Institution(n, f"i{n}", f"s{n}", tz), LAST_MONTH).inputs({})
        for n, tz in enumerate(zones, start=1)
    ]
    rows = {1: 10, 2: 10, 3: 10, 4: 10_000_000, 5: 10}  # institution 4 alone is over the budget
    chunks = plan_chunks(requests, rows, budget_bytes=1_000_000 * ROW_BYTES)
    assert [c.institution_ids for c in chunks] == [[1, 2], [4], [5], [3]]
    for chunk in chunks:
        for request in chunk.requests:
            assert {k: v for k, v in request.query_params().items() if k != "institution_id"} == chunk.params


def test_every_monthly_report_is_built_in_one_pass_per_chunk(frames, tmp_path: Path) -> None:
    """The batch builders really run (a failing one falls back to one build per institution, which the
    file comparison above cannot tell apart): every institution's table or document comes from its
    chunk's one pass and equals the one-institution build of its own extraction. All institutions are
    put in UTC-3 so they share one chunk, in two zones (one pass per zone inside the chunk)."""
    path = tmp_path / "w.duckdb"
    load_duckdb(frames, path)
    warehouse = Warehouse(f"duckdb:///{path}")
    as_of = datetime.now(UTC)
    zones = ["America/Sao_Paulo", "America/Recife"]
    institutions = [
        replace(i, timezone=zones[n % 2])
        for n, i in enumerate(i for i in list_institutions(warehouse) if i.id != BROKEN)
    ]
    for spec in MONTHLY:
        requests = [RequestedReport.for_month(spec, i, LAST_MONTH) for i in institutions]
        inputs = [r.inputs(Settings().report_options(), as_of) for r in requests]
        seen = 0
        for pos, computed in compute_many(spec, inputs, warehouse):
            assert not isinstance(computed, Exception)
            own = compute(spec, inputs[pos], warehouse)
            if renders_summary(spec, requests[pos].fmt):
                assert computed.summarized is not None, spec.name
                assert spec.summary is not None and computed.summarized == spec.summary(own.frames, inputs[pos])
            else:
                assert computed.built is not None, spec.name
                assert computed.frame.equals(own.frame), spec.name
            seen += 1
        assert seen == len(institutions)
