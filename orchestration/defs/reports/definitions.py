"""The reports domain: every registered report's asset and jobs, and the monthly backfill sensor."""

from __future__ import annotations

import dagster as dg

from assets.registry import REPORTS
from orchestration.defs.reports.factory import report_assets, report_jobs
from orchestration.defs.reports.monthly import build_monthly_sensor
from orchestration.settings import Settings


def build(settings: Settings) -> dg.Definitions:
    specs = list(REPORTS.values())
    return dg.Definitions(
        assets=report_assets(specs, settings.backfill_batch_size),
        jobs=report_jobs(specs),
        sensors=[build_monthly_sensor(specs, settings.schedule_hour)],
    )
