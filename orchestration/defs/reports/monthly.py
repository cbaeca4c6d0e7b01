"""The monthly pre-computation: last month, every institution, every monthly report.

Implemented as a cron-like *sensor* rather than a ``ScheduleDefinition``:
Dagster 1.13's scheduler only submits individual runs, one per partition, each
costing ~5 CPU-s of run overhead, while a sensor may return
``RunRequest.for_asset_graph_subset`` which becomes a backfill that honours the
assets' ``BackfillPolicy.multi_run`` (``LXP_BACKFILL_BATCH_SIZE``, 250 partitions per run). It is timezone
aware: an institution is due once its *local* clock has reached day 1 at
``LXP_SCHEDULE_HOUR``; the cursor remembers, per institution, the last month
requested, so a daemon that was down on day 1 catches up instead of skipping
(the latest closed month only; older gaps are a UI backfill). On a fresh
instance its tick may come before ``institution_sync``'s: it then registers the
missing institutions itself, in the same order and in the same tick (Dagster
adds a sensor's dynamic partitions before it submits its run requests), rather
than waiting for its next tick five minutes later. Its backfill runs
carry ``dagster/priority=-1`` so the run queue serves API requests first.
"""

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.definitions.events import AssetKeyPartitionKey

from assets.contract import (
    DAGSTER_PRIORITY_TAG,
    INSTITUTION_DIMENSION,
    MONTH_DIMENSION,
    TAG_MONTH,
    TAG_TRIGGER,
)
from assets.periods import is_partition_month, previous_month
from assets.spec import Institution, ReportSpec
from orchestration.defs.reports.partitions import institution_partitions
from orchestration.defs.resources import WarehouseResource
from orchestration.institutions import list_institutions, unregistered, valid_timezone


def last_closed_month(now: datetime, timezone: str, hour: int) -> date:
    """The latest month the monthly run should have built for an institution in ``timezone``:
    last month, or the one before on day 1 before ``hour`` (local)."""
    local = now.astimezone(ZoneInfo(timezone))
    month = previous_month(local.date())
    if local.day == 1 and local.hour < hour:
        month = previous_month(month)  # not yet time for the month that just closed
    return month


def due_months(
    now: datetime, institutions: Iterable[Institution], hour: int, done: dict[str, str]
) -> dict[date, list[int]]:
    """Which institutions need which (previous) month now. ``done``: id -> "YYYY-MM".

    Institutions with an unknown timezone are left out (the sensor logs them):
    one bad row must not stop every other institution's monthly reports."""
    due: dict[date, list[int]] = defaultdict(list)
    for inst in institutions:
        if not valid_timezone(inst.timezone):
            continue
        month = last_closed_month(now, inst.timezone, hour)
        if done.get(str(inst.id), "") < f"{month:%Y-%m}":
            due[month].append(inst.id)
    return dict(due)


def monthly_subset(
    specs: Sequence[ReportSpec], month: date, institution_ids: Sequence[int], asset_graph: BaseAssetGraph[Any]
) -> AssetGraphSubset:
    keys = {
        AssetKeyPartitionKey(
            dg.AssetKey([s.name]),
            dg.MultiPartitionKey({INSTITUTION_DIMENSION: str(i), MONTH_DIMENSION: f"{month:%Y-%m-%d}"}),
        )
        for s in specs
        if s.monthly
        for i in institution_ids
    }
    return AssetGraphSubset.from_asset_partition_set(keys, asset_graph)


def build_monthly_sensor(
    specs: Sequence[ReportSpec], hour: int, first_month: date, *, running: bool = True
) -> dg.SensorDefinition:
    """``first_month``: the first partition month (``LXP_FIRST_MONTH``), no month before it is requested;
    ``running``: its default status (``LXP_MONTHLY_SENSOR``); the UI's start/stop overrides it."""
    monthly = [s for s in specs if s.monthly]

    @dg.sensor(
        name="monthly_reports",
        description="Day 1 at LXP_SCHEDULE_HOUR, institution-local: backfill last month of every monthly report "
        "for every institution.",
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        asset_selection=dg.AssetSelection.assets(*[dg.AssetKey([s.name]) for s in monthly]),
    )
    def monthly_reports(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        done: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        institutions = list_institutions(warehouse.client())
        for bad in (i for i in institutions if not valid_timezone(i.timezone)):
            context.log.warning(f"institution {bad.id} skipped: unknown timezone {bad.timezone!r} in the warehouse")
        now = datetime.now(UTC)
        due = {
            m: ids
            for m, ids in due_months(now, institutions, hour, done).items()
            if is_partition_month(m, first_month, now.date())
        }
        if not due:
            return dg.SkipReason("no institution has a newly closed month")
        new = unregistered(institutions, context.instance.get_dynamic_partitions(INSTITUTION_DIMENSION), now)
        repository = context.repository_def
        if repository is None:  # a sensor is always evaluated inside its code location's repository
            raise dg.DagsterInvariantViolationError("monthly_reports evaluated without a repository definition")
        requests = []
        for month, ids in sorted(due.items()):
            subset = monthly_subset(monthly, month, ids, repository.asset_graph)
            requests.append(
                dg.RunRequest.for_asset_graph_subset(
                    subset, tags={TAG_TRIGGER: "monthly", TAG_MONTH: f"{month:%Y-%m}", DAGSTER_PRIORITY_TAG: "-1"}
                )
            )
            for i in ids:
                done[str(i)] = f"{month:%Y-%m}"
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps(done, sort_keys=True),
            dynamic_partitions_requests=[institution_partitions.build_add_request(new)] if new else None,
        )

    return monthly_reports
