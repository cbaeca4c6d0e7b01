"""Report periods and partition keys, without importing Dagster.

The Dagster partitions (``orchestration.defs.reports.partitions``) and the API (which must
stay light and never load Dagster) share these rules, so a request the API
calls "exactly one month partition" is exactly what the asset builds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from assets.contract import DAGSTER_PARTITION_TAG, INSTITUTION_DIMENSION, MONTH_DIMENSION, dagster_dimension_tag

#: First monthly partition when the deployment sets none (``LXP_FIRST_MONTH``,
#: read by ``orchestration.settings``; assets never read settings themselves).
DEFAULT_FIRST_MONTH = "2024-01"


def parse_month(text: str) -> date:
    """``"YYYY-MM"`` -> the first day of that month."""
    year, month = text.split("-")
    return date(int(year), int(month), 1)


def is_partition_month(month: date, first_month: date, today: date | None = None) -> bool:
    """Whether ``month`` (a first day) is a monthly partition: from ``first_month``
    (the retention setting) to the still-open current month (UTC, as Dagster's
    monthly partitions count)."""
    current = (today or datetime.now(UTC).date()).replace(day=1)
    return first_month <= month <= current


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
