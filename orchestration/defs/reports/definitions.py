"""The reports domain: every registered report's asset and jobs, the monthly
backfill sensor and the last-closed-month check with its daily schedule."""

from __future__ import annotations

import dagster as dg

from assets.registry import REPORTS
from orchestration.defs.reports.completeness import build_completeness_check, completeness_job_and_schedule
from orchestration.defs.reports.factory import report_assets, report_jobs
from orchestration.defs.reports.monthly import build_monthly_sensor
from orchestration.settings import Settings


def build(settings: Settings) -> dg.Definitions:
    specs = list(REPORTS.values())
    check = build_completeness_check(specs, settings.schedule_hour)
    check_job, check_schedule = completeness_job_and_schedule(check)
    return dg.Definitions(
        assets=report_assets(specs, settings),
        asset_checks=[check],
        jobs=[*report_jobs(specs, settings), check_job],
        sensors=[
            build_monthly_sensor(
                specs, settings.schedule_hour, settings.first_partition_month, running=settings.monthly_sensor
            )
        ],
        schedules=[check_schedule],
    )
