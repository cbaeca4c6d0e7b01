"""Turning an asynchronous report request into a cache hit, a joined run or a new run.

The API never computes an asynchronous report: :mod:`api.launch.cache` looks
for a fresh file, :mod:`api.launch.dedup` for an identical run in flight (or
a launch orphaned by a dead process), and only then :mod:`api.launch.launch`
asks Dagster for a run. :class:`api.launch.launcher.ReportLauncher` strings the
three together; :mod:`api.launch.plan` holds the request (``RunPlan``) and
:mod:`api.launch.tags` the run tags both sides read.
"""

from api.launch.launcher import ReportLauncher
from api.launch.plan import RunPlan, date_range_period, month_period

__all__ = ["ReportLauncher", "RunPlan", "date_range_period", "month_period"]
