"""A small report frame with every column kind and the awkward values."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from assets.spec import Column

COLUMNS: tuple[Column, ...] = (
    Column("name", "Nome Completo (Usuário)", csv_header="Nome do usuário"),
    Column("formula", "Fórmula?"),
    Column("likes", "Curtidas", "int"),
    Column("score", "Nota", "float"),
    Column("active", "Ativo", "bool"),
    Column("born", "Data de nascimento", "date"),
    Column("seen", "Último acesso", "datetime", width=21),
)

ROWS = [
    (
        "João Gonçalves Araújo",
        '=HYPERLINK("http://x","y")',
        3,
        1.5,
        True,
        date(2024, 2, 29),
        datetime(2024, 3, 1, 8, 5, 59),
    ),
    ("Márcia Conceição", "+55 11 9999-0000", None, None, False, None, None),
    (None, "-10", -7, -0.25, None, date(1999, 12, 31), datetime(2023, 12, 31, 23, 59)),
    ("  Íris <Sá> & Cia  ", "@SUM(A1)", 0, 1e20, True, date(2026, 6, 1), datetime(2026, 6, 1, 0, 0)),
    ("tab\tand\nnewline\x01ctrl", "", 42, 3.0, False, date(1970, 1, 1), datetime(1970, 1, 1, 12, 30)),
]


@pytest.fixture
def columns() -> tuple[Column, ...]:
    return COLUMNS


@pytest.fixture
def frame() -> pl.DataFrame:
    schema = {
        "name": pl.String,
        "formula": pl.String,
        "likes": pl.Int64,
        "score": pl.Float64,
        "active": pl.Boolean,
        "born": pl.Date,
        "seen": pl.Datetime("us"),
    }
    return pl.DataFrame(ROWS, schema=schema, orient="row")


def numbered(rows: int) -> pl.DataFrame:
    """A frame whose row order is visible in every column (for sheet splits)."""
    return pl.DataFrame(
        {
            "name": [f"Usuário {i}" for i in range(rows)],
            "formula": [f"={i}" for i in range(rows)],
            "likes": list(range(rows)),
            "score": [i / 2 for i in range(rows)],
            "active": [i % 2 == 0 for i in range(rows)],
            "born": [date(2024, 1, 1 + i % 28) for i in range(rows)],
            "seen": [datetime(2024, 1, 1, i % 24, i % 60) for i in range(rows)],
        },
        schema={
            "name": pl.String,
            "formula": pl.String,
            "likes": pl.Int64,
            "score": pl.Float64,
            "active": pl.Boolean,
            "born": pl.Date,
            "seen": pl.Datetime("us"),
        },
    )
