"""Questions report: every field of every row against hand-written expectations."""

from __future__ import annotations

import polars as pl

from assets.reports import questions
from assets.reports.questions import SPEC
from tests.stift.helpers import frames, question, request, user

USERS = [
    (100, "uuid-ana", "E100", "Ana", "Conceição", "Ana Conceição", "ana@ex.com.br", 4, "2023-04-26 10:00", None, None),
    (101, "uuid-joao", "E101", "João", "Simões", "João Simões", "joao@ex.com.br", 4, "2023-04-26 10:00", None, None),
    user(200, "uuid-marcio", "Márcio", "Gonçalves", "marcio@ex.com.br", 3, "2023-01-01 00:00"),
]


q = question

QUESTIONS = [
    q(
        "q1",
        "g1",
        100,
        200,
        1,
        1,
        "Como resolver x²=4?",
        False,
        "2024-02-19 14:04:02.057",
        "2024-02-19 14:10",
        "2024-02-19 18:18:43.599",
        None,
        "Use a raiz quadrada.",
        "E se fosse negativo?",
        None,
        4.5,
        True,
        "Ajudou",
        True,
    ),
    q(
        "q2",
        "g1",
        101,
        200,
        2,
        2,
        "=SOMA(A1:A3)?",
        True,
        "2024-02-20 10:00",
        "2024-02-20 10:05",
        "2024-02-20 11:00",
        None,
        "Não é fórmula.",
        "Ok, e depois?",
        "Depois some.",
        None,
        None,
        None,
        True,
    ),
    q("q3", "g1", 100, None, 1, None, "Pergunta encerrada", False, "2024-02-21 09:00", closed="2024-02-22 09:00"),
    q("q4", "g1", 101, 200, 1, 1, "Em atendimento", False, "2024-02-22 09:00", "2024-02-22 09:30"),
    q("q5", "g2", 100, None, None, None, "Sem disciplina", False, "2024-02-23 09:00", understood=False),
]


def inputs() -> dict[str, pl.DataFrame]:
    return frames(
        questions=QUESTIONS,
        groups=[("g1", 10, "Turma de Testes"), ("g2", 11, "3º ano B")],
        schools=[(10, "Escola Central"), (11, "Unidade Jardim")],
        disciplines=[(1, "Matemática"), (2, "Física")],
        subjects=[(1, 1, "Álgebra"), (2, 2, "Óptica")],
        users=USERS,
    )


def feb(**kw) -> object:
    return request("2024-02-01 00:00", "2024-03-01 00:00", **kw)


def test_columns_follow_the_seed_example_in_order() -> None:
    assert [c.key for c in SPEC.columns] == [
        "question_id",
        "school",
        "group",
        "student_id",
        "student_name",
        "student_email",
        "teacher_id",
        "teacher_name",
        "teacher_email",
        "question_discipline",
        "question_subject",
        "question_created_at",
        "question_answered_at",
        "question_status",
        "question_anonymous",
        "question_description",
        "answer_description",
        "reply_description",
        "reply_answer_description",
        "answer_rating",
        "answer_understood",
        "answer_comment",
        "has_seen_answer",
        "link",
    ]
    assert SPEC.headers == [c.key for c in SPEC.columns]
    assert SPEC.default_format == "json" and SPEC.monthly and SPEC.slug == "questions"
    assert SPEC.json_null == ""  # seed 002 shows absent values as "" in JSON


def test_every_field_of_every_row() -> None:
    out = questions.build(inputs(), feb())
    assert out.columns == [c.key for c in SPEC.columns]
    link = "https://portal.stift.com.br/#/questions/{}/"
    assert out.to_dicts() == [
        {
            "question_id": "q1",
            "school": "Escola Central",
            "group": "Turma de Testes",
            "student_id": "uuid-ana",
            "student_name": "Ana Conceição",
            "student_email": "ana@ex.com.br",
            "teacher_id": "uuid-marcio",
            "teacher_name": "Márcio Gonçalves",
            "teacher_email": "marcio@ex.com.br",
            "question_discipline": "Matemática",
            "question_subject": "Álgebra",
            "question_created_at": "2024-02-19T14:04:02.057Z",
            "question_answered_at": "2024-02-19T18:18:43.599Z",
            "question_status": "Réplica aguardando resposta",
            "question_anonymous": False,
            "question_description": "Como resolver x²=4?",
            "answer_description": "Use a raiz quadrada.",
            "reply_description": "E se fosse negativo?",
            "reply_answer_description": "",
            "answer_rating": 4.5,
            "answer_understood": True,
            "answer_comment": "Ajudou",
            "has_seen_answer": True,
            "link": link.format("q1"),
        },
        {
            # anonymous: no student identity at all
            "question_id": "q2",
            "school": "Escola Central",
            "group": "Turma de Testes",
            "student_id": "",
            "student_name": "",
            "student_email": "",
            "teacher_id": "uuid-marcio",
            "teacher_name": "Márcio Gonçalves",
            "teacher_email": "marcio@ex.com.br",
            "question_discipline": "Física",
            "question_subject": "Óptica",
            "question_created_at": "2024-02-20T10:00:00.000Z",
            "question_answered_at": "2024-02-20T11:00:00.000Z",
            "question_status": "Respondida",
            "question_anonymous": True,
            "question_description": "=SOMA(A1:A3)?",
            "answer_description": "Não é fórmula.",
            "reply_description": "Ok, e depois?",
            "reply_answer_description": "Depois some.",
            "answer_rating": None,
            "answer_understood": None,
            "answer_comment": "",
            "has_seen_answer": True,
            "link": link.format("q2"),
        },
        {
            "question_id": "q3",
            "school": "Escola Central",
            "group": "Turma de Testes",
            "student_id": "uuid-ana",
            "student_name": "Ana Conceição",
            "student_email": "ana@ex.com.br",
            "teacher_id": "",
            "teacher_name": "",
            "teacher_email": "",
            "question_discipline": "Matemática",
            "question_subject": "",
            "question_created_at": "2024-02-21T09:00:00.000Z",
            "question_answered_at": "",
            "question_status": "Encerrada",
            "question_anonymous": False,
            "question_description": "Pergunta encerrada",
            "answer_description": "",
            "reply_description": "",
            "reply_answer_description": "",
            "answer_rating": None,
            "answer_understood": None,
            "answer_comment": "",
            "has_seen_answer": False,
            "link": link.format("q3"),
        },
        {
            "question_id": "q4",
            "school": "Escola Central",
            "group": "Turma de Testes",
            "student_id": "uuid-joao",
            "student_name": "João Simões",
            "student_email": "joao@ex.com.br",
            "teacher_id": "uuid-marcio",
            "teacher_name": "Márcio Gonçalves",
            "teacher_email": "marcio@ex.com.br",
            "question_discipline": "Matemática",
            "question_subject": "Álgebra",
            "question_created_at": "2024-02-22T09:00:00.000Z",
            "question_answered_at": "",
            "question_status": "Em atendimento",
            "question_anonymous": False,
            "question_description": "Em atendimento",
            "answer_description": "",
            "reply_description": "",
            "reply_answer_description": "",
            "answer_rating": None,
            "answer_understood": None,
            "answer_comment": "",
            "has_seen_answer": False,
            "link": link.format("q4"),
        },
        {
            "question_id": "q5",
            "school": "Unidade Jardim",
            "group": "3º ano B",
            "student_id": "uuid-ana",
            "student_name": "Ana Conceição",
            "student_email": "ana@ex.com.br",
            "teacher_id": "",
            "teacher_name": "",
            "teacher_email": "",
            "question_discipline": "",
            "question_subject": "",
            "question_created_at": "2024-02-23T09:00:00.000Z",
            "question_answered_at": "",
            "question_status": "Aguardando resposta",
            "question_anonymous": False,
            "question_description": "Sem disciplina",
            "answer_description": "",
            "reply_description": "",
            "reply_answer_description": "",
            "answer_rating": None,
            "answer_understood": False,
            "answer_comment": "",
            "has_seen_answer": False,
            "link": link.format("q5"),
        },
    ]


def test_status_precedence_answer_beats_close() -> None:
    rows = [
        q(
            "qa",
            "g1",
            100,
            200,
            1,
            1,
            "x",
            False,
            "2024-02-19 10:00",
            "2024-02-19 10:01",
            "2024-02-19 11:00",
            "2024-02-19 12:00",
        )
    ]
    data = {**inputs(), **frames(questions=rows)}
    assert questions.build(data, feb())["question_status"].to_list() == ["Respondida"]
    assigned_only = [q("qb", "g1", 100, None, 1, 1, "x", False, "2024-02-19 10:00", "2024-02-19 10:01")]
    data = {**inputs(), **frames(questions=assigned_only)}
    assert questions.build(data, feb())["question_status"].to_list() == ["Em atendimento"]


def test_group_filter_accepts_strings_and_keeps_only_those_groups() -> None:
    out = questions.build(inputs(), feb(filters={"group_ids": ["g2"]}))
    assert out["question_id"].to_list() == ["q5"]
    out = questions.build(inputs(), feb(filters={"group_ids": ["g1", "g2"]}))
    assert out.height == 5
    out = questions.build(inputs(), feb(filters={"group_ids": []}))  # empty list = no filter
    assert out.height == 5


def test_link_template_option_with_subdomain() -> None:
    options = {"question_url_template": "https://{subdomain}.stift.app/q/{question_id}?ref={question_id}"}
    out = questions.build(inputs(), feb(options=options))
    assert out["link"][0] == "https://conceicao.stift.app/q/q1?ref=q1"


def test_empty_postgres_style_frames_give_an_empty_typed_table() -> None:
    null_frames = {name: pl.DataFrame(schema={c: pl.Null() for c in frame.columns}) for name, frame in inputs().items()}
    out = questions.build(null_frames, feb())
    assert out.height == 0
    assert out.columns == [c.key for c in SPEC.columns]


def test_csv_headers_are_portuguese_one_per_column() -> None:
    assert SPEC.csv_headers == [
        "ID da pergunta",
        "Escola",
        "Turma",
        "ID do aluno",
        "Nome do aluno",
        "E-mail do aluno",
        "ID do professor",
        "Nome do professor",
        "E-mail do professor",
        "Disciplina",
        "Assunto",
        "Criada em",
        "Respondida em",
        "Status",
        "Anônima",
        "Pergunta",
        "Resposta",
        "Réplica",
        "Resposta à réplica",
        "Avaliação da resposta",
        "Entendeu a resposta",
        "Comentário da avaliação",
        "Viu a resposta",
        "Link",
    ]
