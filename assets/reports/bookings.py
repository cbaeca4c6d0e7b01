"""Bookings report (seed 002, ``POST /reports/bookings``).

One row per booking *scheduled for* a time in the period (``[start, end)``;
the API turns inclusive ms-epoch bounds into ``end_ms + 1 ms``), optionally
limited to ``school_ids``. Timestamps are ``DD/MM/YYYY HH:mm`` in the
institution's timezone, ``""`` when absent; ``duration`` is the meeting length
in whole minutes (nearest minute, half up), null without both start and end;
ratings are numbers or null. Nulls are empty csv cells; the seed example shows
them as ``""`` in JSON (``SPEC.json_null``).

``status`` is derived from facts as of ``request.as_of`` (a fact stamped after
``as_of`` has not happened yet). First match wins:

1. the meeting started (``meeting_started_at <= as_of``) -> PRESENT
2. cancelled (``cancelled_at <= as_of``):
   by the student (``cancelled_by_role = 'student'``, or no role and
   ``cancelled_by_id`` is the student) with at least ``min_cancel_notice_hours``
   between ``cancelled_at`` and ``scheduled_for`` (exactly the limit counts as
   in time) -> INSIDE_SCHEDULE_CANCEL; by the student later -> OUTSIDE_SCHEDULE_CANCEL;
   by anyone else (teacher, admin) -> CANCELLED
3. queue bookings (``is_queue``): left the queue (``queue_left_at <= as_of``)
   -> LEFT_QUEUE; still waiting and ``as_of <= scheduled_for`` -> QUEUE;
   the slot passed with no meeting held (still waiting or never served) -> NOT_REALIZED
4. ``as_of <= scheduled_for`` -> PENDING (at exactly the scheduled instant it has not passed yet)
5. otherwise (the time passed, no meeting) -> NO_SHOW

Start/end/duration and cancelled_at/cancelled_by_name are shown only for facts
that happened by ``as_of``, so a re-run as of a past instant is consistent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, timedelta

import polars as pl

from assets.batching import BATCH_COLUMN, batch_of_one, conform_keyed
from assets.reports.stift_common import by_institution, csv_columns, dimension, id_filter, in_period, local_text, text
from assets.spec import ColumnKind, ReportRequest, ReportSpec

DEFAULT_MIN_CANCEL_NOTICE_HOURS = 24.0

PRESENT = "PRESENT"
NO_SHOW = "NO_SHOW"
OUTSIDE_SCHEDULE_CANCEL = "OUTSIDE_SCHEDULE_CANCEL"
INSIDE_SCHEDULE_CANCEL = "INSIDE_SCHEDULE_CANCEL"
CANCELLED = "CANCELLED"
PENDING = "PENDING"
QUEUE = "QUEUE"
LEFT_QUEUE = "LEFT_QUEUE"
NOT_REALIZED = "NOT_REALIZED"

STATUS_LABELS: dict[str, str] = {
    PRESENT: "Presente",
    NO_SHOW: "Não compareceu",
    OUTSIDE_SCHEDULE_CANCEL: "Cancelado fora do prazo",
    INSIDE_SCHEDULE_CANCEL: "Cancelado dentro do prazo",
    CANCELLED: "Cancelado",
    PENDING: "Pendente",
    QUEUE: "Na fila",
    LEFT_QUEUE: "Saiu da fila",
    NOT_REALIZED: "Não realizado",
}

CSV_HEADERS: dict[str, str] = {
    "id": "ID",
    "school_name": "Escola",
    "created_at": "Criado em",
    "scheduled_for": "Agendado para",
    "start_time": "Início",
    "end_time": "Término",
    "duration": "Duração (minutos)",
    "student_external_id": "ID externo do aluno",
    "student_name": "Nome do aluno",
    "student_email": "E-mail do aluno",
    "teacher_name": "Nome do professor",
    "teacher_email": "E-mail do professor",
    "group_name": "Turma",
    "discipline_name": "Disciplina",
    "booking_room_name": "Sala",
    "booking_room_modal": "Modalidade",
    "rating_by_student": "Avaliação do aluno",
    "rating_by_teacher": "Avaliação do professor",
    "call_quality_rating_by_student": "Qualidade da chamada (aluno)",
    "call_quality_rating_by_teacher": "Qualidade da chamada (professor)",
    "status": "Status",
    "cancelled_at": "Cancelado em",
    "cancelled_by_name": "Cancelado por",
}
_KINDS: dict[str, ColumnKind] = {
    "duration": "int",
    "rating_by_student": "float",
    "rating_by_teacher": "float",
    "call_quality_rating_by_student": "float",
    "call_quality_rating_by_teacher": "float",
}
COLUMNS = csv_columns(CSV_HEADERS, _KINDS)

_IN_PERIOD = in_period("scheduled_for")
QUERIES: dict[str, str] = {
    "bookings": f"""
        SELECT id, school_id, group_id, student_id, teacher_id, discipline_id, booking_room_id, is_queue,
               created_at, scheduled_for, meeting_started_at, meeting_ended_at, cancelled_at, cancelled_by_id,
               cancelled_by_role, queue_joined_at, queue_left_at, rating_by_student, rating_by_teacher,
               call_quality_rating_by_student, call_quality_rating_by_teacher
        FROM bookings
        WHERE {_IN_PERIOD}
        ORDER BY scheduled_for, id""",
    "schools": by_institution("schools", "id, name"),
    "groups": by_institution("groups", "id, school_id, name"),
    "disciplines": by_institution("disciplines", "id, name"),
    "booking_rooms": by_institution("booking_rooms", "id, school_id, name, modal"),
    "users": f"""
        SELECT u.id, u.external_id, u.name, u.email
        FROM users u
        WHERE u.institution_id = :institution_id
          AND u.id IN (SELECT student_id FROM bookings WHERE {_IN_PERIOD}
                       UNION
                       SELECT teacher_id FROM bookings WHERE {_IN_PERIOD} AND teacher_id IS NOT NULL
                       UNION
                       SELECT cancelled_by_id FROM bookings WHERE {_IN_PERIOD} AND cancelled_by_id IS NOT NULL)""",
}


def booking_status(request: ReportRequest) -> pl.Expr:
    """Status code of each booking as of ``request.as_of`` (rules in the module docstring)."""
    as_of = pl.lit(request.as_of.astimezone(UTC).replace(tzinfo=None), pl.Datetime("us"))
    hours = float(request.options.get("min_cancel_notice_hours", DEFAULT_MIN_CANCEL_NOTICE_HOURS))
    notice = pl.lit(timedelta(hours=hours), pl.Duration("us"))

    def happened(col: str) -> pl.Expr:
        return pl.col(col).is_not_null() & (pl.col(col) <= as_of)

    by_student = (pl.col("cancelled_by_role") == "student").fill_null(False) | (
        pl.col("cancelled_by_role").is_null() & (pl.col("cancelled_by_id") == pl.col("student_id")).fill_null(False)
    )
    upcoming = as_of <= pl.col("scheduled_for")
    queue = pl.col("is_queue").fill_null(False)
    return (
        pl.when(happened("meeting_started_at"))
        .then(pl.lit(PRESENT))
        .when(happened("cancelled_at") & by_student & ((pl.col("scheduled_for") - pl.col("cancelled_at")) >= notice))
        .then(pl.lit(INSIDE_SCHEDULE_CANCEL))
        .when(happened("cancelled_at") & by_student)
        .then(pl.lit(OUTSIDE_SCHEDULE_CANCEL))
        .when(happened("cancelled_at"))
        .then(pl.lit(CANCELLED))
        .when(queue & happened("queue_left_at"))
        .then(pl.lit(LEFT_QUEUE))
        .when(queue & upcoming)
        .then(pl.lit(QUEUE))
        .when(queue)
        .then(pl.lit(NOT_REALIZED))
        .when(upcoming)
        .then(pl.lit(PENDING))
        .otherwise(pl.lit(NO_SHOW))
    )


def build_batch(frames: Mapping[str, pl.DataFrame], requests: Sequence[ReportRequest]) -> pl.DataFrame:
    """Bookings scheduled in the period, one row each (seed field order), sorted by scheduled time;
    every institution of the batch at once (``BATCH_COLUMN`` first, see ``assets.batching``)."""
    request = requests[0]
    k = BATCH_COLUMN
    bookings = conform_keyed("bookings", frames)
    school_ids = id_filter(request, "school_ids", pl.Int64())
    if school_ids is not None:
        bookings = bookings.filter(pl.col("school_id").is_in(school_ids))
    tz = request.institution.timezone
    as_of = pl.lit(request.as_of.astimezone(UTC).replace(tzinfo=None), pl.Datetime("us"))
    users = conform_keyed("users", frames)
    joined = (
        bookings.with_columns(
            code=booking_status(request),
            started=pl.when(pl.col("meeting_started_at") <= as_of).then(pl.col("meeting_started_at")),
            ended=pl.when(pl.col("meeting_ended_at") <= as_of).then(pl.col("meeting_ended_at")),
            cancelled=pl.when(pl.col("cancelled_at") <= as_of).then(pl.col("cancelled_at")),
        )
        .join(
            dimension(conform_keyed("schools", frames), "school_id", {"name": "school_name"}),
            on=[k, "school_id"],
            how="left",
        )
        .join(
            dimension(conform_keyed("groups", frames), "group_id", {"name": "group_name"}),
            on=[k, "group_id"],
            how="left",
        )
        .join(
            dimension(conform_keyed("disciplines", frames), "discipline_id", {"name": "d_name"}),
            on=[k, "discipline_id"],
            how="left",
        )
        .join(
            dimension(
                conform_keyed("booking_rooms", frames), "booking_room_id", {"name": "room_name", "modal": "room_modal"}
            ),
            on=[k, "booking_room_id"],
            how="left",
        )
        .join(
            dimension(users, "student_id", {"external_id": "s_ext", "name": "s_name", "email": "s_email"}),
            on=[k, "student_id"],
            how="left",
        )
        .join(dimension(users, "teacher_id", {"name": "t_name", "email": "t_email"}), on=[k, "teacher_id"], how="left")
        .join(dimension(users, "cancelled_by_id", {"name": "c_name"}), on=[k, "cancelled_by_id"], how="left")
        .sort(k, "scheduled_for", "id")
    )
    minutes = (pl.col("ended") - pl.col("started")).dt.total_seconds() / 60.0
    return joined.select(
        k,
        id=text(pl.col("id")),
        school_name=text(pl.col("school_name")),
        created_at=local_text(pl.col("created_at"), tz),
        scheduled_for=local_text(pl.col("scheduled_for"), tz),
        start_time=local_text(pl.col("started"), tz),
        end_time=local_text(pl.col("ended"), tz),
        duration=minutes.round(0, mode="half_away_from_zero").clip(lower_bound=0).cast(pl.Int64()),
        student_external_id=text(pl.col("s_ext")),
        student_name=text(pl.col("s_name")),
        student_email=text(pl.col("s_email")),
        teacher_name=text(pl.col("t_name")),
        teacher_email=text(pl.col("t_email")),
        group_name=text(pl.col("group_name")),
        discipline_name=text(pl.col("d_name")),
        booking_room_name=text(pl.col("room_name")),
        booking_room_modal=text(pl.col("room_modal")),
        rating_by_student=pl.col("rating_by_student"),
        rating_by_teacher=pl.col("rating_by_teacher"),
        call_quality_rating_by_student=pl.col("call_quality_rating_by_student"),
        call_quality_rating_by_teacher=pl.col("call_quality_rating_by_teacher"),
        status=pl.col("code").replace_strict(STATUS_LABELS, return_dtype=pl.String()),
        cancelled_at=local_text(pl.col("cancelled"), tz),
        cancelled_by_name=pl.when(pl.col("cancelled").is_not_null()).then(text(pl.col("c_name"))).otherwise(pl.lit("")),
    )


build = batch_of_one(build_batch)


SPEC = ReportSpec(
    name="bookings",
    slug="bookings",
    title="Relatório de agendamentos",
    description=(
        "**Agendamentos** (seed 002): uma linha por agendamento com data marcada no período, "
        "opcionalmente limitada às escolas `school_ids`. Datas `DD/MM/AAAA HH:mm` no fuso da "
        "instituição. Status derivado dos fatos no instante da geração (Presente, Cancelado "
        "dentro/fora do prazo conforme `min_cancel_notice_hours`, Cancelado, Na fila, Saiu da fila, "
        "Não realizado, Pendente, Não compareceu)."
    ),
    columns=COLUMNS,
    queries=QUERIES,
    build=build,
    build_batch=build_batch,
    monthly=True,
    filter_names=("school_ids",),
    formats=("json", "csv"),
    default_format="json",
    json_null="",
    sheet_name="Agendamentos",
)
