"""Report periods and partition keys, without importing Dagster.

The Dagster partitions (``orchestration.defs.reports.partitions``) and the API (which must
stay light and never load Dagster) share these rules, so a request the API
calls "exactly one month partition" is exactly what the asset builds.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from assets.contract import DAGSTER_PARTITION_TAG, INSTITUTION_DIMENSION, MONTH_DIMENSION, dagster_dimension_tag

MONTHS_START = date(2024, 1, 1)  # first monthly partition


def month_bounds(month: date, timezone: str) -> tuple[datetime, datetime]:
    """[first day 00:00, next month's first day 00:00) in the institution's zone."""
    tz = ZoneInfo(timezone)
    start = datetime(month.year, month.month, 1, tzinfo=tz)
    nxt = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=tz)
    return start, nxt


def previous_month(day: date) -> date:
    return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)


def partition_key(institution_id: int, month: date) -> str:
    """Dagster's multi-partition key string: dimensions in name order, ``institution|month``."""
    return f"{institution_id}|{month:%Y-%m-%d}"


def partition_tags(institution_id: int, month: date) -> dict[str, str]:
    """All three tags Dagster needs to launch one multi-partition run."""
    return {
        DAGSTER_PARTITION_TAG: partition_key(institution_id, month),
        dagster_dimension_tag(INSTITUTION_DIMENSION): str(institution_id),
        dagster_dimension_tag(MONTH_DIMENSION): f"{month:%Y-%m-%d}",
    }
