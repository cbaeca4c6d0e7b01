"""The warehouse tables as Polars schemas, read from schema.sql.

schema.sql is the single source of truth; parsing it (instead of repeating
column lists in Python) keeps the generator, the loaders and empty fallback
frames in step with the DDL.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import polars as pl

_SQL_TYPES: dict[str, pl.DataType] = {
    "BIGINT": pl.Int64(),
    "INTEGER": pl.Int32(),
    "VARCHAR": pl.String(),
    "TIMESTAMP": pl.Datetime("us"),
    "BOOLEAN": pl.Boolean(),
    "DOUBLE PRECISION": pl.Float64(),
}
_CREATE = re.compile(r"CREATE TABLE (\w+) \((.*?)\n\);", re.S)
_COLUMN = re.compile(r"^\s*(\w+)\s+(DOUBLE PRECISION|BIGINT|INTEGER|VARCHAR|TIMESTAMP|BOOLEAN)\b")

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
    return resources.files("orchestration.warehouse").joinpath("schema.sql").read_text(encoding="utf-8")


def indexes_sql() -> str:
    return resources.files("orchestration.warehouse").joinpath("indexes.sql").read_text(encoding="utf-8")


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
                cols[m.group(1)] = _SQL_TYPES[m.group(2)]
        out[name] = pl.Schema(cols)
    return out


def sort_keys(table: str) -> list[str]:
    schema = table_schemas()[table]
    if table in SORT_KEYS:
        return SORT_KEYS[table]
    return ["institution_id", "id"] if "id" in schema else ["institution_id"]


def empty_frame(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=table_schemas()[table])


def conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Select the DDL's columns in DDL order with the DDL's types (strict: a missing column is an error)."""
    schema = table_schemas()[table]
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: frame lacks columns {missing}")
    return frame.select([pl.col(c).cast(t, strict=True) for c, t in schema.items()])
