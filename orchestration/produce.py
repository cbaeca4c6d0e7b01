"""Compute one report and store its file — shared by the partitioned assets,
the ad-hoc jobs and (for the compute half) the API's synchronous reports."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from assets.contract import ProducedFile
from assets.spec import ReportRequest, ReportSpec
from orchestration.warehouse.client import Warehouse

CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


@dataclass(frozen=True)
class Computed:
    """The extracted inputs and, built on first use, the flat table.

    Lazy because nested reports (``spec.summary``) render json/xlsx from the
    inputs alone: building the flat table too would compute them twice."""

    spec: ReportSpec
    request: ReportRequest
    frames: Mapping[str, pl.DataFrame]

    @cached_property
    def frame(self) -> pl.DataFrame:
        frame = self.spec.build(self.frames, self.request)
        expected = [c.key for c in self.spec.columns]
        if frame.columns != expected:
            raise ValueError(f"{self.spec.name} builder returned columns {frame.columns}, spec says {expected}")
        return frame


def compute(spec: ReportSpec, request: ReportRequest, warehouse: Warehouse) -> Computed:
    """Extract (institution + period pushed down); building happens in Polars on use."""
    return Computed(spec=spec, request=request, frames=warehouse.query_many(spec.queries, request.query_params()))


@dataclass(frozen=True)
class Rendered:
    rows: int
    preview_md: str


def render_file(spec: ReportSpec, computed: Computed, request: ReportRequest, fmt: str, path: Path) -> Rendered:
    """Write one report file; nested reports (``spec.summary``) render their
    document for json/xlsx (rows = its students) and the flat table for csv."""
    from assets.writers import write_report

    if fmt not in spec.formats:
        raise ValueError(f"{spec.name} offers {spec.formats}, not {fmt!r}")
    if spec.summary is not None and fmt in ("json", "xlsx"):
        summary = spec.summary(computed.frames, request)
        if fmt == "json":
            path.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
        elif spec.summary_xlsx is not None:
            spec.summary_xlsx(summary, path, request.filters.get("name"))
        else:
            raise ValueError(f"{spec.name} has no xlsx renderer")
        scalars = {k: v for k, v in summary.items() if not isinstance(v, (list, dict))}
        preview = "\n".join(["| field | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in scalars.items())])
        return Rendered(rows=len(summary.get("students", [])), preview_md=preview)
    write_report(computed.frame, spec.columns, path, fmt, sheet_name=spec.sheet_name, json_null=spec.json_null)
    return Rendered(rows=computed.frame.height, preview_md=preview_markdown(computed.frame))


def preview_markdown(frame: pl.DataFrame, rows: int = 5) -> str:
    """A tiny Markdown table for the Dagster UI (no pandas dependency)."""
    head = frame.head(rows)
    cols = head.columns
    esc = lambda v: "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")[:60]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in head.iter_rows()]
    return "\n".join(lines)


def write_and_store(
    spec: ReportSpec,
    computed: Computed,
    request: ReportRequest,
    fmt: str,
    storage: Any,
    storage_key: str,
    filename: str,
) -> ProducedFile:
    """Write the file in a temp dir, then hand it to storage (atomic on its side)."""
    with tempfile.TemporaryDirectory(prefix="lxp-report-") as tmp:
        path = Path(tmp) / filename
        rendered = render_file(spec, computed, request, fmt, path)
        stored = storage.put_file(path, storage_key, CONTENT_TYPES[fmt])
    return ProducedFile(
        storage_key=stored.key,
        filename=filename,
        rows=rendered.rows,
        bytes=stored.bytes,
        sha256=stored.sha256,
        preview_md=rendered.preview_md,
    )
