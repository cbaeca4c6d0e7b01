"""Read access to the warehouse, DuckDB (embedded) or PostgreSQL/Redshift.

Queries are written once with ``:name`` parameters and translated to the
engine's paramstyle here, so report modules hold portable SQL only. DuckDB is
always opened READ_ONLY: it allows one read-write process, and report runs and
the API read in parallel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import polars as pl

_PARAM = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


def translate(sql: str, style: str) -> str:
    """``:name`` -> ``$name`` (duckdb) or ``%(name)s`` (psycopg2)."""
    if style == "duckdb":
        return _PARAM.sub(lambda m: f"${m.group(1)}", sql)
    escaped = sql.replace("%", "%%")
    return _PARAM.sub(lambda m: f"%({m.group(1)})s", escaped)


def duckdb_path(url: str) -> str:
    return url.removeprefix("duckdb:///").removeprefix("duckdb://")


class Warehouse:
    """A thin, engine-agnostic query runner returning Polars frames."""

    def __init__(self, url: str, duckdb_connect: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        """``duckdb_connect`` lets the Dagster resource hand in dagster-duckdb's connection factory."""
        self.url = url
        self.engine = "duckdb" if url.startswith("duckdb:") else "postgres"
        self._duckdb_connect = duckdb_connect

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if self.engine == "duckdb" and self._duckdb_connect is not None:
            with self._duckdb_connect() as con:
                yield con
            return
        if self.engine == "duckdb":
            import duckdb

            con = duckdb.connect(duckdb_path(self.url), read_only=True)
        else:
            import psycopg2

            con = psycopg2.connect(self.url.replace("postgresql+psycopg2://", "postgresql://"))
            con.set_session(readonly=True, autocommit=True)
        try:
            yield con
        finally:
            con.close()

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        return self.query_many({"q": sql}, params)["q"]

    def query_many(
        self, queries: Mapping[str, str], params: Mapping[str, Any] | None = None
    ) -> dict[str, pl.DataFrame]:
        """Run several queries on one connection (one open per report, not per query)."""
        params = dict(params or {})
        out: dict[str, pl.DataFrame] = {}
        with self._connect() as con:
            for name, sql in queries.items():
                used = {k: v for k, v in params.items() if re.search(rf":{k}\b", sql)}
                if self.engine == "duckdb":
                    out[name] = con.sql(translate(sql, "duckdb"), params=used).pl()  # duckdb 2: no .pl() on execute()
                else:
                    with con.cursor() as cur:
                        cur.execute(translate(sql, "postgres"), used)
                        cols = [d[0] for d in cur.description]
                        rows = cur.fetchall()
                    out[name] = pl.DataFrame(rows, schema=cols, orient="row", infer_schema_length=None)
        return out

    def ping(self) -> None:
        self.query("SELECT 1 AS ok")
