"""Session-wide fixtures: an isolated LXP_HOME and a generated tiny warehouse."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test writes into ./var or reads a developer's DAGSTER_HOME."""
    home = tmp_path_factory.mktemp("lxp_home")
    old = {k: os.environ.get(k) for k in ("LXP_HOME", "DAGSTER_HOME")}
    os.environ["LXP_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir()
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def tiny_warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generator's `tiny` scale, seed 42, as a DuckDB file (built once per session)."""
    from orchestration.warehouse.generate import generate_warehouse

    path = tmp_path_factory.mktemp("warehouse") / "tiny.duckdb"
    generate_warehouse("tiny", 42, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_warehouse(tiny_warehouse_path: Path) -> str:
    return f"duckdb:///{tiny_warehouse_path}"
