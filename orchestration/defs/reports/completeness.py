"""Asset check: every institution has its last closed month built, per monthly report.

The monthly backfill can skip an institution (not yet a partition, a bad
timezone, a failed partition that nobody re-ran); the reports then silently
fall back to on-demand runs. This check lists, next to their names, the
institutions whose latest closed month (the one the monthly sensor should have
requested: ``last_closed_month``) has no materialization; a schedule evaluates
it daily, and it can be run from the UI at any time.
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.periods import partition_key
from assets.spec import ReportSpec
from orchestration.defs.reports.monthly import last_closed_month
from orchestration.defs.resources import WarehouseResource
from orchestration.institutions import list_institutions, valid_timezone

LAST_CLOSED_MONTH_BUILT = "last_closed_month_built"
JOB_NAME = "monthly_completeness"
SHOWN = 100  # institutions listed in the metadata (the count is always exact)


def build_completeness_check(specs: Sequence[ReportSpec], hour: int) -> dg.AssetChecksDefinition:
    monthly = [s for s in specs if s.monthly]

    @dg.multi_asset_check(
        name=LAST_CLOSED_MONTH_BUILT,
        specs=[
            dg.AssetCheckSpec(
                LAST_CLOSED_MONTH_BUILT,
                asset=dg.AssetKey([s.name]),
                description="Every institution's last closed month has a materialization (after the monthly run).",
            )
            for s in monthly
        ],
        can_subset=True,  # each report's job selects its own check with its asset
    )
    def last_closed_month_built(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        now = datetime.now(UTC)
        institutions = [i for i in list_institutions(warehouse.client()) if valid_timezone(i.timezone)]
        selected = context.selected_asset_check_keys
        for spec in monthly:
            key = dg.AssetKey([spec.name])
            if dg.AssetCheckKey(key, LAST_CLOSED_MONTH_BUILT) not in selected:
                continue
            built = set(context.instance.get_materialized_partitions(key))
            missing = [
                (i, month)
                for i in institutions
                if partition_key(i.id, month := last_closed_month(now, i.timezone, hour)) not in built
            ]
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=LAST_CLOSED_MONTH_BUILT,
                passed=not missing,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "missing": len(missing),
                    "institutions": len(institutions),
                    "missing_institutions": dg.MetadataValue.json(
                        [{"id": i.id, "name": i.name, "month": f"{m:%Y-%m}"} for i, m in missing[:SHOWN]]
                    ),
                },
            )

    return last_closed_month_built


def completeness_job_and_schedule(
    check: dg.AssetChecksDefinition,
) -> tuple[UnresolvedAssetJobDefinition, dg.ScheduleDefinition]:
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.checks(check),
        description="Evaluate the last-closed-month check of every monthly report.",
    )
    schedule = dg.ScheduleDefinition(
        name=JOB_NAME,
        job=job,
        cron_schedule="0 12 * * *",  # daily, after LXP_SCHEDULE_HOUR in the institutions' (American) zones
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    return job, schedule
