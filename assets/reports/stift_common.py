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

from assets.spec import ReportRequest, to_local

TS = pl.Datetime("us")

# Column dtypes of every extraction frame the four reports read. Frames coming
# from PostgreSQL are built from Python rows, so an all-NULL column arrives with
# dtype Null (and an empty result with no dtypes at all); ``conform`` casts them.
FRAME_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "schools": {"id": pl.Int64(), "name": pl.String()},
    "groups": {"id": pl.String(), "school_id": pl.Int64(), "name": pl.String()},
    "group_members": {"group_id": pl.String(), "user_id": pl.Int64(), "role": pl.String(), "joined_at": TS},
    "disciplines": {"id": pl.Int64(), "name": pl.String()},
    "subjects": {"id": pl.Int64(), "discipline_id": pl.Int64(), "name": pl.String()},
    "teacher_disciplines": {"teacher_id": pl.Int64(), "discipline_id": pl.Int64()},
    "users": {
        "id": pl.Int64(),
        "uuid": pl.String(),
        "external_id": pl.String(),
        "first_name": pl.String(),
        "last_name": pl.String(),
        "name": pl.String(),
        "email": pl.String(),
        "privilege_id": pl.Int32(),
        "created_at": TS,
        "blocked_at": TS,
        "deleted_at": TS,
    },
    "questions": {
        "id": pl.String(),
        "group_id": pl.String(),
        "student_id": pl.Int64(),
        "teacher_id": pl.Int64(),
        "discipline_id": pl.Int64(),
        "subject_id": pl.Int64(),
        "description": pl.String(),
        "anonymous": pl.Boolean(),
        "created_at": TS,
        "assigned_at": TS,
        "answered_at": TS,
        "closed_at": TS,
        "answer_description": pl.String(),
        "reply_description": pl.String(),
        "reply_answer_description": pl.String(),
        "answer_rating": pl.Float64(),
        "answer_understood": pl.Boolean(),
        "answer_comment": pl.String(),
        "has_seen_answer": pl.Boolean(),
    },
    "teacher_schedules": {
        "id": pl.Int64(),
        "school_id": pl.Int64(),
        "teacher_id": pl.Int64(),
        "discipline_id": pl.Int64(),
        "weekday": pl.Int32(),
        "start_minute": pl.Int32(),
        "end_minute": pl.Int32(),
    },
    "booking_rooms": {"id": pl.Int64(), "school_id": pl.Int64(), "name": pl.String(), "modal": pl.String()},
    "bookings": {
        "id": pl.String(),
        "school_id": pl.Int64(),
        "group_id": pl.String(),
        "student_id": pl.Int64(),
        "teacher_id": pl.Int64(),
        "discipline_id": pl.Int64(),
        "booking_room_id": pl.Int64(),
        "is_queue": pl.Boolean(),
        "created_at": TS,
        "scheduled_for": TS,
        "meeting_started_at": TS,
        "meeting_ended_at": TS,
        "cancelled_at": TS,
        "cancelled_by_id": pl.Int64(),
        "cancelled_by_role": pl.String(),
        "queue_joined_at": TS,
        "queue_left_at": TS,
        "rating_by_student": pl.Float64(),
        "rating_by_teacher": pl.Float64(),
        "call_quality_rating_by_student": pl.Float64(),
        "call_quality_rating_by_teacher": pl.Float64(),
    },
    "nps_answers": {
        "id": pl.Int64(),
        "user_id": pl.Int64(),
        "group_id": pl.String(),
        "score": pl.Int32(),
        "comment": pl.String(),
        "asked_at": TS,
        "answered_at": TS,
    },
}


def conform(frames: Mapping[str, pl.DataFrame], table: str, name: str | None = None) -> pl.DataFrame:
    """The extraction frame ``name`` (default ``table``) with ``table``'s dtypes.

    Columns the query did not select are left out; a missing frame becomes an
    empty one, so builders never branch on the engine that produced the data.
    """
    schema = FRAME_SCHEMAS[table]
    frame = frames.get(name or table)
    if frame is None or frame.width == 0:
        return pl.DataFrame(schema=schema)
    return frame.select(pl.col(c).cast(schema[c]) for c in schema if c in frame.columns)


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
    to ``key`` and ``columns`` renamed source -> alias (one row per key)."""
    return frame.select([pl.col(on).alias(key), *(pl.col(src).alias(dst) for src, dst in columns.items())]).unique(
        key, keep="first", maintain_order=True
    )
