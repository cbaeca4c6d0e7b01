"""Turning an asynchronous report request into a cache hit, a joined run or a new run.

The API never computes an asynchronous report: :mod:`api.launch.cache` looks
for a fresh file, :mod:`api.launch.dedup` for an identical run in flight (or
a launch orphaned by a dead process), and only then :mod:`api.launch.launch`
asks Dagster for a run. :class:`api.launch.launcher.ReportLauncher` strings the
three together. The request itself is :class:`assets.request.RequestedReport`;
the run tags both sides read are in :mod:`assets.contract`
(:mod:`api.launch.tags` reads a finished run's file back from them).
"""

from api.launch.launcher import ReportLauncher

__all__ = ["ReportLauncher"]
