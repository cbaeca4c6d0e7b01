"""What a report *is*, independent of how it runs.

A report module under ``assets/reports/`` exports one ``SPEC: ReportSpec``:
its output columns (internal key, exact file header, kind), the extraction
queries it needs (portable SQL with ``:name`` parameters, always filtered by
institution and period so the warehouse does the pruning) and a pure Polars
builder. The orchestration layer turns every spec in ``assets.registry`` into a
partitioned asset and an ad-hoc job; nothing else needs wiring.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl

ColumnKind = Literal["text", "int", "float", "bool", "date", "datetime"]


@dataclass(frozen=True)
class Column:
    """One output column.

    ``key`` is the frame column / JSON key, ``header`` the exact header written
    to xlsx (and to csv unless ``csv_header`` overrides it). ``date`` columns
    hold ``pl.Date`` and ``datetime`` columns hold naive *local* ``pl.Datetime``
    so writers can emit real Excel dates formatted DD/MM/YYYY [HH:mm].
    """

    key: str
    header: str
    kind: ColumnKind = "text"
    csv_header: str | None = None
    width: float | None = None


@dataclass(frozen=True)
class Institution:
    id: int
    name: str
    subdomain: str
    timezone: str = "America/Sao_Paulo"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ReportRequest:
    """Parameters of one report computation.

    ``start``/``end`` are timezone-aware instants, ``start`` inclusive and
    ``end`` exclusive (a month is [first day 00:00, next first day 00:00) local).
    ``filters`` holds report-specific filters (e.g. ``school_ids``), ``options``
    configuration the builder needs (URL templates, notice hours), ``as_of`` the
    instant the report is evaluated at (booking status depends on it).
    """

    institution: Institution
    start: datetime | None
    end: datetime | None
    as_of: datetime
    filters: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def query_params(self) -> dict[str, Any]:
        """SQL parameters every extraction query may use: UTC-naive bounds."""
        utc = ZoneInfo("UTC")
        params: dict[str, Any] = {"institution_id": self.institution.id}
        if self.start is not None and self.end is not None:
            params["start_utc"] = self.start.astimezone(utc).replace(tzinfo=None)
            params["end_utc"] = self.end.astimezone(utc).replace(tzinfo=None)
        return params


Builder = Callable[[Mapping[str, pl.DataFrame], ReportRequest], pl.DataFrame]
# Builds every institution of a batch at once (see ``assets.batching``): frames keyed by the batch
# column, the batch's requests (same period, timezone, options, filters); result keyed the same way.
BatchBuilder = Callable[[Mapping[str, pl.DataFrame], Sequence[ReportRequest]], pl.DataFrame]
# Nested reports (groups usage): the JSON document, and an xlsx writer for it
# taking (summary, path, title-or-None).
Summary = Callable[[Mapping[str, pl.DataFrame], ReportRequest], dict[str, Any]]
SummaryBatch = Callable[[Mapping[str, pl.DataFrame], Sequence[ReportRequest]], dict[int, dict[str, Any]]]
SummaryXlsxWriter = Callable[[Mapping[str, Any], Any, str | None], None]


@dataclass(frozen=True)
class ReportSpec:
    """A report type. ``name`` is the asset name, ``slug`` the URL/file name part."""

    name: str
    slug: str
    title: str
    description: str
    columns: tuple[Column, ...]
    queries: Mapping[str, str]
    build: Builder
    monthly: bool = True
    # Optional: the builder for many institutions at once (a backfill run's chunk); when set,
    # ``build`` must be ``assets.batching.batch_of_one(build_batch)``, so both are one code.
    build_batch: BatchBuilder | None = None
    filter_names: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("xlsx", "csv", "json")
    default_format: str = "xlsx"
    sheet_name: str = "Relatório"
    # Optional, for nested reports only: when set, JSON output is
    # ``summary(frames, request)`` and xlsx output is ``summary_xlsx(summary,
    # path, title)``; ``build`` still gives the flat table used for csv.
    summary: Summary | None = None
    # ...and, optionally, every institution's summary of a batch at once (see ``build_batch``);
    # ``summary`` is then its batch of one.
    summary_batch: SummaryBatch | None = None
    summary_xlsx: SummaryXlsxWriter | None = None
    # ...the filter whose value titles the xlsx document, and what the document
    # counts as its rows (run metadata, job rows).
    summary_title_filter: str | None = None
    summary_rows: Callable[[Mapping[str, Any]], int] | None = None
    # What a null cell becomes in flat JSON output: None -> ``null``; seed 002's
    # flat reports show absent values (ratings, durations included) as ``""``.
    json_null: Any = None

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    @property
    def csv_headers(self) -> list[str]:
        return [c.csv_header or c.header for c in self.columns]

    def empty_frame(self) -> pl.DataFrame:
        """A zero-row frame with the right dtypes, for empty months."""
        return pl.DataFrame(schema={c.key: KIND_DTYPES[c.kind] for c in self.columns})


KIND_DTYPES: dict[str, pl.DataType] = {
    "text": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us"),
}


def to_local(expr: pl.Expr, tz: str) -> pl.Expr:
    """UTC-naive warehouse timestamp -> naive local wall-clock time in ``tz``."""
    return expr.dt.replace_time_zone("UTC").dt.convert_time_zone(tz).dt.replace_time_zone(None)


def collation_key(text: pl.Expr) -> pl.Expr:
    """Accent- and case-insensitive sort key ('Ética' -> 'etica'; NFKD minus combining
    marks), so pt-BR names sort the way a reader expects instead of accented letters after 'z'."""
    return text.str.normalize("NFKD").str.replace_all(r"\p{M}", "").str.to_lowercase()
