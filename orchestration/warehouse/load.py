"""Bulk-load generated frames into DuckDB or PostgreSQL (same DDL, same rows).

Both loaders create the schema, insert every table sorted by
``(institution_id, <time>)`` and only then build indexes.sql (cheaper than
maintaining indexes row by row). Both are all-or-nothing for readers: DuckDB is
built in a temporary file renamed over the target; PostgreSQL loads in one
transaction (DDL is transactional there), then ANALYZEs.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import polars as pl

from orchestration.warehouse.client import duckdb_path
from orchestration.warehouse.tables import empty_frame, indexes_sql, schema_sql, sort_keys, table_schemas

COPY_CHUNK_ROWS = 500_000
_POSTGRES_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg2://")


def _ordered(frames: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    unknown = set(frames) - set(table_schemas())
    if unknown:
        raise ValueError(f"frames for tables not in schema.sql: {sorted(unknown)}")
    return {
        t: frames[t].sort(sort_keys(t), maintain_order=True) if t in frames else empty_frame(t) for t in table_schemas()
    }


def load_duckdb(frames: Mapping[str, pl.DataFrame], path: str | Path, *, replace: bool = True) -> Path:
    """Write a complete DuckDB warehouse at `path` (built aside, then atomically renamed)."""
    return load_duckdb_chunks([frames], path, replace=replace)


def load_duckdb_chunks(chunks: Iterable[Mapping[str, pl.DataFrame]], path: str | Path, *, replace: bool = True) -> Path:
    """``load_duckdb`` for a warehouse that arrives in chunks of institutions (``generate_chunks``):
    each chunk is inserted and dropped before the next is drawn, indexes are built once at the end."""
    import duckdb

    target = Path(duckdb_path(str(path))).resolve()
    if target.exists() and not replace:
        raise FileExistsError(f"{target} exists (replace=False)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    for leftover in (tmp, Path(f"{tmp}.wal")):
        leftover.unlink(missing_ok=True)
    try:
        con = duckdb.connect(str(tmp))
        con.execute("SET enable_progress_bar = false")  # keep CLI output clean
        try:
            con.execute(schema_sql())
            for frames in chunks:
                for table, frame in _ordered(frames).items():
                    if frame.height == 0:
                        continue
                    con.register("_load_frame", frame.to_arrow())
                    cols = ", ".join(frame.columns)
                    con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _load_frame")
                    con.unregister("_load_frame")
            con.execute(indexes_sql())
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            leftover.unlink(missing_ok=True)
    return target


def _csv_chunks(frame: pl.DataFrame) -> Iterator[io.BytesIO]:
    """CSV in bounded chunks (memory stays flat for tens of millions of rows)."""
    for offset in range(0, frame.height, COPY_CHUNK_ROWS):
        buf = io.BytesIO()
        frame.slice(offset, COPY_CHUNK_ROWS).write_csv(
            buf, include_header=False, null_value=r"\N", datetime_format="%Y-%m-%d %H:%M:%S%.6f"
        )
        buf.seek(0)
        yield buf


def load_postgres(frames: Mapping[str, pl.DataFrame], url: str) -> None:
    """(Re)create the warehouse tables in the database at `url` and COPY the frames in, in one transaction."""
    load_postgres_chunks([frames], url)


def load_postgres_chunks(chunks: Iterable[Mapping[str, pl.DataFrame]], url: str) -> None:
    """``load_postgres`` for a warehouse that arrives in chunks of institutions (still one transaction)."""
    import psycopg2

    dsn = url.replace("postgresql+psycopg2://", "postgresql://")
    con = psycopg2.connect(dsn)
    try:
        with con, con.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS " + ", ".join(table_schemas()) + " CASCADE")
            cur.execute(schema_sql())
            for frames in chunks:
                for table, frame in _ordered(frames).items():
                    cols = ", ".join(frame.columns)
                    sql = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
                    for buf in _csv_chunks(frame):
                        cur.copy_expert(sql, buf)
            cur.execute(indexes_sql())
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("ANALYZE " + ", ".join(table_schemas()))
    finally:
        con.close()


def is_postgres_url(out: str) -> bool:
    return out.startswith(_POSTGRES_PREFIXES)


def load(frames: Mapping[str, pl.DataFrame], out: str) -> None:
    """Load into `out`: a postgresql:// URL, or a DuckDB path / duckdb:/// URL."""
    load_chunks([frames], out)


def load_chunks(chunks: Iterable[Mapping[str, pl.DataFrame]], out: str) -> None:
    """``load`` for a warehouse that arrives in chunks of institutions (``generate_chunks``)."""
    if is_postgres_url(out):
        load_postgres_chunks(chunks, out)
    else:
        load_duckdb_chunks(chunks, out)
