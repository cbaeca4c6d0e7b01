"""Sensors: keep the institution partitions in sync with the warehouse, and
deliver report notifications from the outbox."""

from datetime import UTC, datetime

import dagster as dg

from assets.registry import REPORTS
from orchestration.institutions import list_institutions, registration_order
from orchestration.outbox import claim_of, job_outcome
from orchestration.partitions import institution_partitions
from orchestration.resources import OutboxResource, ReportStorageResource, WarehouseResource


@dg.sensor(
    name="institution_sync",
    description="Adds a dynamic `institution` partition for every institution in the warehouse (grouped by zone).",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def institution_sync(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    known = set(context.instance.get_dynamic_partitions(institution_partitions.name))
    missing = [i for i in list_institutions(warehouse.client()) if str(i.id) not in known]
    new = [str(i.id) for i in registration_order(missing, datetime.now(UTC))]
    if not new:
        return dg.SkipReason(f"{len(known)} institutions already registered")
    return dg.SensorResult(dynamic_partitions_requests=[institution_partitions.build_add_request(new)])


REPORT_TITLES = {spec.slug: spec.title for spec in REPORTS.values()}
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def release_finished_runs(instance: dg.DagsterInstance, outbox, since: float, limit: int = 500) -> tuple[int, float]:
    """Turn runs that finished since ``since`` into deliverable outbox rows.

    Reads runs by update time instead of using ``run_status_sensor`` (whose cursor
    advances even when the tick fails and which sees only a few runs per tick).
    ``complete_job`` only touches ``waiting`` rows, so re-reading a run is harmless;
    the cursor therefore overlaps by a second rather than risking a gap.
    """
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED, updated_after=datetime.fromtimestamp(max(0.0, since - 1.0), UTC)),
        limit=limit,
        order_by="update_timestamp",
        ascending=True,
    )
    released, newest = 0, since
    for record in records:
        run = record.dagster_run
        newest = max(newest, record.update_timestamp.timestamp())
        if "lxp/report" not in run.tags:
            continue
        status, key, filename = job_outcome(run.status == dg.DagsterRunStatus.SUCCESS, run.tags)
        # claim_of: a run whose launcher died before publishing its id still reaches its requesters.
        released += outbox.complete_job(
            run.run_id, status, storage_key=key, filename=filename, claim_id=claim_of(run.tags)
        )
    return released, newest


@dg.sensor(
    name="report_delivery",
    description="Releases notifications of finished report runs and delivers due outbox rows (webhook + email) with retries.",
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def report_delivery(
    context: dg.SensorEvaluationContext, outbox: OutboxResource, storage: ReportStorageResource
) -> dg.SkipReason:
    from orchestration.notify.deliver import deliver_due
    from orchestration.settings import get_settings

    box = outbox.get()  # schema is created on first use
    try:
        since = float(context.cursor) if context.cursor else 0.0
        released, newest = release_finished_runs(context.instance, box, since)
        context.update_cursor(str(newest))
        stats = deliver_due(
            box,
            storage.get(),
            get_settings(),
            datetime.now(UTC),
            limit=50,
            time_budget_seconds=40,
            titles=REPORT_TITLES,
        )
    finally:
        box.dispose()
    summary = (
        f"released {released}; claimed {stats.claimed}, sent {stats.sent}, retrying {stats.retrying}, dead {stats.dead}"
    )
    if stats.disabled:
        summary += " (no channel configured: LXP_NOTIFY_URL / LXP_SMTP_URL)"
    for err in stats.errors[:5]:
        context.log.warning(err)
    return dg.SkipReason(summary)
