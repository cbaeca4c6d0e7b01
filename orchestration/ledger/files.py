"""Known files: the newest finished report file the API knows per cache key.

Learned from a Dagster lookup or from a run the API launched or joined, so a
cache hit is answered without asking Dagster; a miss or an expired entry falls
back to Dagster, which may know a newer file (e.g. a UI run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orchestration.ledger.records import insert_ignoring_conflict, naive_utc
from orchestration.ledger.retry import retry_once
from orchestration.ledger.schema import report_files


@dataclass(frozen=True)
class KnownFile:
    """A finished report file for a cache key (``produced_at`` aware UTC)."""

    cache_key: str
    storage_key: str
    filename: str
    rows: int | None
    produced_at: datetime
    run_id: str


class Files:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @retry_once
    def known_file(self, cache_key: str) -> KnownFile | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(report_files).where(report_files.c.cache_key == cache_key)).first()
        if row is None:
            return None
        m = row._mapping
        rows = m["rows"]
        return KnownFile(
            m["cache_key"],
            m["storage_key"],
            m["filename"],
            None if rows is None else int(rows),
            m["produced_at"].replace(tzinfo=UTC),
            m["run_id"],
        )

    @retry_once
    def remember_file(self, file: KnownFile) -> None:
        """Keep ``file`` for its cache key unless a newer one is already known."""
        c = report_files.c
        values = dict(
            cache_key=file.cache_key,
            storage_key=file.storage_key,
            filename=file.filename,
            rows=file.rows,
            produced_at=naive_utc(file.produced_at),
            run_id=file.run_id,
        )
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(report_files)
                .where(c.cache_key == file.cache_key, c.produced_at <= values["produced_at"])
                .values(**values)
            ).rowcount
            if updated == 0:
                # Either a newer file is known (nothing to do) or none is: insert, and if
                # another process remembered one at the same moment, either is a valid file.
                insert_ignoring_conflict(conn, report_files, values)
