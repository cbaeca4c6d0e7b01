"""Hand-made inputs for the report builders.

Frames are written row by row, as the warehouse extraction would return them
(same column names as the modules' queries, naive UTC timestamps), so every
expected value in the tests can be checked by reading the fixture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from assets.spec import Institution, ReportRequest
from assets.warehouse.tables import table_schema

TS = pl.Datetime("us")

# Columns the builders read, typed as schema.sql declares them (event tables keep institution_id
# here, although the storyboard queries do not select it, to test the builder's own institution filter).
COLUMNS: dict[str, tuple[str, ...]] = {
    "storyboards": ("id", "institution_id", "title"),
    "stories": ("id", "institution_id", "storyboard_id"),
    "users": ("id", "institution_id", "name", "email", "cpf", "cnpj"),
    "story_views": ("institution_id", "user_id", "storyboard_id", "story_id", "viewed_at"),
    "storyboard_reactions": ("institution_id", "user_id", "storyboard_id", "kind", "reacted_at"),
    "courses": ("id", "institution_id", "title", "status", "published_at"),
    "schools": ("id", "institution_id", "name"),
    "course_schools": ("institution_id", "course_id", "school_id"),
    "course_views": ("institution_id", "course_id", "viewed_at"),
    "enrollments": ("institution_id", "course_id", "enrolled_at", "completed_at"),
}
SCHEMAS: dict[str, pl.Schema] = {table: table_schema(table, columns) for table, columns in COLUMNS.items()}

STUDENT_URL = "https://{subdomain}.toolzz.com.br/course/{course_id}"
ADMIN_URL = "https://{subdomain}.toolzz.com.br/admin/courses/{course_id}/edit?i={institution_id}"
URL_OPTIONS = {"student_url_template": STUDENT_URL, "admin_url_template": ADMIN_URL}


def ts(text: str) -> datetime:
    """'2026-06-01 03:00[:ss]' -> naive datetime (UTC in inputs, local in expectations)."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt)


def day(text: str) -> date:
    return date.fromisoformat(text)


def frame(table: str, rows: Iterable[Sequence[Any]] = ()) -> pl.DataFrame:
    """Rows as tuples in the column order of ``SCHEMAS[table]``; strings in *_at columns are parsed."""
    schema = SCHEMAS[table]
    parsed = [
        tuple(ts(v) if isinstance(v, str) and schema[c] == TS else v for c, v in zip(schema, row, strict=True))
        for row in rows
    ]
    return pl.DataFrame(parsed, schema=schema, orient="row")


def frames(tables: Sequence[str], **rows: Iterable[Sequence[Any]]) -> dict[str, pl.DataFrame]:
    """One frame per table, empty unless rows are given."""
    unknown = set(rows) - set(tables)
    assert not unknown, f"unknown tables {unknown}"
    return {t: frame(t, rows.get(t, ())) for t in tables}


def null_frames(tables: Sequence[str]) -> dict[str, pl.DataFrame]:
    """Empty frames whose columns are all dtype Null, as an empty PostgreSQL result comes back."""
    return {t: pl.DataFrame(schema={c: pl.Null() for c in SCHEMAS[t]}) for t in tables}


def month_request(
    institution: Institution,
    year: int,
    month: int,
    filters: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> ReportRequest:
    """[1st 00:00, next 1st 00:00) in the institution's timezone."""
    tz = ZoneInfo(institution.timezone)
    nxt = (year + month // 12, month % 12 + 1)
    return ReportRequest(
        institution=institution,
        start=datetime(year, month, 1, tzinfo=tz),
        end=datetime(nxt[0], nxt[1], 1, tzinfo=tz),
        as_of=datetime(2030, 1, 1, tzinfo=ZoneInfo("UTC")),
        filters=dict(filters or {}),
        options=dict(options or {}),
    )


def range_request(
    institution: Institution,
    start: datetime,
    end: datetime,
    filters: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> ReportRequest:
    """Explicit local wall-clock bounds (naive) in the institution's timezone, end exclusive."""
    tz = ZoneInfo(institution.timezone)
    return ReportRequest(
        institution=institution,
        start=start.replace(tzinfo=tz),
        end=end.replace(tzinfo=tz),
        as_of=datetime(2030, 1, 1, tzinfo=ZoneInfo("UTC")),
        filters=dict(filters or {}),
        options=dict(options or {}),
    )


def rows(df: pl.DataFrame) -> list[tuple[Any, ...]]:
    return df.rows()
