"""Hand-made inputs for the Stift-style report builders.

Rows are tuples in the column order of ``COLUMNS[table]`` (the columns the
extraction queries select, without ``institution_id``), typed as schema.sql
declares them (``assets.warehouse.tables``); strings in timestamp columns are
parsed as naive UTC, so every expected value can be checked by reading the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from assets.spec import Institution, ReportRequest
from assets.warehouse.tables import table_schema

TS = pl.Datetime("us")
# Tuple order of the fixture rows per table (names only: the dtypes come from schema.sql).
COLUMNS: dict[str, tuple[str, ...]] = {
    "schools": ("id", "name"),
    "groups": ("id", "school_id", "name"),
    "group_members": ("group_id", "user_id", "role", "joined_at"),
    "disciplines": ("id", "name"),
    "subjects": ("id", "discipline_id", "name"),
    "teacher_disciplines": ("teacher_id", "discipline_id"),
    "users": (
        "id", "uuid", "external_id", "first_name", "last_name", "name", "email", "privilege_id",
        "created_at", "blocked_at", "deleted_at",
    ),
    "questions": (
        "id", "group_id", "student_id", "teacher_id", "discipline_id", "subject_id", "description", "anonymous",
        "created_at", "assigned_at", "answered_at", "closed_at", "answer_description", "reply_description",
        "reply_answer_description", "answer_rating", "answer_understood", "answer_comment", "has_seen_answer",
    ),
    "teacher_schedules": ("id", "school_id", "teacher_id", "discipline_id", "weekday", "start_minute", "end_minute"),
    "booking_rooms": ("id", "school_id", "name", "modal"),
    "bookings": (
        "id", "school_id", "group_id", "student_id", "teacher_id", "discipline_id", "booking_room_id", "is_queue",
        "created_at", "scheduled_for", "meeting_started_at", "meeting_ended_at", "cancelled_at", "cancelled_by_id",
        "cancelled_by_role", "queue_joined_at", "queue_left_at", "rating_by_student", "rating_by_teacher",
        "call_quality_rating_by_student", "call_quality_rating_by_teacher",
    ),
    "nps_answers": ("id", "user_id", "group_id", "score", "comment", "asked_at", "answered_at"),
}  # fmt: skip

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
    schema = table_schema(table, COLUMNS[table])
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
    """A ``questions`` row in ``COLUMNS["questions"]`` order."""
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


def user(
    id_: int,
    uuid: str,
    first: str,
    last: str,
    email: str,
    privilege: int,
    created: str,
    external_id: str | None = None,
    blocked: str | None = None,
    deleted: str | None = None,
) -> tuple[Any, ...]:
    """A ``USERS`` row of the Stift tests: id, uuid, external id, first/last/full name,
    email, privilege, created/blocked/deleted (the full name is ``first last``)."""
    return (id_, uuid, external_id, first, last, f"{first} {last}", email, privilege, created, blocked, deleted)
