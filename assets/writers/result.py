"""What every writer returns, and the atomic, hashed output file they share."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets.spec import Column
from assets.writers.zipstream import HashingFile


@dataclass(frozen=True)
class WriteResult:
    """A finished report file: ``bytes``/``sha256`` describe exactly what is on disk.

    ``rows`` counts data rows (headers excluded); ``sheets`` is 1 for csv/json.
    """

    path: Path
    rows: int
    bytes: int
    sha256: str
    sheets: int = 1


@contextmanager
def atomic_output(path: str | Path) -> Iterator[HashingFile]:
    """Write to a temporary sibling and rename on success.

    Readers (the API, a storage upload) never see a half-written report, and a
    failed write leaves no file behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as raw:
            yield HashingFile(raw)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_columns(frame: pl.DataFrame, columns: Sequence[Column]) -> None:
    """Fail early and clearly when the frame does not carry the spec's columns."""
    if not columns:
        raise ValueError("a report needs at least one column")
    keys = [c.key for c in columns]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate column keys: {keys}")
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}; it has {frame.columns}")


def normalized(frame: pl.DataFrame, column: Column) -> pl.Expr:
    """The column coerced to its kind's dtype (dates/datetimes as naive local)."""
    expr = pl.col(column.key)
    dtype = frame.schema[column.key]
    if column.kind in ("date", "datetime") and isinstance(dtype, pl.Datetime) and dtype.time_zone:
        expr = expr.dt.replace_time_zone(None)
    target = {
        "text": pl.String(),
        "int": pl.Int64(),
        "float": pl.Float64(),
        "bool": pl.Boolean(),
        "date": pl.Date(),
        "datetime": pl.Datetime("us"),
    }[column.kind]
    return expr if dtype == target else expr.cast(target)
