"""Report file writers: xlsx (streaming, multi-sheet), csv and json.

Every writer takes the report frame (columns named by ``Column.key``) and the
spec's columns, writes atomically and returns a ``WriteResult`` with the size
and SHA-256 of exactly what landed on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from assets.spec import Column
from assets.writers.csvfile import write_csv
from assets.writers.formats import FORMATS, Format
from assets.writers.jsonfile import write_json
from assets.writers.result import WriteResult
from assets.writers.xlsx import MAX_ROWS_PER_SHEET, write_xlsx


def write_report(
    frame: pl.DataFrame,
    columns: Sequence[Column],
    path: str | Path,
    fmt: Format,
    *,
    sheet_name: str = "Relatório",
    json_null: object = None,
) -> WriteResult:
    """Dispatch on ``fmt``; ``sheet_name`` only matters for xlsx, ``json_null``
    (what a null is written as) only for json."""
    if fmt == "xlsx":
        return write_xlsx(frame, columns, path, sheet_name=sheet_name)
    if fmt == "csv":
        return write_csv(frame, columns, path)
    if fmt == "json":
        return write_json(frame, columns, path, null_as=json_null)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {FORMATS}")


__all__ = [
    "FORMATS",
    "MAX_ROWS_PER_SHEET",
    "Format",
    "WriteResult",
    "write_csv",
    "write_json",
    "write_report",
    "write_xlsx",
]
