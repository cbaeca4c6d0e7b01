"""What an operator sees in Dagster: warehouse lineage, the last-closed-month
check naming the institutions it misses, retries only for transient errors,
institution names next to partition ids, and the notifier resource."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from assets.contract import META_INSTITUTION_NAME
from assets.periods import partition_key
from assets.registry import REPORTS
from orchestration.definitions import build_definitions
from orchestration.defs.delivery.notifier import NotifierResource
from orchestration.defs.reports.completeness import JOB_NAME
from orchestration.defs.reports.monthly import last_closed_month
from orchestration.defs.reports.retry import transient_policy, transient_retry
from orchestration.institutions import list_institutions
from orchestration.settings import Settings
from orchestration.transient import is_transient
from orchestration.warehouse.client import Warehouse


def test_reports_are_downstream_of_the_warehouse_tables_they_read(tiny_warehouse: str) -> None:
    graph = build_definitions(Settings(warehouse_url=tiny_warehouse)).get_repository_def().asset_graph
    parents = {k.path[-1] for k in graph.get(dg.AssetKey(["storyboard_usage"])).parent_keys}
    assert {"storyboards", "stories", "story_views"} <= parents
    assert (
        graph.get(dg.AssetKey(["warehouse", "stories"])).is_external
        or not graph.get(dg.AssetKey(["warehouse", "stories"])).is_materializable
    )


def test_last_closed_month_check_names_the_missing_institutions(
    tiny_warehouse: str, instance: dg.DagsterInstance, report_dir: Path
) -> None:
    defs = build_definitions(Settings(warehouse_url=tiny_warehouse, storage_location=str(report_dir), schedule_hour=0))
    institutions = list_institutions(Warehouse(tiny_warehouse))
    first = institutions[0]
    month = last_closed_month(datetime.now(UTC), first.timezone, 0)
    # build storyboard_usage's last closed month for the first institution only
    result = defs.get_job_def("storyboard_usage_job").execute_in_process(
        instance=instance, partition_key=partition_key(first.id, month)
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("storyboard_usage")
    assert materialization.metadata[META_INSTITUTION_NAME].value == first.name

    check_run = defs.get_job_def(JOB_NAME).execute_in_process(instance=instance)
    evaluations = {e.asset_key.path[0]: e for e in check_run.get_asset_check_evaluations()}
    storyboard = evaluations["storyboard_usage"]
    missing = storyboard.metadata["missing_institutions"].value
    assert not storyboard.passed and storyboard.metadata["missing"].value == len(institutions) - 1
    assert first.id not in {m["id"] for m in missing}
    assert {m["name"] for m in missing} == {i.name for i in institutions[1:]}
    assert evaluations["course_catalog"].metadata["missing"].value == len(institutions)


def test_only_transient_infrastructure_errors_are_retried() -> None:
    assert is_transient(ConnectionResetError())
    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert is_transient(
        ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "Put")
    )
    assert is_transient(duckdb.IOException("Could not set lock on file"))
    try:
        try:
            raise TimeoutError("read timed out")
        except TimeoutError as inner:
            raise RuntimeError("query failed") from inner
    except RuntimeError as wrapped:
        assert is_transient(wrapped)  # the cause decides
    assert not is_transient(ValueError("unknown filters"))
    assert not is_transient(
        ClientError({"Error": {"Code": "NoSuchBucket"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "Put")
    )
    assert not is_transient(duckdb.CatalogException("Table x does not exist"))


def test_report_steps_retry_transient_errors_but_never_a_cancel(tiny_warehouse: str) -> None:
    """No op carries a retry policy (Dagster would apply it to the interrupt of a cancelled run,
    which then ended SUCCESS); the steps raise the transient retry themselves."""
    repo = build_definitions(Settings(warehouse_url=tiny_warehouse)).get_repository_def()
    adhoc = repo.get_job("course_catalog_adhoc").graph.node_named("build_report").definition
    asset = repo.get_job("course_catalog_job").graph.node_named("course_catalog").definition
    for op in (adhoc, asset):
        assert op.retry_policy is None
    policy = transient_policy(Settings().transient_retry_delay_seconds)
    assert policy.max_retries == 3 and policy.backoff == dg.Backoff.EXPONENTIAL and policy.delay == 10
    first = transient_retry(SimpleNamespace(retry_number=0), policy)  # type: ignore[arg-type]
    third = transient_retry(SimpleNamespace(retry_number=2), policy)  # type: ignore[arg-type]
    assert isinstance(first, dg.RetryRequested) and first.max_retries == 3
    assert first.seconds_to_wait is not None and third.seconds_to_wait is not None
    assert 0 < first.seconds_to_wait <= 2 * policy.delay < third.seconds_to_wait  # exponential


def test_transient_retry_delay_and_delivery_interval_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """LXP_TRANSIENT_RETRY_DELAY_SECONDS sets the first wait (the run worker's settings, which its
    definitions are built from); the delivery sensor ticks every LXP_DELIVERY_INTERVAL_SECONDS,
    never below the sensor daemon's 5 s loop."""
    monkeypatch.setenv("LXP_TRANSIENT_RETRY_DELAY_SECONDS", "0.5")
    policy = transient_policy(Settings().transient_retry_delay_seconds)
    assert policy.delay == 0.5
    waits = [transient_retry(SimpleNamespace(retry_number=n), policy).seconds_to_wait for n in range(3)]  # type: ignore[arg-type]
    assert all(w is not None and 0 < w <= 0.5 * 2 ** (n + 1) for n, w in enumerate(waits)), waits
    sensor = (
        build_definitions(Settings(delivery_interval_seconds=6)).get_repository_def().get_sensor_def("report_delivery")
    )
    assert sensor.minimum_interval_seconds == 6
    with pytest.raises(ValueError):
        Settings(delivery_interval_seconds=2)


def test_notifier_resource_without_channels_leaves_rows_waiting(tmp_path: Path) -> None:
    notifier = NotifierResource(ledger_url=f"sqlite:///{tmp_path / 'outbox.sqlite'}")
    box = notifier.ledger()
    try:
        stats = notifier.deliver(box, None, datetime.now(UTC), titles={})  # type: ignore[arg-type]
    finally:
        box.dispose()
    assert stats.disabled and stats.claimed == 0


@pytest.mark.parametrize("name", sorted(s.name for s in REPORTS.values()))
def test_every_report_job_runs_its_own_checks_only(name: str, tiny_warehouse: str) -> None:
    repo = build_definitions(Settings(warehouse_url=tiny_warehouse)).get_repository_def()
    assert [n.name for n in repo.get_job(f"{name}_job").graph.nodes] == [name]
