"""Report periods and partition keys, without importing Dagster.

The Dagster partitions (``orchestration.partitions``) and the API (which must
stay light and never load Dagster) share these rules, so a request the API
calls "exactly one month partition" is exactly what the asset builds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from orchestration.settings import get_settings


def parse_month(text: str) -> date:
    """``"YYYY-MM"`` -> the first day of that month."""
    year, month = text.split("-")
    return date(int(year), int(month), 1)


def months_start() -> date:
    """The first monthly partition (retention): ``LXP_FIRST_MONTH``, default 2024-01.

    Every monthly partition from here to the current month exists, so this
    bounds what the UI, the partition-status queries and the sensors walk."""
    return parse_month(get_settings().first_month)


def is_partition_month(month: date, today: date | None = None) -> bool:
    """Whether ``month`` (a first day) is a monthly partition: from ``months_start()``
    to the still-open current month (UTC, as Dagster's monthly partitions count)."""
    current = (today or datetime.now(UTC).date()).replace(day=1)
    return months_start() <= month <= current


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
        "dagster/partition": partition_key(institution_id, month),
        "dagster/partition/institution": str(institution_id),
        "dagster/partition/month": f"{month:%Y-%m-%d}",
    }
