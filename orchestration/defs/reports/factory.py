"""Turn every ``ReportSpec`` into its Dagster objects — one factory for every report.

For each spec: the partitioned asset (``asset``), the partition job and the
ad-hoc job (``jobs``). Adding a report is adding a module under
``assets/reports/``; nothing here changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.spec import ReportSpec
from orchestration.defs.delivery.hook import deliver_on_success
from orchestration.defs.reports.asset import report_asset
from orchestration.defs.reports.jobs import adhoc_job, report_asset_job
from orchestration.settings import Settings


def report_assets(specs: Sequence[ReportSpec], settings: Settings) -> list[dg.AssetsDefinition]:
    return [report_asset(spec, settings) for spec in specs]


def report_jobs(
    specs: Sequence[ReportSpec], settings: Settings
) -> list[dg.JobDefinition | UnresolvedAssetJobDefinition]:
    """With the run-end delivery hook: a run that stored its file tells its requesters at once."""
    hooks = {deliver_on_success}
    return [report_asset_job(spec, hooks) for spec in specs] + [adhoc_job(spec, settings, hooks) for spec in specs]
