"""Render one report file from its computed inputs, in any offered format.

Shared by the Dagster runs (which then store the file) and the API's
synchronous answers. Flat reports go through ``write_report``; nested reports
(``spec.summary``) render their document for json/xlsx — what titles it and
what counts as its rows are the spec's hooks (``summary_title_filter``,
``summary_rows``), not knowledge of any one report here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import polars as pl

from assets.spec import ReportRequest, ReportSpec
from assets.writers import write_report
from assets.writers.formats import Format


@dataclass(frozen=True)
class Computed:
    """The extracted inputs and, built on first use, the flat table.

    Lazy because nested reports (``spec.summary``) render json/xlsx from the
    inputs alone: building the flat table too would compute them twice."""

    spec: ReportSpec
    request: ReportRequest
    frames: Mapping[str, pl.DataFrame]
    #: The flat table, or the nested document, when it was already built with the rest of a batch
    #: (``spec.build_batch`` / ``spec.summary_batch``; ``orchestration.batch``).
    built: pl.DataFrame | None = field(default=None, repr=False, compare=False)
    summarized: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def frame(self) -> pl.DataFrame:
        frame = self.built if self.built is not None else self.spec.build(self.frames, self.request)
        expected = [c.key for c in self.spec.columns]
        if frame.columns != expected:
            raise ValueError(f"{self.spec.name} builder returned columns {frame.columns}, spec says {expected}")
        return frame


@dataclass(frozen=True)
class Rendered:
    rows: int
    preview_md: str
    #: The file's SHA-256 when the writer hashed it on the way out (the flat formats, see
    #: ``WriteResult``), so storing it need not read it again; None for nested documents.
    sha256: str | None = None


def renders_summary(spec: ReportSpec, fmt: str) -> bool:
    """Whether ``fmt`` of this report is its nested document (json/xlsx of a ``spec.summary`` report)
    rather than the flat table."""
    return spec.summary is not None and fmt in ("json", "xlsx")


def render_file(spec: ReportSpec, computed: Computed, request: ReportRequest, fmt: str, path: Path) -> Rendered:
    """Write one report file; nested reports (``spec.summary``) render their
    document for json/xlsx (rows = its students) and the flat table for csv."""
    if fmt not in spec.formats:
        raise ValueError(f"{spec.name} offers {spec.formats}, not {fmt!r}")
    if renders_summary(spec, fmt):
        assert spec.summary is not None
        summary = computed.summarized if computed.summarized is not None else spec.summary(computed.frames, request)
        if fmt == "json":
            path.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
        elif spec.summary_xlsx is not None:
            title = request.filters.get(spec.summary_title_filter) if spec.summary_title_filter else None
            spec.summary_xlsx(summary, path, title)
        else:
            raise ValueError(f"{spec.name} has no xlsx renderer")
        scalars = {k: v for k, v in summary.items() if not isinstance(v, (list, dict))}
        preview = "\n".join(["| field | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in scalars.items())])
        rows = spec.summary_rows(summary) if spec.summary_rows is not None else 0
        return Rendered(rows=rows, preview_md=preview)
    flat_fmt = cast(Format, fmt)  # one of spec.formats, checked above
    written = write_report(
        computed.frame, spec.columns, path, flat_fmt, sheet_name=spec.sheet_name, json_null=spec.json_null
    )
    return Rendered(rows=computed.frame.height, preview_md=preview_markdown(computed.frame), sha256=written.sha256)


def preview_markdown(frame: pl.DataFrame, rows: int = 5) -> str:
    """A tiny Markdown table for the Dagster UI (no pandas dependency)."""
    head = frame.head(rows)
    cols = head.columns

    def esc(v: object) -> str:
        return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")[:60]

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in head.iter_rows()]
    return "\n".join(lines)
