"""The warehouse tables as Polars schemas, parsed from ``schema.sql`` (the one declaration).

Parsing the DDL instead of repeating column lists in Python keeps the loaders,
the generator, the report inputs and the test fixtures in step with the tables
the warehouse really has. ``conform`` is the single place where a frame is
checked against that declaration: extraction already delivers declared types
(Arrow-native), so for report inputs it only checks and aligns (an all-null or
empty frame, another integer width); a column arriving with the wrong kind of
type is an error, not something to paper over in a builder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources

import polars as pl

SQL_TYPES: dict[str, pl.DataType] = {
    "BIGINT": pl.Int64(),
    "INTEGER": pl.Int32(),
    "VARCHAR": pl.String(),
    "TIMESTAMP": pl.Datetime("us"),  # WITHOUT TIME ZONE, holding UTC instants
    "BOOLEAN": pl.Boolean(),
    "DOUBLE PRECISION": pl.Float64(),
}
_CREATE = re.compile(r"CREATE TABLE (\w+) \((.*?)\n\);", re.S)
_COLUMN = re.compile(r"^\s*(\w+)\s+(" + "|".join(SQL_TYPES) + r")\b")

# Event tables are loaded sorted on (institution_id, time) so one institution's
# month is a contiguous range (zone maps in DuckDB, index/heap locality in PostgreSQL).
SORT_KEYS: dict[str, list[str]] = {
    "institutions": ["id"],
    "stories": ["institution_id", "storyboard_id", "position"],
    "story_views": ["institution_id", "viewed_at"],
    "storyboard_reactions": ["institution_id", "reacted_at"],
    "course_schools": ["institution_id", "course_id", "school_id"],
    "course_views": ["institution_id", "viewed_at"],
    "enrollments": ["institution_id", "enrolled_at"],
    "library_contents": ["institution_id", "created_at"],
    "library_content_links": ["institution_id", "content_id", "link_type", "ref_id"],
    "group_members": ["institution_id", "joined_at"],
    "teacher_disciplines": ["institution_id", "teacher_id", "discipline_id"],
    "questions": ["institution_id", "created_at"],
    "bookings": ["institution_id", "scheduled_for"],
    "nps_answers": ["institution_id", "answered_at"],
}


def schema_sql() -> str:
    """The DDL (portable: the same text creates the tables in DuckDB and PostgreSQL)."""
    return resources.files("assets.warehouse").joinpath("schema.sql").read_text(encoding="utf-8")


def indexes_sql() -> str:
    """The indexes, created after a bulk load."""
    return resources.files("assets.warehouse").joinpath("indexes.sql").read_text(encoding="utf-8")


@cache
def table_schemas() -> dict[str, pl.Schema]:
    """Table name -> Polars schema, in DDL order (tables and columns)."""
    text = re.sub(r"--[^\n]*", "", schema_sql())
    out: dict[str, pl.Schema] = {}
    for name, body in _CREATE.findall(text):
        cols: dict[str, pl.DataType] = {}
        for line in body.splitlines():
            m = _COLUMN.match(line)
            if m:
                cols[m.group(1)] = SQL_TYPES[m.group(2)]
        out[name] = pl.Schema(cols)
    return out


def table_names() -> tuple[str, ...]:
    """Every warehouse table, in DDL (= load) order."""
    return tuple(table_schemas())


def table_schema(table: str, columns: Sequence[str] | None = None) -> pl.Schema:
    """The declared dtypes of ``table`` (of ``columns`` only, in that order, when given)."""
    schema = table_schemas()[table]
    if columns is None:
        return schema
    unknown = [c for c in columns if c not in schema]
    if unknown:
        raise ValueError(f"{table}: no such columns {unknown} in schema.sql")
    return pl.Schema({c: schema[c] for c in columns})


def sort_keys(table: str) -> list[str]:
    """The load order of ``table``: (institution_id, time) for event tables."""
    if table in SORT_KEYS:
        return SORT_KEYS[table]
    return ["institution_id", "id"] if "id" in table_schemas()[table] else ["institution_id"]


def empty_frame(table: str, columns: Sequence[str] | None = None) -> pl.DataFrame:
    return pl.DataFrame(schema=table_schema(table, columns))


def _alignable(actual: pl.DataType, declared: pl.DataType) -> bool:
    """Casts that keep the meaning (checked value by value with ``strict=True``)."""
    if actual == pl.Null():
        return True
    if actual.is_numeric() and declared.is_numeric():
        return True
    return isinstance(actual, pl.Datetime) and isinstance(declared, pl.Datetime) and actual.time_zone is None


def conform(
    table: str,
    source: pl.DataFrame | Mapping[str, pl.DataFrame] | None,
    columns: Sequence[str] | None = None,
    *,
    required: bool = False,
) -> pl.DataFrame:
    """``source`` (a frame, or the extraction frames holding one named ``table``) as declared.

    Keeps ``columns`` (default: the declared columns the frame has) in that order with
    the declared dtypes. A declared dtype is a no-op; an all-null column, another
    integer/float width or another timestamp unit is cast strictly; anything else
    (text where a number is declared, a time-zone-aware timestamp) is a ``TypeError``.
    A missing frame, or one without columns, is an empty frame (``KeyError`` when
    ``required``); a missing column is a ``ValueError``.
    """
    frame = source.get(table) if isinstance(source, Mapping) else source
    if frame is None and required:
        raise KeyError(f"missing input frame {table!r}")
    declared = table_schemas()[table]
    if frame is None or frame.width == 0:
        return empty_frame(table, columns)
    wanted = list(columns) if columns is not None else [c for c in declared if c in frame.columns]
    schema = table_schema(table, wanted)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: frame lacks columns {missing}")
    exprs: list[pl.Expr] = []
    for column, dtype in schema.items():
        actual = frame.schema[column]
        if actual == dtype:
            exprs.append(pl.col(column))
        elif _alignable(actual, dtype):
            exprs.append(pl.col(column).cast(dtype, strict=True))
        else:
            raise TypeError(f"{table}.{column} arrived as {actual}, schema.sql declares {dtype}")
    return frame.select(exprs)
