"""Fixtures of the Stift-style report tests: a small hand-made core and a DuckDB
warehouse built from it with ``generate_stift`` (independent of the core generator)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from orchestration.warehouse.generate_stift import generate_stift
from orchestration.warehouse.scales import SCALES
from orchestration.warehouse.tables import conform, schema_sql, table_schemas
from tests.services.postgres import create_database, postgres_url  # noqa: F401  (session fixture)

NOW = datetime(2026, 11, 23, 15, 30)
SEED = 7

INSTITUTIONS = [
    (1, "Colégio Conceição", "conceicao", "America/Sao_Paulo"),
    (2, "Escola Amazônia", "amazonia", "America/Manaus"),
]


def tiny_core(students: int = 40, teachers: int = 4, admins: int = 2) -> dict[str, pl.DataFrame]:
    """Institutions, schools and users, written out by hand (no dependency on generate.py)."""
    institutions = pl.DataFrame(INSTITUTIONS, schema=["id", "name", "subdomain", "timezone"], orient="row")
    schools = pl.DataFrame(
        [(10, 1, "Escola Central"), (11, 1, "Unidade Jardim"), (20, 2, "Escola Rio Negro")],
        schema=["id", "institution_id", "name"],
        orient="row",
    )
    rows = []
    uid = 0
    for inst, *_ in INSTITUTIONS:
        for priv, count in ((4, students), (3, teachers), (2, admins)):
            for k in range(count):
                uid += 1
                created = NOW - timedelta(days=500 - 11 * k)  # some created inside the window
                deleted = NOW - timedelta(days=90) if priv == 4 and k % 13 == 5 else None
                blocked = NOW - timedelta(days=30) if priv == 4 and k % 17 == 3 else None
                first, last = (
                    ("Aluno", "Conceição")
                    if priv == 4
                    else (("Profª", "Gonçalves") if priv == 3 else ("Admin", "Simões"))
                )
                rows.append(
                    (
                        uid,
                        inst,
                        f"00000000-0000-4000-8000-{uid:012d}",
                        f"EXT{uid}",
                        f"{first} {k}",
                        last,
                        f"{first} {k} {last}",
                        f"u{uid}@example.com.br",
                        None,
                        None,
                        priv,
                        created,
                        blocked,
                        deleted,
                    )
                )
    users = pl.DataFrame(
        rows,
        schema=list(table_schemas()["users"]),
        orient="row",
    )
    return {
        "institutions": conform("institutions", institutions),
        "schools": conform("schools", schools),
        "users": conform("users", users),
    }


@pytest.fixture(scope="session")
def core() -> dict[str, pl.DataFrame]:
    return tiny_core()


@pytest.fixture(scope="session")
def stift_frames(core: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return generate_stift(core, SCALES["tiny"], SEED, NOW)


@pytest.fixture(scope="session")
def stift_warehouse(tmp_path_factory: pytest.TempPathFactory, core, stift_frames) -> str:
    """A DuckDB file from schema.sql holding the hand-made core + generated Stift tables."""
    path: Path = tmp_path_factory.mktemp("stift") / "stift.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute(schema_sql())
        for name, frame in {**core, **stift_frames}.items():
            con.register("incoming", frame.to_arrow())
            con.execute(f"INSERT INTO {name} SELECT * FROM incoming")
            con.unregister("incoming")
    finally:
        con.close()
    return f"duckdb:///{path}"


@pytest.fixture(scope="session")
def stift_pg_warehouse(postgres_url: str, core, stift_frames) -> str:  # noqa: F811
    """The same data in a private database of a real PostgreSQL server."""
    import psycopg2
    from psycopg2.extras import execute_values

    url = create_database(postgres_url)
    con = psycopg2.connect(url)
    try:
        with con, con.cursor() as cur:
            cur.execute(schema_sql())
            for name, frame in {**core, **stift_frames}.items():
                cols = ", ".join(frame.columns)
                execute_values(cur, f"INSERT INTO {name} ({cols}) VALUES %s", frame.rows(), page_size=1000)
    finally:
        con.close()
    return url
