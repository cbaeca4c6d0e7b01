"""Partitions: institution (dynamic, synced from the warehouse) x month.

Month keys are Dagster's ``YYYY-MM-01``; the month *boundaries* are applied in
each institution's own timezone when the report is built, so one partition set
serves institutions in every zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

from assets.contract import INSTITUTION_DIMENSION, MONTH_DIMENSION
from orchestration.settings import months_start

institution_partitions = dg.DynamicPartitionsDefinition(name=INSTITUTION_DIMENSION)
month_partitions = dg.MonthlyPartitionsDefinition(start_date=months_start().isoformat(), end_offset=1)
report_partitions = dg.MultiPartitionsDefinition(
    {INSTITUTION_DIMENSION: institution_partitions, MONTH_DIMENSION: month_partitions}
)


@dataclass(frozen=True)
class ReportPartition:
    institution_id: int
    month: date | None  # None for per-institution snapshot assets


def parse_partition_key(key: str) -> ReportPartition:
    """``"12|2026-06-01"`` (institution|month) or ``"12"`` (institution only)."""
    keys_by_dim = getattr(key, "keys_by_dimension", None)
    if keys_by_dim:
        return ReportPartition(
            int(keys_by_dim[INSTITUTION_DIMENSION]), date.fromisoformat(keys_by_dim[MONTH_DIMENSION])
        )
    if "|" in key:
        inst, month = key.split("|", 1)
        return ReportPartition(int(inst), date.fromisoformat(month))
    return ReportPartition(int(key), None)
