"""The one code location: every report in ``assets.registry`` becomes an asset,
a partition job and an ad-hoc job; plus the sensors that keep it running."""

from __future__ import annotations

import dagster as dg

from assets.registry import REPORTS
from orchestration.factory import adhoc_job, report_asset, report_asset_job
from orchestration.logs import configure_logging
from orchestration.resources import resources_from_settings
from orchestration.schedules import build_monthly_sensor
from orchestration.sensors import institution_sync, report_delivery
from orchestration.settings import Settings, get_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    s = settings or get_settings()
    specs = list(REPORTS.values())
    return dg.Definitions(
        assets=[report_asset(spec, s.backfill_batch_size) for spec in specs],
        jobs=[report_asset_job(spec) for spec in specs] + [adhoc_job(spec) for spec in specs],
        sensors=[institution_sync, report_delivery, build_monthly_sensor(specs, s.schedule_hour)],
        resources=resources_from_settings(s),
        # A batched backfill run holds every monthly report of its institutions (one step each); in-process
        # they share the run worker's imports instead of starting a Python process per step
        # (docs/benchmarks.md, "The 1,000-institution month").
        executor=dg.in_process_executor if s.run_executor == "in_process" else dg.multiprocess_executor,
    )


if get_settings().log_format == "json":  # code server and run pods: our loggers as JSON lines
    configure_logging("json")
defs = build_definitions()
