"""One report request, and every name derived from it.

The HTTP routes, the launcher, the ad-hoc job and the partitioned asset all
describe the same thing — *this report, for this institution, over this
period, with these filters, in this format* — and each used to format the
period, the file name, the cache parameters or the "is this exactly one month"
test on its own. :class:`RequestedReport` is that request, frozen; the rules
that turn it into names live here once and nothing parses a name back:

* the **period label** (file names, storage keys): ``2026-06`` for a month the
  client asked for, ``2026-01-01_2026-06-02`` (local first and last day) for a
  range, ``snapshot-<UTC date>`` for a snapshot report;
* the **period text** of notifications (pt-BR): ``06/2026``,
  ``01/01/2026 a 02/06/2026``;
* the **cache parameters** are the request as the client expressed it (a
  month, inclusive dates, or instants) plus its filters, so the same question
  asked twice has the same ``cache_key``;
* the **exact-month partition**: a whole monthly partition without filters is
  answered by (and cached as) that asset partition;
* the **ad-hoc run config** for anything else.

``assets.spec.ReportRequest`` stays the builders' view (this request evaluated
at an instant with the deployment's options): :meth:`RequestedReport.inputs`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from assets.cache_key import cache_key as compute_cache_key
from assets.contract import AdhocParams
from assets.periods import is_partition_month, month_bounds, partition_key
from assets.spec import Institution, ReportRequest, ReportSpec

#: How the client stated the period: a calendar month, inclusive local dates,
#: instants (the sync endpoints' milliseconds, the ad-hoc launchpad) or none (snapshot).
Expressed = Literal["month", "dates", "range", "snapshot"]

_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")


def _part(value: object, what: str) -> str:
    text = str(value)
    if not _SAFE_PART.match(text) or ".." in text:
        raise ValueError(f"invalid {what} for a file name: {text!r}")
    return text


def download_filename(report_slug: str, institution_id: int, period: str, fmt: str) -> str:
    """File name the user sees, e.g. ``storyboard-usage_1_2026-06.xlsx`` (also the last part of its storage key)."""
    return f"{_part(report_slug, 'report')}_{int(institution_id)}_{_part(period, 'period')}.{_part(fmt, 'format')}"


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


@dataclass(frozen=True)
class RequestedReport:
    """Report, institution, ``[start, end)`` (aware; both None for a snapshot),
    filters and format — plus how the period was stated (see :data:`Expressed`)."""

    spec: ReportSpec
    institution: Institution
    start: datetime | None
    end: datetime | None
    fmt: str
    filters: Mapping[str, Any] = field(default_factory=dict)
    expressed: Expressed = "range"

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", MappingProxyType(dict(self.filters)))
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither for snapshot reports")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"start {self.start.isoformat()!r} must be before end {self.end.isoformat()!r}")

    # -- constructors ------------------------------------------------------------

    @classmethod
    def for_month(
        cls,
        spec: ReportSpec,
        institution: Institution,
        month: date,
        fmt: str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> RequestedReport:
        """A calendar month, bounded in the institution's timezone."""
        start, end = month_bounds(month.replace(day=1), institution.timezone)
        return cls(spec, institution, start, end, fmt or spec.default_format, filters or {}, "month")

    @classmethod
    def for_dates(
        cls,
        spec: ReportSpec,
        institution: Institution,
        first: date,
        last: date,
        fmt: str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> RequestedReport:
        """Inclusive local dates -> ``[first 00:00, day after last 00:00)`` in the institution's timezone."""
        tz = institution.tz
        start, end = _day_start(first, tz), _day_start(last + timedelta(days=1), tz)
        return cls(spec, institution, start, end, fmt or spec.default_format, filters or {}, "dates")

    @classmethod
    def for_range(
        cls,
        spec: ReportSpec,
        institution: Institution,
        start: datetime,
        end: datetime,
        fmt: str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> RequestedReport:
        """Instants ``[start, end)``."""
        return cls(spec, institution, start, end, fmt or spec.default_format, filters or {}, "range")

    @classmethod
    def snapshot(
        cls,
        spec: ReportSpec,
        institution: Institution,
        fmt: str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> RequestedReport:
        """A report of the current state (no period)."""
        return cls(spec, institution, None, None, fmt or spec.default_format, filters or {}, "snapshot")

    @classmethod
    def from_adhoc(cls, spec: ReportSpec, institution: Institution, params: AdhocParams) -> RequestedReport:
        """The request an ad-hoc run's config describes. A time without an offset
        (typed in the UI's launchpad) is the institution's local time, never the
        server's; both bounds or neither must be given. ValueError otherwise."""
        fmt = params.fmt or spec.default_format
        if fmt not in spec.formats:
            raise ValueError(f"format {fmt!r} not offered by {spec.name}; use one of {spec.formats}")
        filters = json.loads(params.filters_json or "{}")
        if not isinstance(filters, dict):
            raise ValueError("filters_json must be a JSON object")
        unknown = set(filters) - set(spec.filter_names)
        if unknown:
            raise ValueError(f"unknown filters for {spec.name}: {sorted(unknown)}")
        if not params.start and not params.end:
            return cls.snapshot(spec, institution, fmt, filters)
        if not params.start or not params.end:
            raise ValueError("give both start and end (ISO-8601), or neither for snapshot reports")

        def parse(text: str) -> datetime:
            value = datetime.fromisoformat(text)
            return value.replace(tzinfo=institution.tz) if value.tzinfo is None else value

        return cls.for_range(spec, institution, parse(params.start), parse(params.end), fmt, filters)

    # -- the period ----------------------------------------------------------------

    @property
    def month(self) -> date | None:
        """The first day of the month when the client asked for a calendar month."""
        if self.expressed != "month" or self.start is None:
            return None
        return self.start.astimezone(self.institution.tz).date()

    def local_days(self) -> tuple[date, date] | None:
        """First and last local day of the period (``end`` is exclusive); None for a snapshot."""
        if self.start is None or self.end is None:
            return None
        tz = self.institution.tz
        return self.start.astimezone(tz).date(), (self.end.astimezone(tz) - timedelta(microseconds=1)).date()

    def period_label(self, as_of: datetime) -> str:
        """``2026-06``, ``2026-01-01_2026-06-02`` or ``snapshot-<as_of's UTC date>`` (file names, storage keys)."""
        month = self.month
        if month is not None:
            return f"{month:%Y-%m}"
        days = self.local_days()
        if days is None:
            return f"snapshot-{as_of.astimezone(UTC):%Y-%m-%d}"
        return f"{days[0]:%Y-%m-%d}_{days[1]:%Y-%m-%d}"

    def period_text(self, as_of: datetime) -> str:
        """The period as a pt-BR notification says it: ``06/2026``, ``01/01/2026 a 02/06/2026``."""
        month = self.month
        if month is not None:
            return f"{month:%m/%Y}"
        days = self.local_days()
        if days is None:
            return self.period_label(as_of)
        return f"{days[0]:%d/%m/%Y} a {days[1]:%d/%m/%Y}"

    def file_name(self, as_of: datetime) -> str:
        """Name of the stored file and of its download."""
        return download_filename(self.spec.slug, self.institution.id, self.period_label(as_of), self.fmt)

    def answer_file_name(self, now: datetime) -> str:
        """Name of a synchronous answer: as :meth:`file_name`, but a snapshot is named
        by the institution's local date alone (``bookings-workload_1_2026-06-15.csv``)."""
        if self.local_days() is None:
            return download_filename(
                self.spec.slug, self.institution.id, f"{now.astimezone(self.institution.tz):%Y-%m-%d}", self.fmt
            )
        return self.file_name(now)

    def open_period(self, now: datetime) -> bool:
        """True when the period has not ended yet (its file may still change); a snapshot is always open."""
        return self.end is None or self.end > now

    # -- Dagster ---------------------------------------------------------------------

    def partition_month(self, first_month: date, now: datetime | None = None) -> date | None:
        """The monthly partition this request is exactly (no filters, whole local month,
        between ``first_month`` — the retention setting, ``LXP_FIRST_MONTH`` — and the
        current month), else None."""
        if not self.spec.monthly or self.filters or self.start is None or self.end is None:
            return None
        month = self.start.astimezone(self.institution.tz).date().replace(day=1)
        if (self.start, self.end) != month_bounds(month, self.institution.timezone):
            return None
        if not is_partition_month(month, first_month, None if now is None else now.date()):
            return None  # the monthly partitions run from the first month to the current month
        return month

    def partition_key(self, first_month: date, now: datetime | None = None) -> str | None:
        """``"<institution>|<YYYY-MM-01>"`` when the request is exactly one existing month partition."""
        month = self.partition_month(first_month, now)
        return None if month is None else partition_key(self.institution.id, month)

    def adhoc_params(self) -> AdhocParams:
        """The ad-hoc job's run config for this request."""
        return AdhocParams(
            institution_id=self.institution.id,
            start=self.start.isoformat() if self.start is not None else "",
            end=self.end.isoformat() if self.end is not None else "",
            filters_json=json.dumps(dict(self.filters), sort_keys=True, ensure_ascii=False),
            fmt=self.fmt,
        )

    # -- identity ----------------------------------------------------------------------

    @property
    def cache_params(self) -> dict[str, Any]:
        """The request as the client expressed it, plus filters (nulls are dropped by the key)."""
        filters = dict(self.filters)
        month = self.month
        if month is not None:
            return {"month": f"{month:%Y-%m}", **filters}
        days = self.local_days()
        if self.expressed == "dates" and days is not None:
            return {"start_date": days[0].isoformat(), "end_date": days[1].isoformat(), **filters}
        return {
            "start": self.start.isoformat() if self.start is not None else "",
            "end": self.end.isoformat() if self.end is not None else "",
            "filters": filters,
            "fmt": self.fmt,
        }

    @property
    def cache_key(self) -> str:
        return compute_cache_key(self.spec.slug, self.institution.id, self.cache_params)

    # -- computation ----------------------------------------------------------------------

    def inputs(self, options: Mapping[str, Any], as_of: datetime | None = None) -> ReportRequest:
        """What the builders see: this request evaluated at ``as_of`` with the deployment's options."""
        return ReportRequest(
            institution=self.institution,
            start=self.start,
            end=self.end,
            as_of=as_of or datetime.now(UTC),
            filters=dict(self.filters),
            options=options,
        )
