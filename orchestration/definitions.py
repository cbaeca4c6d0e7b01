"""The one code location: the domains under ``orchestration/defs/`` merged with
the resources they share (every report in ``assets.registry`` becomes an asset,
a partition job and an ad-hoc job; plus the sensors that keep it running).

``build_definitions(settings)`` builds everything from the one settings object
it is given. ``defs`` is the code location's entry point (``workspace.yaml``,
``[tool.dagster]``, the code server and every run worker load this module): a
``@dg.definitions`` function, so importing this module reads nothing, and the
environment is read into ``Settings()`` here only, when Dagster loads the
location (the JSON log format is applied then too).
"""

from __future__ import annotations

import dagster as dg

from orchestration.defs.delivery import definitions as delivery
from orchestration.defs.institutions import definitions as institutions
from orchestration.defs.reports import definitions as reports
from orchestration.defs.resources import resources_from_settings
from orchestration.defs.warehouse import definitions as warehouse
from orchestration.logs import configure_logging
from orchestration.settings import Settings, exit_if_unsafe


def build_definitions(settings: Settings) -> dg.Definitions:
    s = settings
    # LXP_ENV=production: the code server (and every run worker, which loads this too) refuses weak secrets.
    exit_if_unsafe(s, "Dagster code location")
    return dg.Definitions.merge(
        reports.build(s),
        institutions.build(s),
        delivery.build(s),
        warehouse.build(s),
        dg.Definitions(
            resources=resources_from_settings(s),
            # A batched backfill run holds every monthly report of its institutions (one step each); in-process
            # they share the run worker's imports instead of starting a Python process per step
            # (docs/benchmarks.md, "The 1,000-institution month").
            executor=dg.in_process_executor if s.run_executor == "in_process" else dg.multiprocess_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location as Dagster loads it: the process's settings, read from the environment."""
    settings = Settings()
    if settings.log_format == "json":  # code server and run pods: our loggers as JSON lines
        configure_logging("json")
    return build_definitions(settings)
