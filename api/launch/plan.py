"""The request a launcher works on: report, institution, period, filters, format.

A request that is exactly one month with no filters materializes that asset
partition, so API, schedule and UI runs share one cache; anything else runs the
report's ad-hoc job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from assets.spec import Institution
from orchestration.cache_key import cache_key as compute_cache_key
from orchestration.periods import is_partition_month, month_bounds, partition_key


@dataclass(frozen=True)
class RunPlan:
    """Everything needed to look up, dedupe and launch one report request."""

    spec_name: str
    slug: str
    institution: Institution
    start: datetime
    end: datetime  # exclusive
    filters: Mapping[str, Any] = field(default_factory=dict)
    fmt: str = "xlsx"
    cache_params: Mapping[str, Any] = field(default_factory=dict)
    period: str = ""

    @property
    def cache_key(self) -> str:
        return compute_cache_key(self.slug, self.institution.id, self.cache_params)

    @property
    def partition_key(self) -> str | None:
        """``"<institution>|<YYYY-MM-01>"`` when the request is exactly one existing month partition."""
        if self.filters:
            return None
        month = self.start.astimezone(self.institution.tz).date().replace(day=1)
        if (self.start, self.end) != month_bounds(month, self.institution.timezone):
            return None
        if not is_partition_month(month):
            return None  # the monthly partitions run from LXP_FIRST_MONTH to the current month
        return partition_key(self.institution.id, month)

    def open_period(self, now: datetime) -> bool:
        """True when the period has not ended yet (its file may still change)."""
        return self.end > now


def month_period(institution: Institution, year: int, month: int) -> tuple[datetime, datetime]:
    return month_bounds(date(year, month, 1), institution.timezone)


def date_range_period(institution: Institution, first: date, last: date) -> tuple[datetime, datetime]:
    """Inclusive local dates -> [first 00:00, day after last 00:00) in the institution's timezone."""
    start = datetime(first.year, first.month, first.day, tzinfo=institution.tz)
    after = last + timedelta(days=1)
    return start, datetime(after.year, after.month, after.day, tzinfo=institution.tz)
