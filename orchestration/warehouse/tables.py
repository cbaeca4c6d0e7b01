"""The warehouse declaration as orchestration code imports it (a re-export).

The one declaration lives in ``assets.warehouse`` (``schema.sql`` + ``tables.py``)
so report modules can read it too; this module keeps the generator and loader
imports stable. ``conform`` here is the declaration's helper applied to a whole
table (every declared column required), which is what generated frames must be.
"""

from __future__ import annotations

import polars as pl

from assets.warehouse import tables as _declared
from assets.warehouse.tables import (
    SORT_KEYS,
    empty_frame,
    indexes_sql,
    schema_sql,
    sort_keys,
    table_names,
    table_schema,
    table_schemas,
)

__all__ = [
    "SORT_KEYS",
    "conform",
    "empty_frame",
    "indexes_sql",
    "schema_sql",
    "sort_keys",
    "table_names",
    "table_schema",
    "table_schemas",
]


def conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Every declared column of ``table``, in DDL order, with the DDL's types (a missing column is an error)."""
    return _declared.conform(table, frame, table_schema(table).names())
