"""Compute one report and store its file — shared by the partitioned assets,
the ad-hoc jobs and (for the compute half) the API's synchronous reports."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from assets.spec import Institution, ReportRequest, ReportSpec
from orchestration.warehouse.client import Warehouse

CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


@dataclass(frozen=True)
class ProducedReport:
    storage_key: str
    filename: str
    fmt: str
    rows: int
    bytes: int
    sha256: str
    preview_md: str

    def metadata(self) -> dict[str, Any]:
        return {
            "storage_key": self.storage_key,
            "filename": self.filename,
            "format": self.fmt,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


def build_request(
    institution: Institution,
    start: datetime | None,
    end: datetime | None,
    options: dict[str, Any],
    filters: dict[str, Any] | None = None,
    as_of: datetime | None = None,
) -> ReportRequest:
    return ReportRequest(
        institution=institution,
        start=start,
        end=end,
        as_of=as_of or datetime.now(timezone.utc),
        filters=filters or {},
        options=options,
    )


def compute_frame(spec: ReportSpec, request: ReportRequest, warehouse: Warehouse) -> pl.DataFrame:
    """Extract (institution + period pushed down) then build in Polars."""
    frames = warehouse.query_many(spec.queries, request.query_params())
    frame = spec.build(frames, request)
    expected = [c.key for c in spec.columns]
    if frame.columns != expected:
        raise ValueError(f"{spec.name} builder returned columns {frame.columns}, spec says {expected}")
    return frame


def preview_markdown(frame: pl.DataFrame, rows: int = 5) -> str:
    """A tiny Markdown table for the Dagster UI (no pandas dependency)."""
    head = frame.head(rows)
    cols = head.columns
    esc = lambda v: "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")[:60]  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in head.iter_rows()]
    return "\n".join(lines)


def write_and_store(
    spec: ReportSpec,
    frame: pl.DataFrame,
    request: ReportRequest,
    fmt: str,
    storage: Any,
    storage_key: str,
    filename: str,
) -> ProducedReport:
    """Write the file in a temp dir, then hand it to storage (atomic on its side)."""
    from assets.writers import write_report

    with tempfile.TemporaryDirectory(prefix="lxp-report-") as tmp:
        path = Path(tmp) / filename
        custom = getattr(spec, "write", None)
        if custom is not None:
            result = custom(frame, request, path, fmt)
        else:
            result = write_report(frame, spec.columns, path, fmt, sheet_name=spec.sheet_name)
        stored = storage.put_file(path, storage_key, CONTENT_TYPES[fmt])
    return ProducedReport(
        storage_key=stored.key,
        filename=filename,
        fmt=fmt,
        rows=result.rows,
        bytes=stored.bytes,
        sha256=stored.sha256,
        preview_md=preview_markdown(frame),
    )
