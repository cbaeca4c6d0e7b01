"""Partitions: institution (dynamic, synced from the warehouse) x month.

Month keys are Dagster's ``YYYY-MM-01``; the month *boundaries* are applied in
each institution's own timezone when the report is built, so one partition set
serves institutions in every zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

from orchestration.periods import month_bounds, months_start, partition_tags, previous_month

__all__ = [
    "ReportPartition",
    "institution_partitions",
    "month_bounds",
    "month_partitions",
    "months_start",
    "parse_partition_key",
    "partition_tags",
    "previous_month",
    "report_partitions",
]

institution_partitions = dg.DynamicPartitionsDefinition(name="institution")
month_partitions = dg.MonthlyPartitionsDefinition(start_date=months_start().isoformat(), end_offset=1)
report_partitions = dg.MultiPartitionsDefinition({"institution": institution_partitions, "month": month_partitions})


@dataclass(frozen=True)
class ReportPartition:
    institution_id: int
    month: date | None  # None for per-institution snapshot assets

    @property
    def period_label(self) -> str:
        return f"{self.month:%Y-%m}" if self.month else "snapshot"


def parse_partition_key(key: str) -> ReportPartition:
    """``"12|2026-06-01"`` (institution|month) or ``"12"`` (institution only)."""
    keys_by_dim = getattr(key, "keys_by_dimension", None)
    if keys_by_dim:
        return ReportPartition(int(keys_by_dim["institution"]), date.fromisoformat(keys_by_dim["month"]))
    if "|" in key:
        inst, month = key.split("|", 1)
        return ReportPartition(int(inst), date.fromisoformat(month))
    return ReportPartition(int(key), None)
