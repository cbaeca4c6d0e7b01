"""Bookings workload report (seed 002, ``POST /reports/bookings-workload``).

A snapshot of the *current* weekly booking schedule: one row per (teacher,
discipline) with ``weekly_minutes`` = the minutes per week the teacher is
available for that discipline, optionally limited to schedules in
``school_ids``. Overlapping or touching slots of the same teacher and
discipline on the same weekday are counted once (interval union), also across
schools: a teacher cannot serve the same discipline twice at once. Slots with
``end_minute <= start_minute`` are ignored as invalid. Deleted teachers have no
current schedule and are left out. Rows are sorted by teacher name, e-mail and
discipline. No period: the queries use only ``:institution_id``.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from assets.reports.stift_common import by_institution, csv_columns, dimension, id_filter, text
from assets.spec import ReportRequest, ReportSpec, collation_key
from assets.warehouse.tables import conform

CSV_HEADERS: dict[str, str] = {
    "teacher_name": "Nome do professor",
    "teacher_email": "E-mail do professor",
    "weekly_minutes": "Minutos semanais",
    "discipline_name": "Disciplina",
}
COLUMNS = csv_columns(CSV_HEADERS, {"weekly_minutes": "int"})

QUERIES: dict[str, str] = {
    "teacher_schedules": """
        SELECT id, school_id, teacher_id, discipline_id, weekday, start_minute, end_minute
        FROM teacher_schedules
        WHERE institution_id = :institution_id""",
    "disciplines": by_institution("disciplines", "id, name"),
    "users": """
        SELECT u.id, u.name, u.email, u.deleted_at
        FROM users u
        WHERE u.institution_id = :institution_id
          AND u.id IN (SELECT teacher_id FROM teacher_schedules WHERE institution_id = :institution_id)""",
}

_KEYS = ["teacher_id", "discipline_id", "weekday"]


def weekly_minutes(schedules: pl.DataFrame) -> pl.DataFrame:
    """(teacher_id, discipline_id, weekly_minutes): per-weekday interval union, summed over the week.

    Sorted by start, a slot opens a new block when it starts after every earlier
    slot of its (teacher, discipline, weekday) has ended; each block counts
    ``max(end) - min(start)``.
    """
    slots = schedules.filter(pl.col("end_minute") > pl.col("start_minute")).sort([*_KEYS, "start_minute", "end_minute"])
    blocks = (
        slots.with_columns(
            prev_end=pl.col("end_minute").cum_max().shift(1).over(_KEYS),
        )
        .with_columns(
            block=(pl.col("prev_end").is_null() | (pl.col("start_minute") > pl.col("prev_end"))).cum_sum().over(_KEYS)
        )
        .group_by([*_KEYS, "block"])
        .agg(minutes=pl.col("end_minute").max() - pl.col("start_minute").min())
    )
    return blocks.group_by("teacher_id", "discipline_id").agg(weekly_minutes=pl.col("minutes").sum().cast(pl.Int64()))


def build(frames: Mapping[str, pl.DataFrame], request: ReportRequest) -> pl.DataFrame:
    """The institution's current weekly workload per teacher and discipline."""
    schedules = conform("teacher_schedules", frames)
    school_ids = id_filter(request, "school_ids", pl.Int64())
    if school_ids is not None:
        schedules = schedules.filter(pl.col("school_id").is_in(school_ids))
    teachers = conform("users", frames).filter(pl.col("deleted_at").is_null())
    return (
        weekly_minutes(schedules)
        .join(dimension(teachers, "teacher_id", {"name": "t_name", "email": "t_email"}), on="teacher_id", how="inner")
        .join(
            dimension(conform("disciplines", frames), "discipline_id", {"name": "d_name"}),
            on="discipline_id",
            how="left",
        )
        .select(
            teacher_name=text(pl.col("t_name")),
            teacher_email=text(pl.col("t_email")),
            weekly_minutes=pl.col("weekly_minutes"),
            discipline_name=text(pl.col("d_name")),
        )
        .sort(
            collation_key(pl.col("teacher_name")),
            "teacher_name",
            "teacher_email",
            collation_key(pl.col("discipline_name")),
            "discipline_name",
        )
    )


SPEC = ReportSpec(
    name="bookings_workload",
    slug="bookings-workload",
    title="Carga horária de agendamentos",
    description=(
        "**Carga horária semanal** (seed 002): minutos semanais de disponibilidade para "
        "agendamentos de cada professor por disciplina, da agenda atual (sem período; um "
        "instantâneo por instituição). Horários sobrepostos do mesmo professor e disciplina no "
        "mesmo dia da semana contam uma vez. Filtro opcional `school_ids`."
    ),
    columns=COLUMNS,
    queries=QUERIES,
    build=build,
    monthly=False,
    filter_names=("school_ids",),
    formats=("json", "csv"),
    default_format="json",
    json_null="",
    sheet_name="Carga horária",
)
