"""Bookings workload: interval union per teacher/discipline/weekday, filters, order."""

from __future__ import annotations

from datetime import UTC

from assets.reports import bookings_workload
from assets.reports.bookings_workload import SPEC
from tests.stift.helpers import frames, request, user

USERS = [
    user(200, "u200", "Márcio", "Gonçalves", "marcio@ex.com.br", 3, "2023-01-01 00:00"),
    (201, "u201", None, "Zé", "Saiu", "Zé Saiu", "ze@ex.com.br", 3, "2023-01-01 00:00", None, "2024-01-01 00:00"),
    (202, "u202", None, "Ana", "Souza", "Ana Souza", "ana@ex.com.br", 3, "2023-01-01 00:00", "2024-05-01 00:00", None),
]
# id, school, teacher, discipline, weekday, start, end
SCHEDULES = [
    (1, 10, 200, 1, 0, 480, 600),  # Mon 08:00-10:00
    (2, 11, 200, 1, 0, 540, 660),  # Mon 09:00-11:00, overlaps (other school: still one teacher)
    (3, 10, 200, 1, 0, 660, 720),  # Mon 11:00-12:00, touches
    (4, 10, 200, 1, 1, 480, 540),  # Tue 08:00-09:00
    (5, 10, 200, 1, 2, 600, 600),  # empty slot: ignored
    (6, 10, 200, 1, 3, 700, 650),  # inverted slot: ignored
    (7, 10, 200, 2, 0, 480, 600),  # Física, same hours as Matemática: its own row
    (8, 10, 201, 1, 0, 480, 600),  # deleted teacher: no current schedule
    (9, 11, 202, 1, 2, 1200, 1380),  # Wed 20:00-23:00
    (10, 11, 202, 1, 2, 1260, 1320),  # contained
]


def inputs() -> dict:
    return frames(
        teacher_schedules=SCHEDULES,
        disciplines=[(1, "Matemática"), (2, "Física")],
        users=USERS,
    )


def snapshot(**kw) -> object:
    return request(None, None, **kw)


def test_columns_in_seed_order_and_snapshot_spec() -> None:
    assert [c.key for c in SPEC.columns] == ["teacher_name", "teacher_email", "weekly_minutes", "discipline_name"]
    assert SPEC.csv_headers == ["Nome do professor", "E-mail do professor", "Minutos semanais", "Disciplina"]
    assert SPEC.monthly is False and SPEC.slug == "bookings-workload"
    for sql in SPEC.queries.values():
        assert ":start_utc" not in sql and ":end_utc" not in sql and ":institution_id" in sql


def test_weekly_minutes_hand_computed() -> None:
    out = bookings_workload.build(inputs(), snapshot())
    assert out.to_dicts() == [
        # Wed 20:00-23:00 (the 21:00-22:00 slot lies inside): 180
        {
            "teacher_name": "Ana Souza",
            "teacher_email": "ana@ex.com.br",
            "weekly_minutes": 180,
            "discipline_name": "Matemática",
        },
        {
            "teacher_name": "Márcio Gonçalves",
            "teacher_email": "marcio@ex.com.br",
            "weekly_minutes": 120,
            "discipline_name": "Física",
        },
        # Mon 08:00-12:00 (three slots merged) = 240, Tue 60
        {
            "teacher_name": "Márcio Gonçalves",
            "teacher_email": "marcio@ex.com.br",
            "weekly_minutes": 300,
            "discipline_name": "Matemática",
        },
    ]


def test_school_filter_unions_only_that_schools_slots() -> None:
    out = bookings_workload.build(inputs(), snapshot(filters={"school_ids": ["10"]}))
    # Mon 08:00-10:00 + 11:00-12:00 = 180, Tue 60 -> 240; Ana teaches only at school 11
    assert out.select("teacher_name", "discipline_name", "weekly_minutes").rows() == [
        ("Márcio Gonçalves", "Física", 120),
        ("Márcio Gonçalves", "Matemática", 240),
    ]
    assert bookings_workload.build(inputs(), snapshot(filters={"school_ids": [99]})).height == 0


def test_weekly_minutes_helper_on_disjoint_and_nested_slots() -> None:
    data = frames(
        teacher_schedules=[
            (1, 10, 1, 1, 4, 0, 30),
            (2, 10, 1, 1, 4, 60, 90),
            (3, 10, 1, 1, 4, 10, 20),
            (4, 10, 1, 1, 5, 0, 1440),
        ]
    )["teacher_schedules"]
    assert bookings_workload.weekly_minutes(data).rows() == [(1, 1, 30 + 30 + 1440)]


def test_teachers_sort_accent_insensitively() -> None:
    """'Ética' sorts with the E's, not after 'Zélia' (same collation as the other reports)."""
    from datetime import datetime

    import polars as _pl

    from assets.reports import bookings_workload
    from assets.spec import Institution, ReportRequest

    frames = {
        "teacher_schedules": _pl.DataFrame(
            {
                "id": [1, 2, 3],
                "school_id": [1, 1, 1],
                "teacher_id": [10, 11, 12],
                "discipline_id": [1, 1, 1],
                "weekday": [0, 0, 0],
                "start_minute": [480, 480, 480],
                "end_minute": [540, 540, 540],
            }
        ),
        "disciplines": _pl.DataFrame({"id": [1], "name": ["Física"]}),
        "users": _pl.DataFrame(
            {
                "id": [10, 11, 12],
                "name": ["Zélia Prado", "Ética Souza", "Fábio Lima"],
                "email": ["z@x", "e@x", "f@x"],
                "deleted_at": [None, None, None],
            },
            schema_overrides={"deleted_at": _pl.Datetime("us")},
        ),
    }
    request = ReportRequest(Institution(1, "I", "i"), None, None, datetime(2026, 11, 1, tzinfo=UTC))
    out = bookings_workload.build(frames, request)
    assert out["teacher_name"].to_list() == ["Ética Souza", "Fábio Lima", "Zélia Prado"]
