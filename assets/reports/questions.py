"""Questions report (seed 002, ``POST /reports/questions``).

One row per question *created* in the requested period, optionally limited to
``group_ids``. The API receives inclusive millisecond-epoch bounds and builds
the request as ``[start_ms, end_ms + 1 ms)``; here ``request.end`` is always
exclusive, so a whole month is ``[first day 00:00, next first day 00:00)``.

Field rules (the seed example is the contract for names, order and formats):

- ``question_created_at`` / ``question_answered_at``: ISO-8601 UTC with
  milliseconds and ``Z`` (``2024-02-19T14:04:02.057Z``), ``""`` when absent.
- Absent text (no teacher, no discipline, no answer, ...) is ``""``, as in
  the seed. ``answer_rating`` (a number) and ``answer_understood`` (a boolean)
  stay typed and are null when the student gave none: an empty csv cell; in
  JSON the seed example shows ``""`` there, which ``SPEC.json_null``
  declares to the JSON writer. ``question_anonymous`` and
  ``has_seen_answer`` are always booleans.
- Anonymous questions never expose the student: ``student_id``,
  ``student_name`` and ``student_email`` are ``""``.
- ``student_id`` / ``teacher_id`` are the users' public UUIDs.
- ``link`` comes from the ``question_url_template`` option
  (``{question_id}``, optionally ``{subdomain}``).

``question_status`` is derived from the recorded facts, first match wins:

1. answered, the student replied and the reply is still unanswered -> "Réplica aguardando resposta"
2. answered (``answered_at`` set) -> "Respondida"
3. closed without an answer (``closed_at`` set) -> "Encerrada"
4. a teacher took it (``teacher_id`` or ``assigned_at`` set) -> "Em atendimento"
5. otherwise -> "Aguardando resposta"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from assets.batching import BATCH_COLUMN, batch_of_one, conform_keyed, institutions_frame
from assets.reports.stift_common import by_institution, csv_columns, dimension, id_filter, in_period, iso_utc, text
from assets.spec import ColumnKind, ReportRequest, ReportSpec

DEFAULT_URL_TEMPLATE = "https://portal.stift.com.br/#/questions/{question_id}/"

STATUS_REPLY_PENDING = "Réplica aguardando resposta"
STATUS_ANSWERED = "Respondida"
STATUS_CLOSED = "Encerrada"
STATUS_IN_PROGRESS = "Em atendimento"
STATUS_WAITING = "Aguardando resposta"
STATUSES = (STATUS_REPLY_PENDING, STATUS_ANSWERED, STATUS_CLOSED, STATUS_IN_PROGRESS, STATUS_WAITING)

# key (seed JSON key, seed order) -> Portuguese CSV header
CSV_HEADERS: dict[str, str] = {
    "question_id": "ID da pergunta",
    "school": "Escola",
    "group": "Turma",
    "student_id": "ID do aluno",
    "student_name": "Nome do aluno",
    "student_email": "E-mail do aluno",
    "teacher_id": "ID do professor",
    "teacher_name": "Nome do professor",
    "teacher_email": "E-mail do professor",
    "question_discipline": "Disciplina",
    "question_subject": "Assunto",
    "question_created_at": "Criada em",
    "question_answered_at": "Respondida em",
    "question_status": "Status",
    "question_anonymous": "Anônima",
    "question_description": "Pergunta",
    "answer_description": "Resposta",
    "reply_description": "Réplica",
    "reply_answer_description": "Resposta à réplica",
    "answer_rating": "Avaliação da resposta",
    "answer_understood": "Entendeu a resposta",
    "answer_comment": "Comentário da avaliação",
    "has_seen_answer": "Viu a resposta",
    "link": "Link",
}
_KINDS: dict[str, ColumnKind] = {
    "question_anonymous": "bool",
    "answer_rating": "float",
    "answer_understood": "bool",
    "has_seen_answer": "bool",
}
COLUMNS = csv_columns(CSV_HEADERS, _KINDS)

_IN_PERIOD = in_period("created_at")
QUERIES: dict[str, str] = {
    "questions": f"""
        SELECT id, group_id, student_id, teacher_id, discipline_id, subject_id, description, anonymous,
               created_at, assigned_at, answered_at, closed_at, answer_description, reply_description,
               reply_answer_description, answer_rating, answer_understood, answer_comment, has_seen_answer
        FROM questions
        WHERE {_IN_PERIOD}
        ORDER BY created_at, id""",
    "groups": by_institution("groups", "id, school_id, name"),
    "schools": by_institution("schools", "id, name"),
    "disciplines": by_institution("disciplines", "id, name"),
    "subjects": by_institution("subjects", "id, discipline_id, name"),
    "users": f"""
        SELECT u.id, u.uuid, u.name, u.email
        FROM users u
        WHERE u.institution_id = :institution_id
          AND u.id IN (SELECT student_id FROM questions WHERE {_IN_PERIOD}
                       UNION
                       SELECT teacher_id FROM questions WHERE {_IN_PERIOD} AND teacher_id IS NOT NULL)""",
}


def question_status() -> pl.Expr:
    """The pt-BR status of a question from its facts (precedence in the module docstring)."""
    answered = pl.col("answered_at").is_not_null()
    return (
        pl.when(answered & pl.col("reply_description").is_not_null() & pl.col("reply_answer_description").is_null())
        .then(pl.lit(STATUS_REPLY_PENDING))
        .when(answered)
        .then(pl.lit(STATUS_ANSWERED))
        .when(pl.col("closed_at").is_not_null())
        .then(pl.lit(STATUS_CLOSED))
        .when(pl.col("teacher_id").is_not_null() | pl.col("assigned_at").is_not_null())
        .then(pl.lit(STATUS_IN_PROGRESS))
        .otherwise(pl.lit(STATUS_WAITING))
    )


def link_expr(template: str, subdomain: pl.Expr) -> pl.Expr:
    """Vectorized ``template.format(subdomain=..., question_id=id)`` (``subdomain`` per row: the batch's
    institutions differ; a real subdomain cannot contain the ``{question_id}`` placeholder itself)."""
    pieces: list[pl.Expr] = []
    for i, part in enumerate(template.split("{question_id}")):
        if i:
            pieces.append(pl.col("id"))
        for j, text_part in enumerate(part.split("{subdomain}")):
            if j:
                pieces.append(subdomain)
            pieces.append(pl.lit(text_part))
    return pl.concat_str(pieces)


def build_batch(frames: Mapping[str, pl.DataFrame], requests: Sequence[ReportRequest]) -> pl.DataFrame:
    """Questions of the period (already filtered by the query), one row each, seed field order;
    every institution of the batch at once (``BATCH_COLUMN`` first, see ``assets.batching``)."""
    request = requests[0]
    k = BATCH_COLUMN
    questions = conform_keyed("questions", frames)
    group_ids = id_filter(request, "group_ids", pl.String())
    if group_ids is not None:
        questions = questions.filter(pl.col("group_id").is_in(group_ids))
    users = conform_keyed("users", frames)
    template = str(request.options.get("question_url_template") or DEFAULT_URL_TEMPLATE)
    hide = pl.col("anonymous").fill_null(False)
    joined = (
        questions.join(
            dimension(conform_keyed("groups", frames), "group_id", {"name": "group_name", "school_id": "school_id"}),
            on=[k, "group_id"],
            how="left",
        )
        .join(
            dimension(conform_keyed("schools", frames), "school_id", {"name": "school_name"}),
            on=[k, "school_id"],
            how="left",
        )
        .join(
            dimension(users, "student_id", {"uuid": "s_uuid", "name": "s_name", "email": "s_email"}),
            on=[k, "student_id"],
            how="left",
        )
        .join(
            dimension(users, "teacher_id", {"uuid": "t_uuid", "name": "t_name", "email": "t_email"}),
            on=[k, "teacher_id"],
            how="left",
        )
        .join(
            dimension(conform_keyed("disciplines", frames), "discipline_id", {"name": "d_name"}),
            on=[k, "discipline_id"],
            how="left",
        )
        .join(
            dimension(conform_keyed("subjects", frames), "subject_id", {"name": "sub_name"}),
            on=[k, "subject_id"],
            how="left",
        )
        .join(institutions_frame(requests).select(k, "subdomain"), on=k, how="left")
        .sort(k, "created_at", "id")
    )
    out = joined.select(
        k,
        question_id=text(pl.col("id")),
        school=text(pl.col("school_name")),
        group=text(pl.col("group_name")),
        student_id=pl.when(hide).then(pl.lit("")).otherwise(text(pl.col("s_uuid"))),
        student_name=pl.when(hide).then(pl.lit("")).otherwise(text(pl.col("s_name"))),
        student_email=pl.when(hide).then(pl.lit("")).otherwise(text(pl.col("s_email"))),
        teacher_id=text(pl.col("t_uuid")),
        teacher_name=text(pl.col("t_name")),
        teacher_email=text(pl.col("t_email")),
        question_discipline=text(pl.col("d_name")),
        question_subject=text(pl.col("sub_name")),
        question_created_at=iso_utc(pl.col("created_at")),
        question_answered_at=iso_utc(pl.col("answered_at")),
        question_status=question_status(),
        question_anonymous=hide,
        question_description=text(pl.col("description")),
        answer_description=text(pl.col("answer_description")),
        reply_description=text(pl.col("reply_description")),
        reply_answer_description=text(pl.col("reply_answer_description")),
        answer_rating=pl.col("answer_rating"),
        answer_understood=pl.col("answer_understood"),
        answer_comment=text(pl.col("answer_comment")),
        has_seen_answer=pl.col("has_seen_answer").fill_null(False),
        link=link_expr(template, pl.col("subdomain")),
    )
    return out


build = batch_of_one(build_batch)


SPEC = ReportSpec(
    name="questions",
    slug="questions",
    title="Relatório de perguntas",
    description=(
        "**Perguntas** (seed 002): uma linha por pergunta criada no período, opcionalmente "
        "limitada às turmas `group_ids`. Datas ISO-8601 UTC com milissegundos; perguntas "
        "anônimas não expõem o aluno; status derivado dos fatos: Réplica aguardando resposta, "
        "Respondida, Encerrada, Em atendimento, Aguardando resposta."
    ),
    columns=COLUMNS,
    queries=QUERIES,
    build=build,
    build_batch=build_batch,
    monthly=True,
    filter_names=("group_ids",),
    formats=("json", "csv"),
    default_format="json",
    json_null="",
    sheet_name="Perguntas",
)
