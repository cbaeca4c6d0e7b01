"""Both report modules' extraction SQL on real engines: a DuckDB file and a PostgreSQL server.

The warehouse is created from assets/warehouse/schema.sql (+ indexes.sql),
loaded with a handful of hand-written rows (including other institutions' rows and
rows just outside the period), queried through ``Warehouse.query_many`` exactly as a
report run does, and fed to the builders. The raw frames are checked too: the rows
outside the institution/period must not even leave the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import polars as pl
import pytest

from assets.reports import course_catalog, storyboard_usage
from assets.spec import Institution
from assets.warehouse.tables import indexes_sql, schema_sql
from orchestration.warehouse.client import Warehouse
from tests.reports.fixtures import URL_OPTIONS, day, month_request, range_request, ts

ALFA = Institution(1, "Escola Alfa", "alfa")
C = "2025-01-01 00:00"  # created_at of the dimension rows

TABLES: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {
    "institutions": (
        ("id", "name", "subdomain", "timezone"),
        [(1, "Escola Alfa", "alfa", "America/Sao_Paulo"), (2, "Beta", "beta", "America/Sao_Paulo")],
    ),
    "users": (
        (
            "id",
            "institution_id",
            "uuid",
            "external_id",
            "first_name",
            "last_name",
            "name",
            "email",
            "cpf",
            "cnpj",
            "privilege_id",
            "created_at",
            "blocked_at",
            "deleted_at",
        ),
        [
            (
                1,
                1,
                "u-1",
                None,
                "João",
                "da Silva",
                "João da Silva",
                "joao@alfa.com",
                "123.456.789-00",
                None,
                4,
                C,
                None,
                None,
            ),
            # deleted in the middle of June, after her interactions
            (
                2,
                1,
                "u-2",
                "ext-2",
                "Ana",
                "Çarvalho",
                "Ana Çarvalho",
                "ana@alfa.com",
                None,
                "12.345.678/0001-90",
                4,
                C,
                None,
                "2026-06-15 12:00",
            ),
            (3, 1, "u-3", None, "Sem", "Atividade", "Sem Atividade", "sem@alfa.com", None, None, 4, C, None, None),
            (4, 2, "u-4", None, "Outro", "Usuário", "Outro Usuário", "outro@beta.com", None, None, 4, C, None, None),
        ],
    ),
    "storyboards": (
        ("id", "institution_id", "title", "created_at", "deleted_at"),
        [(10, 1, "Onboarding", C, None), (11, 1, "Ética", C, "2026-06-20 00:00"), (90, 2, "Outra", C, None)],
    ),
    "stories": (
        ("id", "institution_id", "storyboard_id", "position"),
        [(101, 1, 10, 1), (102, 1, 10, 2), (111, 1, 11, 1), (901, 2, 90, 1)],
    ),
    "story_views": (
        ("institution_id", "user_id", "storyboard_id", "story_id", "viewed_at"),
        [
            (1, 1, 10, 101, "2026-06-02 12:00"),
            (1, 1, 10, 102, "2026-06-03 12:00"),
            (1, 1, 10, 101, "2026-07-01 03:00"),  # July 1st 00:00 local
            (1, 2, 11, 111, "2026-06-10 12:00"),
            (1, 2, 10, 101, "2026-06-01 02:30"),  # May 31st 23:30 local
            (2, 4, 90, 901, "2026-06-10 12:00"),
        ],
    ),
    "storyboard_reactions": (
        ("institution_id", "user_id", "storyboard_id", "kind", "reacted_at"),
        [
            (1, 2, 10, "like", "2026-06-05 12:00"),
            (1, 3, 10, "like", "2026-05-31 12:00"),  # May: user 3 stays out of the users extract
            (2, 4, 90, "like", "2026-06-10 12:00"),
        ],
    ),
    "schools": (
        ("id", "institution_id", "name"),
        [(10, 1, "Escola Norte"), (20, 1, "Ábaco"), (50, 2, "Beta Escola")],
    ),
    "courses": (
        ("id", "institution_id", "title", "status", "published_at", "created_at"),
        [
            (1, 1, "Álgebra", 1, "2025-12-01 02:00", C),
            (2, 1, "Rascunho", 0, None, C),
            (5, 2, "Beta curso", 1, "2025-06-01 12:00", C),
        ],
    ),
    "course_schools": (
        ("institution_id", "course_id", "school_id"),
        [(1, 1, 10), (1, 1, 20), (1, 2, 10), (2, 5, 50)],
    ),
    "course_views": (
        ("institution_id", "course_id", "user_id", "viewed_at"),
        [
            (1, 1, 1, "2026-01-01 03:00"),
            (1, 1, 1, "2026-01-01 02:59:59"),
            (1, 1, 2, "2026-02-01 02:59:59"),
            (1, 2, 1, "2026-02-01 03:00"),
            (2, 5, 4, "2026-01-10 12:00"),
        ],
    ),
    "enrollments": (
        ("institution_id", "course_id", "user_id", "enrolled_at", "completed_at"),
        [
            (1, 1, 1, "2025-12-20 12:00", "2026-01-10 12:00"),  # completion only (2nd UNION branch)
            (1, 1, 2, "2026-01-05 12:00", None),  # enrollment only
            (1, 1, 3, "2026-01-02 12:00", "2026-01-03 12:00"),  # both: must come back once
            (1, 2, 1, "2025-12-01 12:00", "2025-12-02 12:00"),  # neither
            (1, 2, 2, "2026-02-01 03:00", None),  # Feb 1st local
            (2, 5, 4, "2026-01-05 12:00", None),
        ],
    ),
}


def _value(v: Any) -> Any:
    if isinstance(v, str) and len(v) in (16, 19) and v[4] == "-" and v[10] == " ":
        return ts(v)
    return v


def load(execute: Callable[[str, list[tuple[Any, ...]]], None], placeholder: str) -> None:
    for table, (columns, rows) in TABLES.items():
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([placeholder] * len(columns))})"
        execute(sql, [tuple(_value(v) for v in row) for row in rows])


def ddl() -> str:
    return schema_sql() + "\n" + indexes_sql()


@pytest.fixture(scope="module")
def duckdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    import duckdb

    path = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute(ddl())
        load(con.executemany, "?")
    finally:
        con.close()
    return f"duckdb:///{path}"


@pytest.fixture(scope="module")
def pg_warehouse_url(postgres_url: str) -> str:
    import psycopg2

    con = psycopg2.connect(postgres_url)
    try:
        with con, con.cursor() as cur:
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
            cur.execute(ddl())
            load(cur.executemany, "%s")
    finally:
        con.close()
    return postgres_url


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.services)])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    url = request.getfixturevalue("duckdb_url" if request.param == "duckdb" else "pg_warehouse_url")
    return Warehouse(url)


def _sorted(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    return sorted(frame.rows(), key=repr)


def test_storyboard_usage_queries(warehouse: Warehouse) -> None:
    request = month_request(ALFA, 2026, 6)
    extracted: Mapping[str, pl.DataFrame] = warehouse.query_many(storyboard_usage.SPEC.queries, request.query_params())
    # Pushed down: nothing of institution 2, nothing outside June (local), only active users.
    assert _sorted(extracted["story_views"].select("user_id", "story_id", "viewed_at")) == [
        (1, 101, ts("2026-06-02 12:00")),
        (1, 102, ts("2026-06-03 12:00")),
        (2, 111, ts("2026-06-10 12:00")),
    ]
    assert extracted["storyboard_reactions"].select("user_id", "kind").rows() == [(2, "like")]
    assert sorted(extracted["users"]["id"].to_list()) == [1, 2]
    assert sorted(extracted["storyboards"]["id"].to_list()) == [10, 11]  # the deleted one included
    assert sorted(extracted["stories"]["id"].to_list()) == [101, 102, 111]

    out = storyboard_usage.SPEC.build(extracted, request)
    assert out.schema == storyboard_usage.SPEC.empty_frame().schema
    assert out.rows() == [
        ("Ética", "Ana Çarvalho", "ana@alfa.com", None, "12.345.678/0001-90", 0, 0, "Sim", "1/1",
         ts("2026-06-10 09:00"), ts("2026-06-10 09:00"), ts("2026-06-10 09:00")),
        ("Onboarding", "Ana Çarvalho", "ana@alfa.com", None, "12.345.678/0001-90", 1, 0, "Não", "0/2",
         ts("2026-06-05 09:00"), ts("2026-06-05 09:00"), None),
        ("Onboarding", "João da Silva", "joao@alfa.com", "123.456.789-00", None, 0, 0, "Sim", "2/2",
         ts("2026-06-03 09:00"), ts("2026-06-02 09:00"), ts("2026-06-03 09:00")),
    ]  # fmt: skip


def test_storyboard_usage_empty_month(warehouse: Warehouse) -> None:
    request = month_request(ALFA, 2026, 9)
    extracted = warehouse.query_many(storyboard_usage.SPEC.queries, request.query_params())
    assert extracted["story_views"].height == 0 and extracted["users"].height == 0
    out = storyboard_usage.SPEC.build(extracted, request)
    assert out.height == 0 and out.schema == storyboard_usage.SPEC.empty_frame().schema


def test_course_catalog_queries(warehouse: Warehouse) -> None:
    # start_date=2026-01-01, end_date=2026-01-31 (inclusive) -> [Jan 1st 00:00, Feb 1st 00:00) local
    request = range_request(ALFA, datetime(2026, 1, 1), datetime(2026, 2, 1), options=URL_OPTIONS)
    extracted = warehouse.query_many(course_catalog.SPEC.queries, request.query_params())
    assert _sorted(extracted["course_views"].select("course_id", "viewed_at")) == [
        (1, ts("2026-01-01 03:00")),
        (1, ts("2026-02-01 02:59:59")),
    ]
    # enrolled_at OR completed_at in the period, each enrollment once
    assert _sorted(extracted["enrollments"].select("course_id", "enrolled_at", "completed_at")) == [
        (1, ts("2025-12-20 12:00"), ts("2026-01-10 12:00")),
        (1, ts("2026-01-02 12:00"), ts("2026-01-03 12:00")),
        (1, ts("2026-01-05 12:00"), None),
    ]
    assert sorted(extracted["courses"]["id"].to_list()) == [1, 2]
    assert sorted(extracted["schools"]["id"].to_list()) == [10, 20]
    assert extracted["course_schools"].height == 3

    out = course_catalog.SPEC.build(extracted, request)
    assert out.schema == course_catalog.SPEC.empty_frame().schema
    assert out.rows() == [
        (1, "Álgebra", "https://alfa.toolzz.com.br/course/1", "Publicado",
         "https://alfa.toolzz.com.br/admin/courses/1/edit?i=1", 2, 2, 2, day("2025-11-30"), "Ábaco, Escola Norte"),
        (2, "Rascunho", "https://alfa.toolzz.com.br/course/2", "Rascunho",
         "https://alfa.toolzz.com.br/admin/courses/2/edit?i=1", 0, 0, 0, None, "Escola Norte"),
    ]  # fmt: skip

    filtered = course_catalog.SPEC.build(
        extracted, range_request(ALFA, datetime(2026, 1, 1), datetime(2026, 2, 1), {"school_ids": [20]}, URL_OPTIONS)
    )
    assert filtered.rows() == out.rows()[:1]


@pytest.mark.services
def test_queries_hit_the_period_indexes_on_postgres(pg_warehouse_url: str) -> None:
    """With sequential scans disabled the event extracts must still plan, i.e. an
    (institution_id, time) index serves them."""
    import psycopg2

    from orchestration.warehouse.client import translate

    params = month_request(ALFA, 2026, 6).query_params()
    queries = {**storyboard_usage.SPEC.queries, **course_catalog.SPEC.queries}
    event_tables = ("story_views", "storyboard_reactions", "course_views", "enrollments")
    con = psycopg2.connect(pg_warehouse_url)
    try:
        with con.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            for name in event_tables:
                cur.execute("EXPLAIN " + translate(queries[name], "postgres"), params)
                plan = "\n".join(r[0] for r in cur.fetchall())
                assert "Seq Scan" not in plan, f"{name}:\n{plan}"
                assert "Index" in plan, f"{name}:\n{plan}"
    finally:
        con.close()
