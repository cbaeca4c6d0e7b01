"""Groups usage: every aggregate of the summary against hand-computed values.

February 2024 in America/Sao_Paulo (UTC-3): 2024-02-01 is a Thursday, 02-02 a
Friday, 02-05 a Monday. Default service hours: Monday-Friday 08:00-22:00 local.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from assets.reports import groups_usage
from assets.reports.groups_usage import SPEC, build_summary, service_minutes_until
from assets.reports.groups_usage_xlsx import LIST_SHEETS, summary_sheet_name, write_groups_usage_xlsx
from tests.stift.helpers import frames, question, request, user

U = "2023-01-01 12:00"
USERS = [
    (100, "u100", None, "Ana", "Conceição", "Ana Conceição", "ana@ex.com.br", 4, "2023-04-26 13:00", None, None),
    user(101, "u101", "João", "Simões", "joao@ex.com.br", 4, "2023-05-01 01:00", blocked="2024-01-10 12:00"),
    (102, "u102", None, "Bia", "Deletada", "Bia Deletada", "bia@ex.com.br", 4, U, None, "2024-02-10 12:00"),
    (103, "u103", None, "Caio", "Novo", "Caio Novo", "caio@ex.com.br", 4, "2024-03-05 12:00", None, None),
    (104, "u104", None, "Duda", "Anônima", "Duda Anônima", "duda@ex.com.br", 4, U, None, None),
    (105, "u105", None, "Eva", "Externa", "Eva Externa", "eva@ex.com.br", 4, U, None, None),
    (106, "u106", None, "Fábio", "Outro", "Fábio Outro", "fabio@ex.com.br", 4, U, None, None),
    (107, "u107", None, "Gil", "Parado", "Gil Parado", "gil@ex.com.br", 4, U, None, None),
    user(200, "u200", "Márcio", "Gonçalves", "marcio@ex.com.br", 3, "2023-04-26 13:00"),
    (201, "u201", None, "Paula", "Santos", "Paula Santos", "paula@ex.com.br", 3, "2024-01-03 12:00", None, None),
    (202, "u202", None, "Rui", "Terceiro", "Rui Terceiro", "rui@ex.com.br", 3, U, None, None),
    (300, "u300", None, "Sérgio", "Adm", "Sérgio Adm", "adm@ex.com.br", 2, U, None, None),
]
MEMBERS = [
    ("g1", 100, "student", U),
    ("g1", 101, "student", U),
    ("g2", 101, "student", U),
    ("g1", 102, "student", U),
    ("g2", 103, "student", U),
    ("g1", 104, "student", U),
    ("g2", 107, "student", U),
    ("g3", 106, "student", U),
    ("g1", 200, "teacher", U),
    ("g2", 201, "teacher", U),
    ("g3", 202, "teacher", U),
    ("g1", 300, "admin", U),
]
QUESTIONS = [
    # plain 90, adjusted 90 (Thu 13:00-14:30 local)
    question(
        "qA",
        "g1",
        100,
        200,
        1,
        1,
        "a",
        False,
        "2024-02-01 16:00",
        "2024-02-01 16:01",
        "2024-02-01 17:30",
        rating=5.0,
        understood=True,
        comment="Ótimo",
    ),
    # Fri 21:00 -> Mon 09:00 local: plain 3600, adjusted 60 + 60 = 120
    question(
        "qB", "g1", 100, 200, 1, 2, "b", False, "2024-02-03 00:00", "2024-02-03 00:01", "2024-02-05 12:00", rating=3.0
    ),
    # Mon 07:00 -> 07:30 local, before opening: plain 30, adjusted 0
    question("qC", "g2", 101, 200, 2, 3, "c", False, "2024-02-05 10:00", "2024-02-05 10:01", "2024-02-05 10:30"),
    # anonymous: plain 45, adjusted 45
    question(
        "qD",
        "g1",
        104,
        200,
        1,
        1,
        "d",
        True,
        "2024-02-06 13:00",
        "2024-02-06 13:01",
        "2024-02-06 13:45",
        rating=4.0,
        understood=False,
    ),
    # a non-member asks in g1, no discipline, unanswered
    question("qE", "g1", 105, None, None, None, "e", False, "2024-02-07 13:00"),
    question("qF", "g1", 101, 200, 1, 1, "f", False, "2024-02-08 13:00", "2024-02-08 13:05"),
    # g3 only: plain 60, adjusted 60
    question("qG", "g3", 106, 202, 1, 1, "g", False, "2024-02-08 14:00", "2024-02-08 14:01", "2024-02-08 15:00"),
    question("qH", "g1", 102, None, 1, 1, "h", False, "2024-02-09 12:00"),
]
NPS = [
    (1, 100, "g1", 9, "Muito bom", "2024-02-10 12:00", "2024-02-10 14:00"),
    (2, 101, None, 6, None, "2024-02-11 00:00", "2024-02-11 02:30"),  # local 2024-02-10 23:30
    (3, 106, "g3", 10, None, "2024-02-12 00:00", "2024-02-12 01:00"),
    (4, 999, None, 0, "fora", "2024-02-12 00:00", "2024-02-12 01:00"),
]
BOOKINGS = pl.DataFrame(
    {
        "id": ["b1", "b2", "b3"],
        "group_id": [None, "g2", "g1"],
        "student_id": [104, 107, 100],
        "teacher_id": [200, 201, 200],
        "meeting_started_at": [datetime(2024, 2, 14, 15), None, datetime(2024, 2, 15, 15)],
    }
)


def inputs() -> dict[str, pl.DataFrame]:
    data = frames(
        groups=[("g1", 10, "Turma de Testes"), ("g2", 10, "3º ano B"), ("g3", 11, "Outra turma")],
        group_members=MEMBERS,
        disciplines=[(1, "Matemática"), (2, "Física")],
        subjects=[(1, 1, "Álgebra"), (2, 1, "Aritmética"), (3, 2, "Óptica")],
        teacher_disciplines=[(200, 1), (200, 2), (202, 1)],
        questions=QUESTIONS,
        nps_answers=NPS,
        users=USERS,
    )
    data["bookings"] = BOOKINGS
    return data


def feb(**filters) -> object:
    return request("2024-02-01 00:00", "2024-03-01 00:00", filters=filters)


MAT = {"id": 1, "name": "Matemática"}


def test_summary_every_key_hand_computed() -> None:
    summary = build_summary(inputs(), feb(group_ids=["g1", "g2"], show_teachers=True, show_disciplines=True))
    assert list(summary) == [
        "start_date",
        "end_date",
        "total_questions",
        "average_adjusted_response_time_in_minutes",
        "questions_count_by_discipline",
        "active_users_percentage",
        "average_answer_rating",
        "average_nps",
        "average_response_time_nps",
        "nps_answers",
        "answer_ratings",
        "students",
        "teachers",
        "disciplines",
    ]
    assert summary["start_date"] == "01/02/2024"
    assert summary["end_date"] == "29/02/2024"
    assert summary["total_questions"] == 7  # qA..qF, qH
    assert summary["average_adjusted_response_time_in_minutes"] == 63.75  # (90 + 120 + 0 + 45) / 4
    assert list(summary["questions_count_by_discipline"].items()) == [
        ("Matemática", 5),
        ("Física", 1),
        ("Sem disciplina", 1),
    ]
    # existing at the period end: Ana, Duda, Eva, João, Gil (Bia deleted, Caio created later); Gil inactive
    assert summary["active_users_percentage"] == 0.8
    assert summary["average_answer_rating"] == 4.0  # (5 + 3 + 4) / 3
    assert summary["average_nps"] == 7.5  # (9 + 6) / 2
    assert summary["average_response_time_nps"] == 135.0  # (120 + 150) / 2
    assert summary["nps_answers"] == [
        {
            "name": "Ana Conceição",
            "email": "ana@ex.com.br",
            "group": "Turma de Testes",
            "score": 9,
            "comment": "Muito bom",
            "answered_at": "2024-02-10",
            "response_time_in_minutes": 120.0,
        },
        {
            "name": "João Simões",
            "email": "joao@ex.com.br",
            "group": None,
            "score": 6,
            "comment": None,
            "answered_at": "2024-02-10",
            "response_time_in_minutes": 150.0,
        },
    ]
    assert summary["answer_ratings"] == [
        {
            "question_id": "qA",
            "discipline": "Matemática",
            "subject": "Álgebra",
            "rating": 5.0,
            "understood": True,
            "comment": "Ótimo",
        },
        {
            "question_id": "qB",
            "discipline": "Matemática",
            "subject": "Aritmética",
            "rating": 3.0,
            "understood": None,
            "comment": None,
        },
        {
            "question_id": "qD",
            "discipline": "Matemática",
            "subject": "Álgebra",
            "rating": 4.0,
            "understood": False,
            "comment": None,
        },
    ]
    student = {"blocked_at": None, "deleted_at": None, "created_at": "2023-01-01"}
    assert summary["students"] == [
        {
            **student,
            "name": "Ana Conceição",
            "groups": ["Turma de Testes"],
            "email": "ana@ex.com.br",
            "active": True,
            "created_at": "2023-04-26",
            "questions_count": 2,
            "questions": [
                {"discipline": MAT, "subject": {"id": 1, "name": "Álgebra"}},
                {"discipline": MAT, "subject": {"id": 2, "name": "Aritmética"}},
            ],
        },
        {
            **student,
            "name": "Bia Deletada",
            "groups": ["Turma de Testes"],
            "email": "bia@ex.com.br",
            "active": True,
            "deleted_at": "2024-02-10",
            "questions_count": 1,
            "questions": [{"discipline": MAT, "subject": {"id": 1, "name": "Álgebra"}}],
        },
        {
            **student,
            "name": "Caio Novo",
            "groups": ["3º ano B"],
            "email": "caio@ex.com.br",
            "active": False,
            "created_at": "2024-03-05",
            "questions_count": 0,
            "questions": [],
        },
        # her only question is anonymous: not attributed; active through a held booking without group
        {
            **student,
            "name": "Duda Anônima",
            "groups": ["Turma de Testes"],
            "email": "duda@ex.com.br",
            "active": True,
            "questions_count": 0,
            "questions": [],
        },
        {
            **student,
            "name": "Eva Externa",
            "groups": ["Turma de Testes"],
            "email": "eva@ex.com.br",
            "active": True,
            "questions_count": 1,
            "questions": [{"discipline": None, "subject": None}],
        },
        {
            **student,
            "name": "Gil Parado",
            "groups": ["3º ano B"],
            "email": "gil@ex.com.br",
            "active": False,
            "questions_count": 0,
            "questions": [],
        },
        # created 01:00 UTC = 22:00 the day before in São Paulo
        {
            **student,
            "name": "João Simões",
            "groups": ["3º ano B", "Turma de Testes"],
            "email": "joao@ex.com.br",
            "active": True,
            "created_at": "2023-04-30",
            "blocked_at": "2024-01-10",
            "questions_count": 2,
            "questions": [
                {"discipline": {"id": 2, "name": "Física"}, "subject": {"id": 3, "name": "Óptica"}},
                {"discipline": MAT, "subject": {"id": 1, "name": "Álgebra"}},
            ],
        },
    ]
    assert summary["teachers"] == [
        {
            "first_name": "Márcio",
            "last_name": "Gonçalves",
            "email": "marcio@ex.com.br",
            "groups": ["3º ano B", "Turma de Testes"],
            "disciplines": ["Física", "Matemática"],
            "active": True,
            "answered_questions_count": 4,
            "average_response_time_in_minutes": 941.25,  # (90+3600+30+45)/4
            "created_at": "2023-04-26",
            "blocked_at": None,
            "deleted_at": None,
        },
        {
            "first_name": "Paula",
            "last_name": "Santos",
            "email": "paula@ex.com.br",
            "groups": ["3º ano B"],
            "disciplines": [],
            "active": False,
            "answered_questions_count": 0,
            "average_response_time_in_minutes": None,
            "created_at": "2024-01-03",
            "blocked_at": None,
            "deleted_at": None,
        },
    ]
    assert summary["disciplines"] == [
        {
            "name": "Matemática",
            "top_subjects": {"Álgebra": 4, "Aritmética": 1},
            "total_questions": 5,
            "average_response_time_in_minutes": 1245.0,
        },  # (90 + 3600 + 45) / 3
        {
            "name": "Física",
            "top_subjects": {"Óptica": 1},
            "total_questions": 1,
            "average_response_time_in_minutes": 30.0,
        },
        {"name": "Sem disciplina", "top_subjects": {}, "total_questions": 1, "average_response_time_in_minutes": None},
    ]


def test_teachers_and_disciplines_only_on_request() -> None:
    summary = build_summary(inputs(), feb(group_ids=["g1"]))
    assert "teachers" not in summary and "disciplines" not in summary
    assert "teachers" in build_summary(inputs(), feb(group_ids=["g1"], show_teachers=True))
    assert "disciplines" not in build_summary(inputs(), feb(group_ids=["g1"], show_teachers=True))


def test_all_groups_when_no_filter_and_totals_equal_sum_of_parts() -> None:
    summary = build_summary(inputs(), feb(show_teachers=True, show_disciplines=True))
    assert summary["total_questions"] == 8
    assert summary["questions_count_by_discipline"]["Matemática"] == 6
    assert sum(summary["questions_count_by_discipline"].values()) == summary["total_questions"]
    assert sum(d["total_questions"] for d in summary["disciplines"]) == summary["total_questions"]
    anonymous = sum(1 for q in QUESTIONS if q[7])
    assert sum(s["questions_count"] for s in summary["students"]) == summary["total_questions"] - anonymous
    assert all(s["questions_count"] == len(s["questions"]) for s in summary["students"])
    assert "Fábio Outro" in [s["name"] for s in summary["students"]]
    assert [t["email"] for t in summary["teachers"]] == ["marcio@ex.com.br", "paula@ex.com.br", "rui@ex.com.br"]
    assert summary["average_nps"] == round((9 + 6 + 10) / 3, 2)
    # adjusted: (90 + 120 + 0 + 45 + 60) / 5
    assert summary["average_adjusted_response_time_in_minutes"] == 63.0


def test_no_data_gives_nulls_and_empty_lists() -> None:
    summary = build_summary(inputs(), feb(group_ids=["no-such-group"], show_disciplines=True))
    assert summary["total_questions"] == 0
    assert summary["questions_count_by_discipline"] == {}
    for key in (
        "average_adjusted_response_time_in_minutes",
        "active_users_percentage",
        "average_answer_rating",
        "average_nps",
        "average_response_time_nps",
    ):
        assert summary[key] is None, key
    assert summary["nps_answers"] == summary["answer_ratings"] == summary["students"] == summary["disciplines"] == []


def test_flat_students_table_for_csv() -> None:
    out = groups_usage.build(inputs(), feb(group_ids=["g1", "g2"]))
    assert out.columns == [c.key for c in SPEC.columns]
    assert out.row(by_predicate=pl.col("name") == "João Simões", named=True) == {
        "name": "João Simões",
        "groups": "3º ano B, Turma de Testes",
        "email": "joao@ex.com.br",
        "active": True,
        "created_at": date(2023, 4, 30),
        "blocked_at": date(2024, 1, 10),
        "deleted_at": None,
        "questions_count": 2,
    }
    assert out.height == 7
    assert SPEC.csv_headers == [
        "Nome",
        "Turmas",
        "E-mail",
        "Ativo",
        "Criado em",
        "Bloqueado em",
        "Excluído em",
        "Quantidade de perguntas",
    ]
    assert SPEC.summary is build_summary and SPEC.formats == ("json", "csv", "xlsx")


# ---------------------------------------------------------------- adjusted response time


def _service(start: str, end: str, hours: dict | None = None) -> float:
    options = {} if hours is None else {"service_hours": hours}
    resolved = groups_usage.service_hours(request(None, None, options=options))
    frame = pl.DataFrame({"a": [datetime.fromisoformat(start)], "b": [datetime.fromisoformat(end)]})
    return frame.select(
        service_minutes_until(pl.col("b"), resolved) - service_minutes_until(pl.col("a"), resolved)
    ).item()


@pytest.mark.parametrize(
    ("start", "end", "hours", "expected"),
    [
        ("2024-02-02 21:00", "2024-02-05 09:00", None, 120.0),  # Fri 21:00 -> Mon 09:00
        ("2024-02-06 23:00", "2024-02-07 07:00", None, 0.0),  # closed all night
        ("2024-02-05 08:00", "2024-02-19 08:00", None, 2 * 5 * 840.0),  # two full weeks
        ("2024-02-05 10:00", "2024-02-05 10:00:30", None, 0.5),  # seconds count
        ("2024-02-02 12:00", "2024-02-05 12:00", {5: ("09:00", "13:00")}, 240.0),  # Saturday-only desk
        ("2024-02-05 09:30", "2024-02-12 08:30", {"0": [480, 600]}, 60.0),  # Mondays 08-10, string keys
        ("2024-02-03 10:00", "2024-02-04 18:00", None, 0.0),  # a weekend
    ],
)
def test_service_minutes_hand_cases(start: str, end: str, hours: dict | None, expected: float) -> None:
    assert _service(start, end, hours) == pytest.approx(expected)


def test_service_hours_option_flows_into_the_summary() -> None:
    # Saturday and Sunday 00:00-24:00 only: qB (Fri 21:00 -> Mon 09:00 local) counts the whole weekend
    options = {"service_hours": {5: (0, 1440), 6: (0, 1440)}}
    req = request("2024-02-01 00:00", "2024-03-01 00:00", filters={"group_ids": ["g1"]}, options=options)
    only_qb = {**inputs(), **frames(questions=[QUESTIONS[1]])}
    assert build_summary(only_qb, req)["average_adjusted_response_time_in_minutes"] == 2880.0


def test_bad_service_hours_are_rejected() -> None:
    with pytest.raises(ValueError, match="service_hours"):
        groups_usage.service_hours(request(None, None, options={"service_hours": {7: (0, 60)}}))


# ---------------------------------------------------------------- xlsx workbook


def test_xlsx_workbook_summary_plus_one_sheet_per_list(tmp_path: Path) -> None:
    summary = build_summary(inputs(), feb(group_ids=["g1", "g2"], show_teachers=True, show_disciplines=True))
    path = tmp_path / "groups.xlsx"
    write_groups_usage_xlsx(summary, path, "Uso: Turmas/2024 [fev]")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == [
        "Uso  Turmas 2024  fev",
        "Alunos",
        "Professores",
        "Disciplinas",
        "Respostas NPS",
        "Avaliações",
    ]
    first = wb.worksheets[0]
    assert [c.value for c in first[1]] == ["Indicador", "Valor"]
    assert first.freeze_panes == "A2" and first["A1"].font.bold
    values = {r[0]: r[1] for r in first.iter_rows(min_row=2, values_only=True)}
    assert values["Total de perguntas"] == 7
    assert values["Tempo médio de resposta ajustado (min)"] == 63.75
    assert values["Alunos ativos (%)"] == 0.8
    assert values["Perguntas - Matemática"] == 5
    assert values["Data final"] == "29/02/2024"
    students = wb["Alunos"]
    assert [c.value for c in students[1]] == [
        "Nome",
        "Turmas",
        "E-mail",
        "Ativo",
        "Criado em",
        "Bloqueado em",
        "Excluído em",
        "Quantidade de perguntas",
        "Perguntas (disciplina / assunto)",
    ]
    assert students.freeze_panes == "A2" and all(c.font.bold for c in students[1])
    assert students.max_row == 1 + len(summary["students"])
    ana = [c.value for c in students[2]]
    assert ana[:4] == ["Ana Conceição", "Turma de Testes", "ana@ex.com.br", "Sim"]
    assert ana[4] == datetime(2023, 4, 26) and ana[5] is None
    assert ana[7:] == [2, "Matemática / Álgebra (1); Matemática / Aritmética (1)"]
    assert [c.value for c in wb["Disciplinas"][2]] == ["Matemática", 5, 1245, "Álgebra (4); Aritmética (1)"]
    assert wb["Respostas NPS"].max_row == 3 and wb["Avaliações"].max_row == 4


def test_xlsx_without_optional_lists_and_without_name(tmp_path: Path) -> None:
    summary = build_summary(inputs(), feb(group_ids=["g1"]))
    path = tmp_path / "g.xlsx"
    SPEC.summary_xlsx(summary, path, None)
    assert openpyxl.load_workbook(path).sheetnames == ["Resumo", "Alunos", "Respostas NPS", "Avaliações"]


def test_xlsx_text_is_never_a_formula(tmp_path: Path) -> None:
    summary = {
        "start_date": "01/02/2024",
        "end_date": "29/02/2024",
        "total_questions": 1,
        "questions_count_by_discipline": {"=1+1": 1},
        "students": [
            {
                "name": '=HYPERLINK("http://x")',
                "groups": ["+Turma"],
                "email": "@x",
                "active": False,
                "created_at": "2024-01-01",
                "blocked_at": None,
                "deleted_at": None,
                "questions_count": 0,
                "questions": [],
            }
        ],
    }
    path = tmp_path / "inj.xlsx"
    write_groups_usage_xlsx(summary, path, "-relatório")
    wb = openpyxl.load_workbook(path)
    row = wb["Alunos"][2]
    assert (row[0].value, row[0].data_type) == ('=HYPERLINK("http://x")', "s")
    assert (row[1].value, row[1].data_type) == ("+Turma", "s")
    assert wb.worksheets[0]["A10"].value == "Perguntas - =1+1"
    assert wb.sheetnames[0] == "-relatório"


@pytest.mark.parametrize(
    ("title", "expected"),
    [(None, "Resumo"), ("", "Resumo"), ("Alunos", "Resumo - Alunos"), ("x" * 40, "x" * 31), ("a/b", "a b")],
)
def test_summary_sheet_names(title: str | None, expected: str) -> None:
    assert summary_sheet_name(title) == expected
    assert expected not in LIST_SHEETS


def test_teacher_active_through_a_meeting_without_group() -> None:
    """Paula (201, teacher of g2) answered nothing; her only meeting has no group.
    Held (meeting_started_at set) -> active, as for students; not held -> inactive."""

    def paula(meeting_started_at: datetime | None) -> dict:
        data = inputs()
        data["bookings"] = pl.DataFrame(
            {
                "id": ["b9"],
                "group_id": pl.Series([None], dtype=pl.String()),
                "student_id": [107],
                "teacher_id": [201],
                "meeting_started_at": pl.Series([meeting_started_at], dtype=pl.Datetime("us")),
            }
        )
        teachers = build_summary(data, feb(group_ids=["g2"], show_teachers=True))["teachers"]
        return next(t for t in teachers if t["email"] == "paula@ex.com.br")

    held = paula(datetime(2024, 2, 20, 15))
    assert held["active"] is True and held["answered_questions_count"] == 0 and held["groups"] == ["3º ano B"]
    assert paula(None)["active"] is False
