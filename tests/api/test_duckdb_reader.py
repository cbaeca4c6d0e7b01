"""SharedDuckDB: per-thread cursors on one attached file, and a renamed-over file is picked up."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from api.duckdb_reader import SharedDuckDB
from orchestration.warehouse.client import Warehouse


def _write(path: Path, value: int) -> None:
    """Build aside and rename over, as orchestration.warehouse.load does."""
    tmp = path.with_name(path.name + ".tmp")
    con = duckdb.connect(str(tmp))
    con.execute("CREATE TABLE t AS SELECT range AS i, ? AS v FROM range(1000)", [value])
    con.close()
    os.replace(tmp, path)


def test_replaced_file_is_attached_and_the_old_one_closed(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    _write(path, 1)
    reader = SharedDuckDB(str(path))
    wh = Warehouse(f"duckdb:///{path}", duckdb_connect=reader)
    assert wh.query("SELECT max(v) AS v FROM t")["v"][0] == 1
    first = reader._current
    _write(path, 2)
    assert wh.query("SELECT max(v) AS v FROM t")["v"][0] == 2
    assert first is not None and first.closed and reader._current is not first
    # A plain connection of this process sees the new file too (no stale instance cache).
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT max(v) FROM t").fetchone()[0] == 2
    reader.close()


def test_threads_query_concurrently_through_their_own_cursors(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    _write(path, 3)
    reader = SharedDuckDB(str(path))
    wh = Warehouse(f"duckdb:///{path}", duckdb_connect=reader)

    def work(k: int) -> int:
        return int(wh.query("SELECT sum(i) + :k AS s FROM t WHERE v = 3", {"k": k})["s"][0])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(400)))
    assert results == [499500 + k for k in range(400)]
    assert reader._current is not None and reader._current.users == 0
    reader.close()


def test_missing_file_raises_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    reader = SharedDuckDB(str(path))
    wh = Warehouse(f"duckdb:///{path}", duckdb_connect=reader)
    with pytest.raises(FileNotFoundError):
        wh.query("SELECT 1 AS x")
    _write(path, 4)
    assert wh.query("SELECT max(v) AS v FROM t")["v"][0] == 4
    reader.close()
