"""Institution sync, the monthly backfill trigger and the definitions as a whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from assets.registry import REPORTS
from assets.spec import Institution
from orchestration.definitions import build_definitions
from orchestration.defs.institutions.sync_sensor import institution_sync
from orchestration.defs.reports.monthly import build_monthly_sensor, due_months
from orchestration.defs.resources import WarehouseResource
from orchestration.institutions import list_institutions, unregistered
from orchestration.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

SP = Institution(1, "Demo", "demo", "America/Sao_Paulo")
NY = Institution(2, "NY", "ny", "America/New_York")
TOKYO = Institution(3, "Tokyo", "tk", "Asia/Tokyo")
FIRST = date(2024, 1, 1)  # the default first partition month


def test_due_months_respects_each_institution_timezone() -> None:
    # 2026-03-01 04:00 UTC: Tokyo is at 13:00 on Mar 1, São Paulo at 01:00, New York at 23:00 on Feb 28.
    now = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
    done = {"1": "2026-01", "2": "2026-01", "3": "2026-01"}
    assert due_months(now, [SP, NY, TOKYO], hour=3, done=done) == {date(2026, 2, 1): [3]}
    # 07:00 UTC: São Paulo reached 04:00 local on day 1.
    later = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    assert due_months(later, [SP, NY, TOKYO], hour=3, done={**done, "3": "2026-02"}) == {date(2026, 2, 1): [1]}
    # Nothing twice; a daemon down on day 1 catches up on day 5.
    assert due_months(later, [SP], 3, {"1": "2026-02"}) == {}
    assert due_months(datetime(2026, 3, 5, tzinfo=UTC), [NY], 3, {"2": "2026-01"}) == {date(2026, 2, 1): [2]}


def test_institution_sync_adds_missing_partitions(tiny_warehouse: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("institution", ["1"])
    ctx = dg.build_sensor_context(instance=instance, resources={"warehouse": WarehouseResource(url=tiny_warehouse)})
    result = institution_sync(ctx)
    assert isinstance(result, dg.SensorResult)
    (req,) = result.dynamic_partitions_requests
    assert req.partitions_def_name == "institution" and list(req.partition_keys) == ["2", "3"]


def test_monthly_sensor_requests_one_backfill_for_every_institution_and_monthly_report(tiny_warehouse: str) -> None:
    from orchestration.settings import Settings

    defs = build_definitions(Settings(warehouse_url=tiny_warehouse))
    repo = defs.get_repository_def()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("institution", ["1", "2", "3"])
    sensor = build_monthly_sensor(list(REPORTS.values()), hour=0, first_month=FIRST)
    ctx = dg.build_sensor_context(
        instance=instance, repository_def=repo, resources={"warehouse": WarehouseResource(url=tiny_warehouse)}
    )
    result = sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    monthly = {s.name for s in REPORTS.values() if s.monthly}
    requested = {
        (ap.asset_key.path[0], str(ap.partition_key))
        for r in result.run_requests
        for ap in r.asset_graph_subset.iterate_asset_partitions()
    }
    months = {pk.split("|")[1] for _, pk in requested}
    assert len(months) <= 2  # institutions in far zones may still be in the previous month around day 1
    assert {name for name, _ in requested} == monthly
    assert {pk.split("|")[0] for _, pk in requested} == {"1", "2", "3"}
    assert len(requested) == len(monthly) * 3
    assert all(r.tags["dagster/priority"] == "-1" for r in result.run_requests)  # API requests go first
    cursor = json.loads(result.cursor)
    assert set(cursor) == {"1", "2", "3"}
    # The same month is never requested twice.
    again = sensor(
        dg.build_sensor_context(
            instance=instance,
            repository_def=repo,
            cursor=result.cursor,
            resources={"warehouse": WarehouseResource(url=tiny_warehouse)},
        )
    )
    assert isinstance(again, dg.SkipReason)


def test_monthly_sensor_registers_missing_institutions_in_the_same_tick(tiny_warehouse: str) -> None:
    """A fresh instance whose institution_sync has not ticked yet: the monthly sensor adds the
    institutions itself (in institution_sync's order) and requests their month at once, instead of
    skipping until its next tick five minutes later."""
    repo = build_definitions(Settings(warehouse_url=tiny_warehouse)).get_repository_def()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("institution", ["2"])  # one already known
    ctx = dg.build_sensor_context(
        instance=instance, repository_def=repo, resources={"warehouse": WarehouseResource(url=tiny_warehouse)}
    )
    result = build_monthly_sensor(list(REPORTS.values()), hour=0, first_month=FIRST)(ctx)
    assert isinstance(result, dg.SensorResult)
    (added,) = result.dynamic_partitions_requests or []
    assert isinstance(added, dg.AddDynamicPartitionsRequest) and added.partitions_def_name == "institution"
    institutions = list_institutions(WarehouseResource(url=tiny_warehouse).client())
    expected = unregistered(institutions, ["2"], datetime.now(UTC))
    assert list(added.partition_keys) == expected and set(expected) == {"1", "3"}
    requested = {
        str(ap.partition_key).split("|")[0]
        for r in result.run_requests or []
        for ap in r.asset_graph_subset.iterate_asset_partitions()
    }
    assert requested == {"1", "2", "3"}


def test_definitions_validate_with_the_dagster_cli(tiny_warehouse_path: Path, tmp_path: Path) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "LXP_HOME": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path),
        "LXP_WAREHOUSE_URL": f"duckdb:///{tiny_warehouse_path}",
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dg_check = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "check", "defs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert dg_check.returncode == 0 and "All definitions loaded successfully" in dg_check.stdout + dg_check.stderr, (
        dg_check.stderr
    )


@pytest.mark.parametrize(
    ("setting", "status"), [(True, dg.DefaultSensorStatus.RUNNING), (False, dg.DefaultSensorStatus.STOPPED)]
)
def test_monthly_sensor_setting_sets_its_default_status(setting: bool, status: dg.DefaultSensorStatus) -> None:
    """LXP_MONTHLY_SENSOR=false: a fresh instance does not rebuild last month until an operator starts it."""
    settings = Settings(monthly_sensor=setting)
    sensor = build_definitions(settings).get_repository_def().get_sensor_def("monthly_reports")
    assert sensor.default_status == status
    # the delivery and institution sensors are not affected
    assert build_definitions(settings).get_repository_def().get_sensor_def("report_delivery").default_status == (
        dg.DefaultSensorStatus.RUNNING
    )


def test_every_report_has_asset_partition_job_and_adhoc_job() -> None:
    repo = build_definitions(Settings()).get_repository_def()
    jobs = {j.name for j in repo.get_all_jobs()}
    for spec in REPORTS.values():
        assert {f"{spec.name}_job", f"{spec.name}_adhoc"} <= jobs
        assert repo.asset_graph.get(dg.AssetKey([spec.name])).partitions_def is not None


def test_an_institution_with_a_bad_timezone_does_not_stop_the_others() -> None:
    bad = Institution(9, "Bad", "bad", "Mars/Olympus_Mons")
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert due_months(now, [bad, SP], hour=3, done={}) == {date(2026, 2, 1): [1]}


def test_load_institution_rejects_an_unknown_timezone(tmp_path: Path) -> None:
    import duckdb
    import pytest

    from orchestration.institutions import InvalidInstitution, load_institution
    from orchestration.warehouse.client import Warehouse

    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE institutions (id BIGINT, name VARCHAR, subdomain VARCHAR, timezone VARCHAR)")
    con.execute("INSERT INTO institutions VALUES (9, 'Bad', 'bad', 'Mars/Olympus_Mons')")
    con.close()
    with pytest.raises(InvalidInstitution, match="Mars/Olympus_Mons"):
        load_institution(Warehouse(f"duckdb:///{path}"), 9)


def test_delivery_sensor_reaches_the_requesters_of_a_launcher_that_died(tmp_path: Path) -> None:
    """The API recorded its requester against the claim, launched, and died before publishing the
    run id: nobody asks again, yet the sensor's pass over finished runs notifies that requester."""
    from dagster._core.storage.dagster_run import DagsterRun

    from orchestration.defs.delivery.sensor import release_finished_runs
    from orchestration.ledger import Asked, Asker, Ledger

    url = f"sqlite:///{tmp_path / 'outbox.sqlite'}"
    store, outbox = Ledger(url), Ledger(url)
    store.migrate()
    mine, _ = store.claims.claim("k" * 64)
    assert mine is not None
    store.requests.add_requester(
        Asked(1, "catalog", "k" * 64), Asker(10, "alfa"), claim_id=mine.claim_id, launched=True
    )
    tags = {
        "lxp/report": "catalog",
        "lxp/claim": mine.claim_id,
        "lxp/storage_key": "k/f.xlsx",
        "lxp/filename": "f.xlsx",
    }
    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(
        DagsterRun(job_name="catalog_adhoc", run_id="orphan-run", status=dg.DagsterRunStatus.SUCCESS, tags=tags)
    )
    released, _ = release_finished_runs(instance, outbox, since=0.0)
    assert released == 1
    rows = outbox.deliveries.list(job_id="orphan-run")
    assert [(n.recipient_user_id, n.state, n.storage_key) for n in rows] == [(10, "pending", "k/f.xlsx")]
    assert release_finished_runs(instance, outbox, since=0.0)[0] == 0  # a second tick sends nothing new
    store.dispose()
    outbox.dispose()


def test_registration_order_keeps_each_zone_contiguous() -> None:
    """Dagster batches a backfill only over contiguous institution keys; the monthly sensor
    requests one zone group at a time, so institutions join the partition grouped by zone."""
    from orchestration.institutions import registration_order

    sp2 = Institution(4, "Demo 2", "demo2", "America/Sao_Paulo")
    tokyo2 = Institution(5, "Tokyo 2", "tk2", "Asia/Tokyo")
    bad = Institution(6, "Bad", "bad", "Mars/Olympus_Mons")
    at = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
    ordered = registration_order([bad, TOKYO, SP, tokyo2, NY, sp2], at)
    assert [i.id for i in ordered] == [2, 1, 4, 3, 5, 6]  # UTC-5, UTC-3 x2, UTC+9 x2, unknown zone last
    # the due group of a tick is one contiguous run of that order
    due = due_months(at, ordered, hour=3, done={})
    keys = [i.id for i in ordered]
    for ids in due.values():
        positions = sorted(keys.index(i) for i in ids)
        assert positions == list(range(positions[0], positions[0] + len(positions)))


def test_first_month_setting_bounds_partitions_and_exact_month_detection(
    monkeypatch: pytest.MonkeyPatch, tiny_warehouse: str
) -> None:
    """LXP_FIRST_MONTH is the one home of the retention rule: Dagster's month partitions,
    the API's exact-month detection and the monthly sensor all follow the settings they are given,
    and only the entry points (here: the code location's ``defs``) read it from the environment."""
    from assets.periods import is_partition_month
    from assets.registry import by_slug
    from assets.request import RequestedReport

    today = date(2026, 12, 1)
    first = Settings(first_month="2025-12").first_partition_month
    assert first == date(2025, 12, 1)
    assert is_partition_month(date(2025, 12, 1), first, today) and is_partition_month(date(2026, 12, 1), first, today)
    assert not is_partition_month(date(2025, 11, 1), first, today)
    assert not is_partition_month(date(2027, 1, 1), first, today)
    institution, spec = Institution(1, "Demo", "demo", "America/Sao_Paulo"), by_slug("storyboard-usage")
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert RequestedReport.for_month(spec, institution, date(2025, 11, 1)).partition_key(first, at) is None
    assert RequestedReport.for_month(spec, institution, date(2025, 12, 1)).partition_key(first, at) == "1|2025-12-01"
    monkeypatch.setenv("LXP_FIRST_MONTH", "2025-12")
    assert Settings().first_partition_month == date(2025, 12, 1)
    monkeypatch.delenv("LXP_FIRST_MONTH")
    assert Settings().first_partition_month == date(2024, 1, 1)
    with pytest.raises(ValueError, match="first_month"):
        Settings(first_month="2025-13")

    # The monthly sensor requests no month before the first one (here: a first month still to come).
    now = datetime.now(UTC)
    future = f"{now.year + 1}-01"
    repo = build_definitions(Settings(warehouse_url=tiny_warehouse, first_month=future)).get_repository_def()
    ctx = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        repository_def=repo,
        resources={"warehouse": WarehouseResource(url=tiny_warehouse)},
    )
    assert isinstance(repo.get_sensor_def("monthly_reports")(ctx), dg.SkipReason)

    # The code location's entry point reads the environment when Dagster loads it, not at import.
    env = {**os.environ, "LXP_FIRST_MONTH": "2025-12", "PYTHONPATH": str(ROOT)}
    code = (
        "import os, dagster as dg; from orchestration import definitions; "
        "os.environ['LXP_FIRST_MONTH'] = '2025-11'; "
        "repo = definitions.defs().get_repository_def(); "
        "m = repo.asset_graph.get(dg.AssetKey(['storyboard_usage'])).partitions_def"
        ".get_partitions_def_for_dimension('month'); "
        "keys = m.get_partition_keys(); print(keys[0], len(keys))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first_key, count = proc.stdout.split()
    assert first_key == "2025-11-01" and int(count) == (now.year - 2025) * 12 + now.month - 11 + 1
