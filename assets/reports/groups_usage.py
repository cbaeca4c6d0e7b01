"""Groups usage report (seed 002, ``POST /reports/groups-usage``).

A nested summary of how the selected groups used the platform in the period
``[start, end)`` (the API passes ``end_ms + 1 ms``). ``build_summary`` returns
exactly the seed's JSON object; ``SPEC.build`` returns its ``students`` list as
a flat table (for csv, Portuguese headers); ``write_groups_usage_xlsx``
(``assets/reports/groups_usage_xlsx.py``) writes the workbook.

Scope: the groups in ``group_ids`` (all groups of the institution when absent,
which is what the monthly partition computes). Definitions:

- ``start_date`` / ``end_date``: local dates (``DD/MM/YYYY``) of ``start`` and
  of the last included instant (``end`` minus 1 µs).
- questions in scope: created in the period in one of the groups.
  ``total_questions`` counts them all; ``questions_count_by_discipline`` maps
  discipline name -> count ("Sem disciplina" for none), by count desc then name,
  so its values sum to ``total_questions``.
- response time of a question: minutes from ``created_at`` to ``answered_at``
  (only answered questions, whenever the answer came).
- ``average_adjusted_response_time_in_minutes``: mean *adjusted* response time:
  only minutes inside service hours count, on the institution's local
  wall-clock. Service hours come from the ``service_hours`` option
  ``{weekday: (start, end)}`` (0 = Monday; minutes from midnight or "HH:MM";
  missing weekday = closed), default Monday-Friday 08:00-22:00. A question asked
  Friday 21:00 and answered Monday 09:00 took 60 + 60 = 120 adjusted minutes.
- ``average_answer_rating``: mean ``answer_rating`` of the questions in scope
  that were rated.
- ``nps_answers``: NPS answers answered in the period in one of the groups, or
  without group by a member of one of them; ``average_nps`` is their mean score
  (0-10) and ``average_response_time_nps`` the mean minutes between the survey
  being asked and answered.
- ``answer_ratings``: one object per rated question in scope (no student
  identity: ratings of anonymous questions stay anonymous).
- ``students``: the groups' student members plus the authors of the
  (non-anonymous) questions in scope. ``groups`` = those of the selected groups
  they are a student member of or asked in; ``questions`` / ``questions_count``:
  their non-anonymous questions in scope. Anonymous questions are never
  attributed to a student anywhere in this report, so
  ``sum(questions_count) = total_questions - anonymous questions``.
  ``active``: asked a non-anonymous question in scope or attended a booking
  (meeting held) scheduled in the period in one of the groups (or without group).
- ``active_users_percentage``: active share (fraction 0..1, 4 decimals) of the
  listed students who existed at the period end (created before ``end``, not
  deleted before ``end``); null when there are none.
- ``teachers`` (only when ``show_teachers``): teacher members plus whoever
  answered a question in scope; ``answered_questions_count`` and
  ``average_response_time_in_minutes`` (unadjusted) over the answered questions
  in scope; ``disciplines`` from the teacher's registered disciplines;
  ``active``: answered a question in scope or held a meeting (booking with
  ``meeting_started_at``) scheduled in the period in one of the groups, or
  without group (the same rule as for students: a groupless meeting counts for
  a teacher member of one of the groups).
- ``disciplines`` (only when ``show_disciplines``): one entry per key of
  ``questions_count_by_discipline``: ``top_subjects`` = the 5 most asked
  subjects (count desc, name; questions without subject not listed),
  ``total_questions``, unadjusted ``average_response_time_in_minutes``.
- Dates inside the lists are local ``YYYY-MM-DD`` or null; averages are rounded
  to 2 decimals and null when there is nothing to average.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any, cast

import polars as pl

from assets.batching import BATCH_COLUMN, batch_of_one, conform_keyed, key_frames, split_frame
from assets.reports.groups_usage_xlsx import write_groups_usage_xlsx
from assets.reports.stift_common import by_institution, csv_columns, id_filter, in_period
from assets.spec import ColumnKind, ReportRequest, ReportSpec, collation_key, to_local

NO_DISCIPLINE = "Sem disciplina"
TOP_SUBJECTS = 5
DEFAULT_SERVICE_HOURS: dict[int, tuple[int, int]] = {wd: (8 * 60, 22 * 60) for wd in range(5)}

CSV_HEADERS: dict[str, str] = {
    "name": "Nome",
    "groups": "Turmas",
    "email": "E-mail",
    "active": "Ativo",
    "created_at": "Criado em",
    "blocked_at": "Bloqueado em",
    "deleted_at": "Excluído em",
    "questions_count": "Quantidade de perguntas",
}
_KINDS: dict[str, ColumnKind] = {
    "active": "bool",
    "created_at": "date",
    "blocked_at": "date",
    "deleted_at": "date",
    "questions_count": "int",
}
COLUMNS = csv_columns(CSV_HEADERS, _KINDS)

_Q_PERIOD = in_period("created_at")
_NPS_PERIOD = in_period("answered_at")
QUERIES: dict[str, str] = {
    "groups": by_institution("groups", "id, school_id, name"),
    "group_members": by_institution("group_members", "group_id, user_id, role, joined_at"),
    "disciplines": by_institution("disciplines", "id, name"),
    "subjects": by_institution("subjects", "id, discipline_id, name"),
    "teacher_disciplines": by_institution("teacher_disciplines", "teacher_id, discipline_id"),
    "questions": f"""
        SELECT id, group_id, student_id, teacher_id, discipline_id, subject_id, anonymous,
               created_at, answered_at, answer_rating, answer_understood, answer_comment
        FROM questions
        WHERE {_Q_PERIOD}
        ORDER BY created_at, id""",
    "bookings": f"""
        SELECT id, group_id, student_id, teacher_id, meeting_started_at
        FROM bookings
        WHERE {in_period("scheduled_for")}
          AND meeting_started_at IS NOT NULL""",
    "nps_answers": f"""
        SELECT id, user_id, group_id, score, comment, asked_at, answered_at
        FROM nps_answers
        WHERE {_NPS_PERIOD}
        ORDER BY answered_at, id""",
    "users": f"""
        SELECT u.id, u.first_name, u.last_name, u.name, u.email, u.created_at, u.blocked_at, u.deleted_at
        FROM users u
        WHERE u.institution_id = :institution_id
          AND u.id IN (SELECT user_id FROM group_members WHERE institution_id = :institution_id
                       UNION
                       SELECT student_id FROM questions WHERE {_Q_PERIOD}
                       UNION
                       SELECT teacher_id FROM questions WHERE {_Q_PERIOD} AND teacher_id IS NOT NULL
                       UNION
                       SELECT user_id FROM nps_answers WHERE {_NPS_PERIOD})""",
}


# ------------------------------------------------------------------ service hours


def _minute(value: int | str) -> int:
    if isinstance(value, str):
        hours, _, minutes = value.partition(":")
        return int(hours) * 60 + int(minutes or 0)
    return int(value)


def service_hours(request: ReportRequest) -> dict[int, tuple[int, int]]:
    """The ``service_hours`` option normalized to ``{weekday: (start_minute, end_minute)}``."""
    raw = request.options.get("service_hours")
    if raw is None:
        return dict(DEFAULT_SERVICE_HOURS)
    out: dict[int, tuple[int, int]] = {}
    for weekday, (start, end) in dict(raw).items():
        wd, lo, hi = int(weekday), _minute(start), _minute(end)
        if not 0 <= wd <= 6 or not 0 <= lo <= hi <= 1440:
            raise ValueError(f"service_hours: bad entry {weekday!r}: {start!r}-{end!r}")
        out[wd] = (lo, hi)
    return out


def service_minutes_until(local: pl.Expr, hours: Mapping[int, tuple[int, int]]) -> pl.Expr:
    """Service minutes from a fixed Monday (1970-01-05) to the local wall-clock instant.

    The difference of two values is the service time between them; it is
    vectorized as full weeks x weekly minutes + full earlier weekdays + the
    clipped part of the current day.
    """
    lengths = {wd: float(hours[wd][1] - hours[wd][0]) if wd in hours else 0.0 for wd in range(7)}
    starts = {wd: float(hours[wd][0]) if wd in hours else 0.0 for wd in range(7)}
    prefix = {wd: float(sum(lengths[d] for d in range(wd))) for wd in range(7)}
    weekly = sum(lengths.values())
    days = (local.dt.date() - pl.lit(date(1970, 1, 5))).dt.total_days()
    weekday = local.dt.weekday().cast(pl.Int64()) - 1
    minute_of_day = (local - local.dt.truncate("1d")).dt.total_microseconds() / 60_000_000.0
    start = weekday.replace_strict(starts, return_dtype=pl.Float64())
    length = weekday.replace_strict(lengths, return_dtype=pl.Float64())
    return (
        days.floordiv(7).cast(pl.Float64()) * weekly
        + weekday.replace_strict(prefix, return_dtype=pl.Float64())
        + (minute_of_day - start).clip(0.0, None).clip(None, length)
    )


# ------------------------------------------------------------------ computation


@dataclass(frozen=True)
class _Parts:
    """Intermediate frames shared by the summary and the flat table."""

    questions: pl.DataFrame
    students: pl.DataFrame
    teachers: pl.DataFrame
    nps: pl.DataFrame


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def _mean(series: pl.Series) -> float | None:
    """The mean of a numeric (or boolean) column: polars returns a float, or None when empty/all-null."""
    return cast("float | None", series.mean())


def _local_day(col: str, tz: str) -> pl.Expr:
    return to_local(pl.col(col), tz).dt.strftime("%Y-%m-%d")


def _member(col: str, ids: pl.DataFrame, id_col: str, one: bool) -> pl.Expr:
    """``col`` is one of its institution's ``ids[id_col]``: ``is_in`` per institution, on
    (``BATCH_COLUMN``, value) pairs; null for a null value, like ``is_in``. ``one``: the batch
    holds one institution, where the pair test is the value test (cheaper: the sync path)."""
    if one:
        return pl.col(col).is_in(ids.get_column(id_col).implode())
    k = BATCH_COLUMN
    pairs = pl.DataFrame([ids.get_column(k), ids.get_column(id_col).alias(col)]).to_struct(col)
    return pl.when(pl.col(col).is_null()).then(None).otherwise(pl.struct(pl.col(k), pl.col(col)).is_in(pairs.implode()))


def _compute(frames: Mapping[str, pl.DataFrame], requests: Sequence[ReportRequest]) -> _Parts:
    """Every institution of the batch at once: frames keyed by ``BATCH_COLUMN`` (``assets.batching``),
    parts keyed the same way; the ``is_in`` tests of one institution are joins on (institution, id)."""
    request = requests[0]
    tz = request.institution.timezone
    k = BATCH_COLUMN
    one = len({r.institution.id for r in requests}) == 1
    groups = conform_keyed("groups", frames)
    wanted = id_filter(request, "group_ids", pl.String())
    if wanted is not None:
        groups = groups.filter(pl.col("id").is_in(wanted))
    group_keys = groups.select(k, group_id="id")
    group_names = groups.select(k, group_id="id", group_name="name")
    members = conform_keyed("group_members", frames)
    members = members.filter(_member("group_id", group_keys, "group_id", one))
    users = conform_keyed("users", frames).unique([k, "id"], keep="first")
    disciplines = conform_keyed("disciplines", frames).select(k, discipline_id="id", discipline_name="name")
    subjects = conform_keyed("subjects", frames).select(k, subject_id="id", subject_name="name")
    end_utc = request.query_params().get("end_utc")
    hours = service_hours(request)

    questions = conform_keyed("questions", frames)
    questions = (
        questions.filter(_member("group_id", group_keys, "group_id", one))
        .join(disciplines, on=[k, "discipline_id"], how="left", maintain_order="left")
        .join(subjects, on=[k, "subject_id"], how="left", maintain_order="left")
        .with_columns(
            anonymous=pl.col("anonymous").fill_null(False),
            discipline_key=pl.col("discipline_name").fill_null(NO_DISCIPLINE),
            response_minutes=(pl.col("answered_at") - pl.col("created_at")).dt.total_microseconds() / 60_000_000.0,
            adjusted_minutes=(
                service_minutes_until(to_local(pl.col("answered_at"), tz), hours)
                - service_minutes_until(to_local(pl.col("created_at"), tz), hours)
            ).clip(0.0, None),
        )
        .sort(k, "created_at", "id")
    )
    named = questions.filter(~pl.col("anonymous"))
    student_members = members.filter(pl.col("role") == "student")
    teacher_members = members.filter(pl.col("role") == "teacher")
    bookings = conform_keyed("bookings", frames).filter(pl.col("meeting_started_at").is_not_null())
    in_groups = _member("group_id", group_keys, "group_id", one)
    held_by_students = bookings.filter(
        in_groups | (pl.col("group_id").is_null() & _member("student_id", student_members, "user_id", one))
    ).select(k, "student_id")
    held_by_teachers = bookings.filter(
        in_groups | (pl.col("group_id").is_null() & _member("teacher_id", teacher_members, "user_id", one))
    ).select(k, "teacher_id")

    # students
    student_groups = pl.concat(
        [
            student_members.select(k, "user_id", "group_id"),
            named.select(k, user_id="student_id", group_id="group_id"),
        ]
    ).unique()
    question_lists = named.group_by(k, "student_id", maintain_order=True).agg(
        questions_count=pl.len().cast(pl.Int64()),
        questions=pl.struct(
            discipline=pl.when(pl.col("discipline_id").is_not_null()).then(
                pl.struct(id=pl.col("discipline_id"), name=pl.col("discipline_name"))
            ),
            subject=pl.when(pl.col("subject_id").is_not_null()).then(
                pl.struct(id=pl.col("subject_id"), name=pl.col("subject_name"))
            ),
        ),
    )
    existed = pl.col("created_at").is_not_null()
    if end_utc is not None:
        existed = (pl.col("created_at") < end_utc) & (
            pl.col("deleted_at").is_null() | (pl.col("deleted_at") >= end_utc)
        )
    students = (
        student_groups.join(group_names, on=[k, "group_id"], how="left")
        .group_by(k, "user_id")
        .agg(groups=pl.col("group_name").unique().sort())
        .join(users.rename({"id": "user_id"}), on=[k, "user_id"], how="left")
        .join(question_lists.rename({"student_id": "user_id"}), on=[k, "user_id"], how="left")
    )
    students = students.with_columns(
        questions_count=pl.col("questions_count").fill_null(0),
        active=_member("user_id", named, "student_id", one) | _member("user_id", held_by_students, "student_id", one),
        existed=existed.fill_null(False),
    ).sort(k, collation_key(pl.col("name")), "name", "email", "user_id", nulls_last=True)

    # teachers
    answered = questions.filter(pl.col("answered_at").is_not_null() & pl.col("teacher_id").is_not_null())
    teacher_groups = pl.concat(
        [
            teacher_members.select(k, "user_id", "group_id"),
            answered.select(k, user_id="teacher_id", group_id="group_id"),
        ]
    ).unique()
    teacher_disciplines = (
        conform_keyed("teacher_disciplines", frames)
        .join(disciplines, on=[k, "discipline_id"], how="inner")
        .group_by(k, "teacher_id")
        .agg(disciplines=pl.col("discipline_name").unique().sort())
    )
    answered_stats = answered.group_by(k, "teacher_id").agg(
        answered_questions_count=pl.len().cast(pl.Int64()), average_response_time=pl.col("response_minutes").mean()
    )
    teachers = (
        teacher_groups.join(group_names, on=[k, "group_id"], how="left")
        .group_by(k, "user_id")
        .agg(groups=pl.col("group_name").unique().sort())
        .join(users.rename({"id": "user_id"}), on=[k, "user_id"], how="left")
        .join(teacher_disciplines.rename({"teacher_id": "user_id"}), on=[k, "user_id"], how="left")
        .join(answered_stats.rename({"teacher_id": "user_id"}), on=[k, "user_id"], how="left")
        .with_columns(
            answered_questions_count=pl.col("answered_questions_count").fill_null(0),
            disciplines=pl.col("disciplines").fill_null(pl.lit([], pl.List(pl.String()))),
        )
    )
    teachers = teachers.with_columns(
        active=(pl.col("answered_questions_count") > 0) | _member("user_id", held_by_teachers, "teacher_id", one)
    ).sort(
        k,
        collation_key(pl.col("first_name")),
        collation_key(pl.col("last_name")),
        "first_name",
        "last_name",
        "email",
        "user_id",
        nulls_last=True,
    )

    # NPS
    nps = conform_keyed("nps_answers", frames)
    nps = (
        nps.filter(
            _member("group_id", group_keys, "group_id", one)
            | (pl.col("group_id").is_null() & _member("user_id", members, "user_id", one))
        )
        .join(users.select(k, user_id="id", name="name", email="email"), on=[k, "user_id"], how="left")
        .join(group_names, on=[k, "group_id"], how="left")
        .with_columns(
            response_minutes=(pl.col("answered_at") - pl.col("asked_at")).dt.total_microseconds() / 60_000_000.0,
            answered_day=_local_day("answered_at", tz),
        )
        .sort(k, "answered_at", "id")
    )
    return _Parts(questions=questions, students=students, teachers=teachers, nps=nps)


def _split(parts: _Parts, institution_ids: Sequence[int]) -> dict[int, _Parts]:
    """Batch parts -> each institution's (``BATCH_COLUMN`` dropped, rows in order)."""
    frames = {f.name: split_frame(getattr(parts, f.name), institution_ids) for f in fields(_Parts)}
    return {i: _Parts(**{name: by_id[i] for name, by_id in frames.items()}) for i in institution_ids}


def _date_fields(tz: str) -> list[pl.Expr]:
    return [_local_day(c, tz).alias(c) for c in ("created_at", "blocked_at", "deleted_at")]


def summaries_batch(frames: Mapping[str, pl.DataFrame], requests: Sequence[ReportRequest]) -> dict[int, dict[str, Any]]:
    """Each institution's summary (``build_summary``) for a batch: frames keyed by ``BATCH_COLUMN``."""
    parts = _split(_compute(frames, requests), [r.institution.id for r in requests])
    return {r.institution.id: _summary(parts[r.institution.id], r) for r in requests}


def build_summary(frames: Mapping[str, pl.DataFrame], request: ReportRequest) -> dict[str, Any]:
    """The seed's groups-usage JSON object (definitions in the module docstring): the batch of one."""
    return summaries_batch(key_frames(frames, request.institution.id), [request])[request.institution.id]


def _summary(parts: _Parts, request: ReportRequest) -> dict[str, Any]:
    """One institution's summary from its parts."""
    tz = request.institution.timezone
    q = parts.questions
    answered = q.filter(pl.col("answered_at").is_not_null())
    rated = q.filter(pl.col("answer_rating").is_not_null())
    by_discipline = (
        q.group_by("discipline_key")
        .agg(
            total=pl.len(),
            avg=pl.col("response_minutes").mean(),
            subjects=pl.col("subject_name").drop_nulls(),
        )
        .sort(["total", "discipline_key"], descending=[True, False])
    )
    population = parts.students.filter(pl.col("existed"))
    start = request.start.astimezone(request.institution.tz) if request.start else None
    last = (request.end - timedelta(microseconds=1)).astimezone(request.institution.tz) if request.end else None

    summary: dict[str, Any] = {
        "start_date": start.strftime("%d/%m/%Y") if start else None,
        "end_date": last.strftime("%d/%m/%Y") if last else None,
        "total_questions": q.height,
        "average_adjusted_response_time_in_minutes": _round(_mean(answered["adjusted_minutes"])),
        "questions_count_by_discipline": {
            row["discipline_key"]: row["total"] for row in by_discipline.iter_rows(named=True)
        },
        "active_users_percentage": _round(_mean(population["active"]), 4) if population.height else None,
        "average_answer_rating": _round(_mean(rated["answer_rating"])),
        "average_nps": _round(_mean(parts.nps["score"])),
        "average_response_time_nps": _round(_mean(parts.nps["response_minutes"])),
        "nps_answers": [
            {
                "name": row["name"],
                "email": row["email"],
                "group": row["group_name"],
                "score": row["score"],
                "comment": row["comment"],
                "answered_at": row["answered_day"],
                "response_time_in_minutes": _round(row["response_minutes"]),
            }
            for row in parts.nps.iter_rows(named=True)
        ],
        "answer_ratings": [
            {
                "question_id": row["id"],
                "discipline": row["discipline_name"],
                "subject": row["subject_name"],
                "rating": row["answer_rating"],
                "understood": row["answer_understood"],
                "comment": row["answer_comment"],
            }
            for row in rated.iter_rows(named=True)
        ],
        "students": parts.students.select(
            "name",
            "groups",
            "email",
            "active",
            *_date_fields(tz),
            "questions_count",
            pl.col("questions").fill_null(pl.lit([], pl.List(cast(pl.List, parts.students.schema["questions"]).inner))),
        ).to_dicts(),
    }
    if request.filters.get("show_teachers"):
        summary["teachers"] = [
            {**row, "average_response_time_in_minutes": _round(row["average_response_time_in_minutes"])}
            for row in parts.teachers.select(
                "first_name",
                "last_name",
                "email",
                "groups",
                "disciplines",
                "active",
                "answered_questions_count",
                pl.col("average_response_time").alias("average_response_time_in_minutes"),
                *_date_fields(tz),
            ).iter_rows(named=True)
        ]
    if request.filters.get("show_disciplines"):
        summary["disciplines"] = [
            {
                "name": row["discipline_key"],
                "top_subjects": _top_subjects(row["subjects"]),
                "total_questions": row["total"],
                "average_response_time_in_minutes": _round(row["avg"]),
            }
            for row in by_discipline.iter_rows(named=True)
        ]
    return summary


def _top_subjects(names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ranked[:TOP_SUBJECTS])


def build_batch(frames: Mapping[str, pl.DataFrame], requests: Sequence[ReportRequest]) -> pl.DataFrame:
    """The summary's ``students`` list as a flat table (groups joined by ", "), every institution of the batch."""
    tz = requests[0].institution.timezone
    students = _compute(frames, requests).students
    return students.select(
        BATCH_COLUMN,
        name=pl.col("name").fill_null(""),
        groups=pl.col("groups").list.join(", "),
        email=pl.col("email").fill_null(""),
        active=pl.col("active"),
        created_at=to_local(pl.col("created_at"), tz).dt.date(),
        blocked_at=to_local(pl.col("blocked_at"), tz).dt.date(),
        deleted_at=to_local(pl.col("deleted_at"), tz).dt.date(),
        questions_count=pl.col("questions_count"),
    )


build = batch_of_one(build_batch)


SPEC = ReportSpec(
    name="groups_usage",
    slug="groups-usage",
    title="Uso das turmas",
    description=(
        "**Uso das turmas** (seed 002): resumo das turmas `group_ids` (todas, na partição mensal) "
        "no período: total de perguntas, tempo médio de resposta ajustado ao horário de atendimento, "
        "perguntas por disciplina, % de alunos ativos, avaliações, NPS, lista de alunos e, com "
        "`show_teachers` / `show_disciplines`, professores e disciplinas. JSON = o objeto do seed; "
        "CSV = a lista de alunos; xlsx = uma aba de resumo e uma aba por lista."
    ),
    columns=COLUMNS,
    queries=QUERIES,
    build=build,
    build_batch=build_batch,
    monthly=True,
    filter_names=("group_ids", "show_disciplines", "show_teachers", "name"),
    formats=("json", "csv", "xlsx"),
    default_format="json",
    sheet_name="Alunos",
    summary=build_summary,
    summary_batch=summaries_batch,
    summary_xlsx=write_groups_usage_xlsx,
    summary_title_filter="name",
    summary_rows=lambda summary: len(summary.get("students", [])),
)
