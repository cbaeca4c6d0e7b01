"""The run-end fast path: a report run that stored its file tells its requesters itself.

A ``success_hook`` on the report jobs (the partition job and the ad-hoc job):
once the step that stored the file has succeeded, it records the outcome in the
ledger and delivers that job's notifications with the same ledger
leases as the ``report_delivery`` sensor (``NotifierResource.deliver_run``), so
the requester hears of the file in milliseconds instead of at the sensor's next
tick, and the two never both send a row.

Why a hook and not a step of its own: it runs only when the step succeeded (a
failed run has nothing to deliver early: the sensor tells its requesters), it
keeps delivery out of the report code, it fits the asset job and the op job
alike, and Dagster isolates it: an exception in a hook is a ``HOOK_ERRORED``
event, not a failed step or run. It catches everything anyway and leaves the
rows to the sensor.
"""

from __future__ import annotations

import time

import dagster as dg

from assets.contract import TAG_REPORT
from orchestration.defs.delivery.sensor import REPORT_TITLES


@dg.success_hook(name="deliver_on_success", required_resource_keys={"notifier", "storage"})
def deliver_on_success(context: dg.HookContext) -> None:
    started = time.monotonic()
    try:
        run = context.instance.get_run_by_id(context.run_id)  # the tags as stored: tag_run added the file's
        if run is None or TAG_REPORT not in run.tags:
            return
        stats = context.resources.notifier.deliver_run(
            run.run_id, run.tags, context.resources.storage.get(), titles=REPORT_TITLES
        )
    except Exception as exc:  # never fail the run: the sensor delivers
        context.log.warning(f"fast delivery failed, left to the delivery sensor: {exc!r}")
        return
    if stats is not None:
        context.log.info(
            f"delivered at run end in {time.monotonic() - started:.3f} s: claimed {stats.claimed}, sent {stats.sent}, "
            f"retrying {stats.retrying}, dead {stats.dead}"
        )
        for error in stats.errors[:5]:
            context.log.warning(error)
