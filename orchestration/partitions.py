"""Partitions: institution (dynamic, synced from the warehouse) x month.

Month keys are Dagster's ``YYYY-MM-01``; the month *boundaries* are applied in
each institution's own timezone when the report is built, so one partition set
serves institutions in every zone.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg

MONTHS_START = "2024-01-01"

institution_partitions = dg.DynamicPartitionsDefinition(name="institution")
month_partitions = dg.MonthlyPartitionsDefinition(start_date=MONTHS_START, end_offset=1)
report_partitions = dg.MultiPartitionsDefinition({"institution": institution_partitions, "month": month_partitions})


@dataclass(frozen=True)
class ReportPartition:
    institution_id: int
    month: date | None  # None for per-institution snapshot assets

    @property
    def key(self) -> str:
        return f"{self.institution_id}|{self.month:%Y-%m-%d}" if self.month else str(self.institution_id)

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


def partition_tags(institution_id: int, month: date) -> dict[str, str]:
    """All three tags Dagster needs to launch one multi-partition run."""
    month_key = f"{month:%Y-%m-%d}"
    return {
        "dagster/partition": f"{institution_id}|{month_key}",
        "dagster/partition/institution": str(institution_id),
        "dagster/partition/month": month_key,
    }


def month_bounds(month: date, timezone: str) -> tuple[datetime, datetime]:
    """[first day 00:00, next month's first day 00:00) in the institution's zone."""
    tz = ZoneInfo(timezone)
    start = datetime(month.year, month.month, 1, tzinfo=tz)
    nxt = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=tz)
    return start, nxt


def previous_month(day: date) -> date:
    return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)
