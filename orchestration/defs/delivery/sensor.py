"""The delivery sensor: turn finished runs into notifications and send the due ones.

The sensor decides *when*; the notifier resource (ledger + channels) and
``orchestration.delivery`` do the work.
"""

from datetime import UTC, datetime

import dagster as dg

from assets.contract import TAG_REPORT
from assets.registry import REPORTS
from orchestration.defs.delivery.notifier import NotifierResource
from orchestration.defs.resources import ReportStorageResource
from orchestration.ledger import Ledger, claim_of, job_outcome

REPORT_TITLES = {spec.slug: spec.title for spec in REPORTS.values()}
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def release_finished_runs(
    instance: dg.DagsterInstance, ledger: Ledger, since: float, limit: int = 500
) -> tuple[int, float]:
    """Turn runs that finished since ``since`` into deliverable notifications.

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
        if TAG_REPORT not in run.tags:
            continue
        outcome = job_outcome(run.status == dg.DagsterRunStatus.SUCCESS, run.tags)
        # claim_of: a run whose launcher died before publishing its id still reaches its requesters.
        released += ledger.requests.complete_job(run.run_id, outcome, claim_id=claim_of(run.tags))
    return released, newest


def build_delivery_sensor(interval_seconds: int = 10) -> dg.SensorDefinition:
    """The ``report_delivery`` sensor, ticking every ``interval_seconds`` (``LXP_DELIVERY_INTERVAL_SECONDS``):
    how long, at most, a finished run waits for its notifications to leave."""

    @dg.sensor(
        name="report_delivery",
        description="Releases notifications of finished report runs and delivers due notifications "
        "(webhook + email) with retries.",
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def report_delivery(
        context: dg.SensorEvaluationContext, notifier: NotifierResource, storage: ReportStorageResource
    ) -> dg.SkipReason:
        ledger = notifier.ledger()
        try:
            since = float(context.cursor) if context.cursor else 0.0
            released, newest = release_finished_runs(context.instance, ledger, since)
            context.update_cursor(str(newest))
            stats = notifier.deliver(
                ledger, storage.get(), datetime.now(UTC), titles=REPORT_TITLES, limit=50, time_budget_seconds=40
            )
        finally:
            ledger.dispose()
        summary = (
            f"released {released}; claimed {stats.claimed}, sent {stats.sent}, retrying {stats.retrying}, "
            f"dead {stats.dead}"
        )
        if stats.disabled:
            summary += " (no channel configured: LXP_NOTIFY_URL / LXP_SMTP_URL)"
        for err in stats.errors[:5]:
            context.log.warning(err)
        return dg.SkipReason(summary)

    return report_delivery
