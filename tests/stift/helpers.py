"""Hand-made inputs for the Stift-style report builders.

Rows are tuples in the column order of ``FRAME_SCHEMAS[table]`` (the dtypes the
extraction queries return); strings in timestamp columns are parsed as naive
UTC, so every expected value in the tests can be checked by reading the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from assets.reports.stift_common import FRAME_SCHEMAS, TS
from assets.spec import Institution, ReportRequest

SP = Institution(1, "Colégio Conceição", "conceicao", "America/Sao_Paulo")
UTC = ZoneInfo("UTC")


def ts(text: str) -> datetime:
    """'2026-06-01 03:00[:ss[.ffffff]]' -> naive datetime."""
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(text)


def utc(text: str) -> datetime:
    return ts(text).replace(tzinfo=UTC)


def frame(table: str, rows: Iterable[Sequence[Any]] = ()) -> pl.DataFrame:
    schema = FRAME_SCHEMAS[table]
    parsed = [
        tuple(ts(v) if isinstance(v, str) and schema[c] == TS else v for c, v in zip(schema, row, strict=True))
        for row in rows
    ]
    return pl.DataFrame(parsed, schema=schema, orient="row")


def frames(**rows: Iterable[Sequence[Any]]) -> dict[str, pl.DataFrame]:
    return {name: frame(name, r) for name, r in rows.items()}


def request(
    start: str | None,
    end: str | None,
    *,
    as_of: str = "2030-01-01 00:00",
    institution: Institution = SP,
    filters: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> ReportRequest:
    """Bounds are local wall-clock times of the institution (end exclusive); ``as_of`` is UTC."""
    tz = ZoneInfo(institution.timezone)
    return ReportRequest(
        institution=institution,
        start=ts(start).replace(tzinfo=tz) if start else None,
        end=ts(end).replace(tzinfo=tz) if end else None,
        as_of=utc(as_of),
        filters=dict(filters or {}),
        options=dict(options or {}),
    )


def question(
    id_,
    group,
    student,
    teacher,
    disc,
    subj,
    desc,
    anon,
    created,
    assigned=None,
    answered=None,
    closed=None,
    answer=None,
    reply=None,
    reply_answer=None,
    rating=None,
    understood=None,
    comment=None,
    seen=False,
):
    """A ``questions`` row in FRAME_SCHEMAS order."""
    return (
        id_,
        group,
        student,
        teacher,
        disc,
        subj,
        desc,
        anon,
        created,
        assigned,
        answered,
        closed,
        answer,
        reply,
        reply_answer,
        rating,
        understood,
        comment,
        seen,
    )
