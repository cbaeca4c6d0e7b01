"""Partitions: institution (dynamic, synced from the warehouse) x month.

Month keys are Dagster's ``YYYY-MM-01``; the month *boundaries* are applied in
each institution's own timezone when the report is built, so one partition set
serves institutions in every zone. The month dimension starts at the settings'
first month (``Settings.first_partition_month``), so it is built by
:func:`report_partitions` from the settings ``build_definitions`` was given,
never at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import dagster as dg

from assets.contract import INSTITUTION_DIMENSION, MONTH_DIMENSION

institution_partitions = dg.DynamicPartitionsDefinition(name=INSTITUTION_DIMENSION)


@cache  # one object per first month: every monthly asset of a code location shares it
def month_partitions(first_month: date) -> dg.MonthlyPartitionsDefinition:
    """Every month from ``first_month`` (retention) to the still-open current month."""
    return dg.MonthlyPartitionsDefinition(start_date=first_month.isoformat(), end_offset=1)


@cache
def report_partitions(first_month: date) -> dg.MultiPartitionsDefinition:
    """Institution x month, the month dimension starting at ``first_month``."""
    return dg.MultiPartitionsDefinition(
        {INSTITUTION_DIMENSION: institution_partitions, MONTH_DIMENSION: month_partitions(first_month)}
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
