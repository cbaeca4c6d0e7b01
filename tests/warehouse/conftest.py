"""Warehouse generator fixtures: one tiny warehouse per session, a fixed clock, a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from orchestration.warehouse.generate import generate
from tests.services.postgres import postgres_db, postgres_url  # noqa: F401 - fixtures

# Mid-month, after the US DST change of November, so every institution has a partial current month.
NOW = datetime(2026, 11, 23, 15, 30, 0)


@pytest.fixture(scope="session")
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def tiny(now: datetime) -> dict[str, pl.DataFrame]:
    return generate("tiny", 42, now)
