"""Bookings report: full rows, one test per status (with boundary instants), filters, headers.

America/Sao_Paulo is UTC-3 all year (no DST since 2019): 20:00 UTC shows as 17:00.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from assets.reports import bookings
from assets.reports.bookings import SPEC
from tests.stift.helpers import frame, frames, request, user

SCHED = "2024-10-17 20:00"  # 17:00 local

USERS = [
    user(100, "uuid-ana", "Ana", "Conceição", "ana@ex.com.br", 4, "2023-01-01 00:00", external_id="123456"),
    user(200, "uuid-t", "Márcio", "Gonçalves", "marcio@ex.com.br", 3, "2023-01-01 00:00"),
    (300, "uuid-adm", None, "Sérgio", "Adm", "Sérgio Adm", "adm@ex.com.br", 2, "2023-01-01 00:00", None, None),
]


def booking(id_: str = "b1", **kw: Any) -> tuple:
    row: dict[str, Any] = {
        "id": id_,
        "school_id": 10,
        "group_id": "g1",
        "student_id": 100,
        "teacher_id": 200,
        "discipline_id": 1,
        "booking_room_id": 5,
        "is_queue": False,
        "created_at": "2024-10-15 18:41",
        "scheduled_for": SCHED,
        "meeting_started_at": None,
        "meeting_ended_at": None,
        "cancelled_at": None,
        "cancelled_by_id": None,
        "cancelled_by_role": None,
        "queue_joined_at": None,
        "queue_left_at": None,
        "rating_by_student": None,
        "rating_by_teacher": None,
        "call_quality_rating_by_student": None,
        "call_quality_rating_by_teacher": None,
    }
    unknown = set(kw) - set(row)
    assert not unknown, unknown
    row.update(kw)
    return tuple(row.values())


def inputs(*rows: tuple) -> dict[str, pl.DataFrame]:
    return frames(
        bookings=rows,
        schools=[(10, "Escola Central"), (11, "Unidade Jardim")],
        groups=[("g1", 10, "Turma de Testes")],
        disciplines=[(1, "Matemática")],
        booking_rooms=[(5, 10, "Sala Virtual 1", "Online")],
        users=USERS,
    )


def run(*rows: tuple, as_of: str = "2024-10-16 12:00", **kw: Any) -> pl.DataFrame:
    return bookings.build(inputs(*rows), request("2024-10-01 00:00", "2024-11-01 00:00", as_of=as_of, **kw))


def status(row: tuple, as_of: str, **kw: Any) -> str:
    return run(row, as_of=as_of, **kw)["status"].item()


def test_columns_follow_the_seed_example_in_order() -> None:
    assert [c.key for c in SPEC.columns] == [
        "id",
        "school_name",
        "created_at",
        "scheduled_for",
        "start_time",
        "end_time",
        "duration",
        "student_external_id",
        "student_name",
        "student_email",
        "teacher_name",
        "teacher_email",
        "group_name",
        "discipline_name",
        "booking_room_name",
        "booking_room_modal",
        "rating_by_student",
        "rating_by_teacher",
        "call_quality_rating_by_student",
        "call_quality_rating_by_teacher",
        "status",
        "cancelled_at",
        "cancelled_by_name",
    ]


def test_pending_row_like_the_seed_example() -> None:
    out = run(booking(rating_by_student=4.9, call_quality_rating_by_teacher=5.0))
    assert out.to_dicts() == [
        {
            "id": "b1",
            "school_name": "Escola Central",
            "created_at": "15/10/2024 15:41",
            "scheduled_for": "17/10/2024 17:00",
            "start_time": "",
            "end_time": "",
            "duration": None,
            "student_external_id": "123456",
            "student_name": "Ana Conceição",
            "student_email": "ana@ex.com.br",
            "teacher_name": "Márcio Gonçalves",
            "teacher_email": "marcio@ex.com.br",
            "group_name": "Turma de Testes",
            "discipline_name": "Matemática",
            "booking_room_name": "Sala Virtual 1",
            "booking_room_modal": "Online",
            "rating_by_student": 4.9,
            "rating_by_teacher": None,
            "call_quality_rating_by_student": None,
            "call_quality_rating_by_teacher": 5.0,
            "status": "Pendente",
            "cancelled_at": "",
            "cancelled_by_name": "",
        }
    ]


def test_present_row_with_times_and_duration_rounded_half_up() -> None:
    row = booking(
        meeting_started_at="2024-10-17 20:02:10", meeting_ended_at="2024-10-17 20:32:40", rating_by_teacher=4.0
    )
    out = run(row, as_of="2024-10-18 00:00").row(0, named=True)
    assert (out["start_time"], out["end_time"], out["duration"]) == ("17/10/2024 17:02", "17/10/2024 17:32", 31)
    assert out["status"] == "Presente" and out["rating_by_teacher"] == 4.0


def test_started_meeting_without_end_has_no_duration() -> None:
    out = run(booking(meeting_started_at="2024-10-17 20:00"), as_of="2024-10-17 20:10").row(0, named=True)
    assert (out["status"], out["start_time"], out["end_time"], out["duration"]) == (
        "Presente",
        "17/10/2024 17:00",
        "",
        None,
    )


def test_absent_dimensions_are_empty_strings() -> None:
    row = booking(group_id=None, teacher_id=None, discipline_id=None, booking_room_id=None, student_id=999)
    out = run(row).row(0, named=True)
    for key in (
        "student_external_id",
        "student_name",
        "student_email",
        "teacher_name",
        "teacher_email",
        "group_name",
        "discipline_name",
        "booking_room_name",
        "booking_room_modal",
    ):
        assert out[key] == "", key


# ---------------------------------------------------------------- one test per status


def test_pending_exactly_at_scheduled_instant() -> None:
    assert status(booking(), as_of=SCHED) == "Pendente"


def test_no_show_once_the_scheduled_instant_passed() -> None:
    assert status(booking(), as_of="2024-10-17 20:00:00.000001") == "Não compareceu"


def test_present_when_the_meeting_started_even_late_or_after_a_cancellation() -> None:
    row = booking(
        meeting_started_at="2024-10-17 20:20",
        cancelled_at="2024-10-17 19:00",
        cancelled_by_id=100,
        cancelled_by_role="student",
    )
    assert status(row, as_of="2024-10-17 21:00") == "Presente"


def test_meeting_started_after_as_of_has_not_happened() -> None:
    row = booking(meeting_started_at="2024-10-17 20:20")
    assert status(row, as_of="2024-10-17 20:10") == "Não compareceu"


def test_inside_schedule_cancel_exactly_at_the_notice_limit() -> None:
    row = booking(cancelled_at="2024-10-16 20:00", cancelled_by_id=100, cancelled_by_role="student")
    out = run(row, as_of="2024-10-20 00:00").row(0, named=True)
    assert out["status"] == "Cancelado dentro do prazo"
    assert (out["cancelled_at"], out["cancelled_by_name"]) == ("16/10/2024 17:00", "Ana Conceição")


def test_outside_schedule_cancel_one_microsecond_after_the_limit() -> None:
    row = booking(cancelled_at="2024-10-16 20:00:00.000001", cancelled_by_id=100, cancelled_by_role="student")
    assert status(row, as_of="2024-10-20 00:00") == "Cancelado fora do prazo"


def test_student_cancel_after_the_scheduled_time_is_outside() -> None:
    row = booking(cancelled_at="2024-10-17 20:30", cancelled_by_id=100, cancelled_by_role="student")
    assert status(row, as_of="2024-10-20 00:00") == "Cancelado fora do prazo"


def test_configured_notice_hours() -> None:
    row = booking(cancelled_at="2024-10-17 17:00", cancelled_by_id=100, cancelled_by_role="student")
    assert status(row, as_of="2024-10-20 00:00") == "Cancelado fora do prazo"  # default 24 h
    assert status(row, as_of="2024-10-20 00:00", options={"min_cancel_notice_hours": 3}) == "Cancelado dentro do prazo"
    assert status(row, as_of="2024-10-20 00:00", options={"min_cancel_notice_hours": 3.5}) == "Cancelado fora do prazo"


def test_student_without_role_is_recognised_by_id() -> None:
    row = booking(cancelled_at="2024-10-10 20:00", cancelled_by_id=100)
    assert status(row, as_of="2024-10-20 00:00") == "Cancelado dentro do prazo"


@pytest.mark.parametrize(("by", "role"), [(200, "teacher"), (300, "admin"), (300, None)])
def test_cancelled_by_someone_else(by: int, role: str | None) -> None:
    row = booking(cancelled_at="2024-10-17 19:59", cancelled_by_id=by, cancelled_by_role=role)
    out = run(row, as_of="2024-10-20 00:00").row(0, named=True)
    assert out["status"] == "Cancelado"
    assert out["cancelled_by_name"] == {200: "Márcio Gonçalves", 300: "Sérgio Adm"}[by]


def test_cancellation_after_as_of_is_not_yet_visible() -> None:
    row = booking(cancelled_at="2024-10-16 12:00", cancelled_by_id=100, cancelled_by_role="student")
    out = run(row, as_of="2024-10-16 11:59").row(0, named=True)
    assert (out["status"], out["cancelled_at"], out["cancelled_by_name"]) == ("Pendente", "", "")


def test_queue_while_waiting_up_to_the_scheduled_instant() -> None:
    row = booking(is_queue=True, teacher_id=None, queue_joined_at="2024-10-17 19:30")
    assert status(row, as_of="2024-10-17 19:45") == "Na fila"
    assert status(row, as_of=SCHED) == "Na fila"


def test_not_realized_when_still_in_queue_after_the_slot_passed() -> None:
    row = booking(is_queue=True, teacher_id=None, queue_joined_at="2024-10-17 19:30")
    assert status(row, as_of="2024-10-17 20:00:01") == "Não realizado"


def test_left_queue_from_the_instant_the_student_left() -> None:
    row = booking(is_queue=True, teacher_id=None, queue_joined_at="2024-10-17 19:30", queue_left_at="2024-10-17 19:40")
    assert status(row, as_of="2024-10-17 19:40") == "Saiu da fila"
    assert status(row, as_of="2024-10-17 19:39:59") == "Na fila"
    assert status(row, as_of="2024-10-18 00:00") == "Saiu da fila"


def test_queue_served_is_present() -> None:
    row = booking(is_queue=True, queue_joined_at="2024-10-17 19:30", meeting_started_at="2024-10-17 19:50")
    assert status(row, as_of="2024-10-18 00:00") == "Presente"


def test_every_status_has_a_pt_br_label() -> None:
    assert bookings.STATUS_LABELS[bookings.PENDING] == "Pendente"
    assert len(set(bookings.STATUS_LABELS.values())) == 9


# ---------------------------------------------------------------- filters, order, headers


def test_school_filter_and_order_by_scheduled_time() -> None:
    rows = (
        booking("late", scheduled_for="2024-10-20 12:00"),
        booking("other-school", school_id=11, scheduled_for="2024-10-18 12:00"),
        booking("early", scheduled_for="2024-10-10 12:00"),
    )
    assert run(*rows)["id"].to_list() == ["early", "other-school", "late"]
    assert run(*rows, filters={"school_ids": ["10"]})["id"].to_list() == ["early", "late"]
    assert run(*rows, filters={"school_ids": [11]})["id"].to_list() == ["other-school"]
    assert run(*rows, filters={"school_ids": [11]})["school_name"].to_list() == ["Unidade Jardim"]


def test_timestamps_use_the_institution_timezone() -> None:
    from assets.spec import Institution

    manaus = Institution(2, "Escola Amazônia", "amazonia", "America/Manaus")  # UTC-4
    req = request("2024-10-01 00:00", "2024-11-01 00:00", as_of="2024-10-16 00:00", institution=manaus)
    out = bookings.build(inputs(booking()), req)
    assert out["scheduled_for"].item() == "17/10/2024 16:00"


def test_empty_input() -> None:
    data = inputs()
    data["bookings"] = frame("bookings").clear()
    out = bookings.build(data, request("2024-10-01 00:00", "2024-11-01 00:00"))
    assert out.height == 0 and out.columns == [c.key for c in SPEC.columns]


def test_csv_headers() -> None:
    assert SPEC.csv_headers == [
        "ID",
        "Escola",
        "Criado em",
        "Agendado para",
        "Início",
        "Término",
        "Duração (minutos)",
        "ID externo do aluno",
        "Nome do aluno",
        "E-mail do aluno",
        "Nome do professor",
        "E-mail do professor",
        "Turma",
        "Disciplina",
        "Sala",
        "Modalidade",
        "Avaliação do aluno",
        "Avaliação do professor",
        "Qualidade da chamada (aluno)",
        "Qualidade da chamada (professor)",
        "Status",
        "Cancelado em",
        "Cancelado por",
    ]
