"""CSV report files: UTF-8, pt-BR date formats, formula-injection safe.

Text values that a spreadsheet would evaluate (starting with ``= + - @``, tab
or carriage return) get a leading single quote, as OWASP recommends for CSV
injection: Excel/LibreOffice then show the text instead of running it, and a
program reading the CSV sees the quote and can strip it. Only text columns are
touched, so negative numbers in int/float columns stay numbers. Booleans are
``true``/``false`` (as in JSON); nulls are empty fields.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from assets.spec import Column
from assets.writers.result import WriteResult, atomic_output, check_columns, normalized

CHUNK_ROWS = 65_536
_INJECTION = r"^[=+\-@\t\r]"


def csv_value(frame: pl.DataFrame, column: Column) -> pl.Expr:
    """The column as the text written to the CSV field (null stays null)."""
    value = normalized(frame, column)
    if column.kind == "text":
        return pl.when(value.str.contains(_INJECTION)).then(pl.lit("'") + value).otherwise(value)
    if column.kind == "date":
        return value.dt.strftime("%d/%m/%Y")
    if column.kind == "datetime":
        return value.dt.strftime("%d/%m/%Y %H:%M")
    if column.kind == "bool":
        return pl.when(value).then(pl.lit("true")).when(value.not_()).then(pl.lit("false"))
    if column.kind == "float":
        return pl.when(value.is_finite()).then(value.cast(pl.String))
    return value.cast(pl.String)


def write_csv(frame: pl.DataFrame, columns: Sequence[Column], path: str | Path) -> WriteResult:
    """Write ``frame`` as CSV; the header is ``column.csv_header or column.header``.

    Rows are converted and written in chunks, so memory is the frame plus one
    chunk of strings.
    """
    check_columns(frame, columns)
    exprs = [csv_value(frame, c).alias(str(i)) for i, c in enumerate(columns)]
    header = pl.DataFrame(schema={c.csv_header or c.header: pl.String for c in columns})
    with atomic_output(path) as out:
        buf = io.BytesIO()
        header.write_csv(buf, include_header=True)
        out.write(buf.getvalue())
        for start in range(0, frame.height, CHUNK_ROWS):
            buf = io.BytesIO()
            frame.slice(start, CHUNK_ROWS).select(exprs).write_csv(buf, include_header=False, null_value="")
            out.write(buf.getvalue())
    return WriteResult(Path(path), frame.height, out.bytes, out.sha256.hexdigest(), 1)
