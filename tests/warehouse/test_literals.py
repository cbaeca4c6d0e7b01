"""The ADBC path's client-side binding: every accepted value becomes one typed literal, nothing else is accepted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from orchestration.warehouse.client import inline, literal


@pytest.mark.parametrize(
    ("value", "sql"),
    [
        (None, "NULL"),
        (True, "TRUE"),
        (42, "42"),
        (-7, "-7"),
        (1.5, "CAST(1.5 AS DOUBLE PRECISION)"),
        (datetime(2026, 11, 1, 3, 0, 0, 120), "TIMESTAMP '2026-11-01 03:00:00.000120'"),
        (datetime(2026, 11, 1, 0, 0, tzinfo=timezone(timedelta(hours=-3))), "TIMESTAMP '2026-11-01 03:00:00'"),
        (date(2026, 2, 28), "DATE '2026-02-28'"),
        ("it's", "$p$it's$p$"),
        ([1, 2], "ARRAY[1, 2]"),
        ([], "'{}'"),
    ],
)
def test_literals(value: object, sql: str) -> None:
    assert literal(value) == sql


def test_text_containing_the_tag_gets_another_tag() -> None:
    out = literal("a $p$ b")
    tag = out[: out.index("$", 1) + 1]
    assert tag != "$p$" and out == f"{tag}a $p$ b{tag}" and "a $p$ b".count(tag) == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "nul\x00", Decimal("1.5"), object(), {"a": 1}])
def test_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        literal(bad)


def test_inline_replaces_names_not_casts_and_needs_every_value() -> None:
    sql = "SELECT CAST(x AS DATE)::text FROM t WHERE a = :a AND b > :b AND c = :a"
    assert inline(sql, {"a": 1, "b": datetime(2026, 1, 1, tzinfo=UTC)}) == (
        "SELECT CAST(x AS DATE)::text FROM t WHERE a = 1 AND b > TIMESTAMP '2026-01-01 00:00:00' AND c = 1"
    )
    with pytest.raises(KeyError, match=":b"):
        inline(sql, {"a": 1})
