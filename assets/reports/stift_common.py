"""Helpers shared by the Stift-style reports (seed 002): questions, bookings,
bookings workload and groups usage.

Why a module of its own: the four reports read the same warehouse tables and
format values the same way (local ``DD/MM/YYYY HH:mm``, ISO-8601 UTC with
milliseconds, ``""`` for absent text), so the rules live in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from assets.batching import BATCH_COLUMN
from assets.spec import Column, ColumnKind, ReportRequest, to_local


def csv_columns(headers: Mapping[str, str], kinds: Mapping[str, ColumnKind] | None = None) -> tuple[Column, ...]:
    """One column per ``key -> CSV header`` entry, in order: the key is also the
    xlsx header, the kind is ``kinds[key]`` (``"text"`` when not listed)."""
    kinds = kinds or {}
    return tuple(Column(key, key, kinds.get(key, "text"), csv_header=csv) for key, csv in headers.items())


def by_institution(table: str, columns: str) -> str:
    """``SELECT columns FROM table`` restricted to the request's institution (a dimension query)."""
    return f"SELECT {columns} FROM {table} WHERE institution_id = :institution_id"


def in_period(column: str) -> str:
    """SQL predicate: the institution's rows with ``column`` in the half-open UTC window
    ``[:start_utc, :end_utc)``."""
    return f"institution_id = :institution_id AND {column} >= :start_utc AND {column} < :end_utc"


def id_filter(request: ReportRequest, key: str, dtype: pl.DataType) -> list[Any] | None:
    """A list filter from ``request.filters`` cast to the id dtype, or None when absent/empty.

    Clients send ids as strings or numbers; group ids are VARCHAR, school ids BIGINT.
    """
    raw = request.filters.get(key)
    if raw is None:
        return None
    values: Iterable[Any] = [raw] if isinstance(raw, (str, int)) else raw
    out = pl.Series(key, [str(v) for v in values], pl.String()).cast(dtype).to_list()
    return out or None


def local_text(expr: pl.Expr, tz: str, fmt: str = "%d/%m/%Y %H:%M") -> pl.Expr:
    """UTC-naive timestamp -> local text (``DD/MM/YYYY HH:mm`` by default), ``""`` when null."""
    return to_local(expr, tz).dt.strftime(fmt).fill_null("")


def iso_utc(expr: pl.Expr) -> pl.Expr:
    """UTC-naive timestamp -> ``2024-02-19T14:04:02.057Z`` (milliseconds, Z), ``""`` when null."""
    return expr.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").fill_null("")


def text(expr: pl.Expr) -> pl.Expr:
    """Absent text is ``""`` in these reports (seed 002 examples)."""
    return expr.cast(pl.String()).fill_null("")


def dimension(frame: pl.DataFrame, key: str, columns: Mapping[str, str], on: str = "id") -> pl.DataFrame:
    """A dimension frame ready to left-join on ``key``: its ``on`` column renamed
    to ``key`` and ``columns`` renamed source -> alias (one row per key; per institution
    and key, with the institution first, when the frame is keyed by ``BATCH_COLUMN``)."""
    batch = [BATCH_COLUMN] if BATCH_COLUMN in frame.columns else []
    return frame.select(
        [*batch, pl.col(on).alias(key), *(pl.col(src).alias(dst) for src, dst in columns.items())]
    ).unique([*batch, key], keep="first", maintain_order=True)
