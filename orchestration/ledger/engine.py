"""The one place a ledger database engine is built (SQLite or PostgreSQL).

Every process that touches the ledger — API replicas, the Dagster delivery
sensor, the CLI, the migrations — goes through :func:`create_engine`, so the
locking rules are the same everywhere:

* SQLite (the default, a file under ``$LXP_HOME``) runs in WAL mode and takes
  the write lock up front (``BEGIN IMMEDIATE``): a claim holds the lock from
  its first SELECT, so several processes can claim rows safely;
* PostgreSQL goes through psycopg2 with a pre-ping pool sized for the API's
  worker threads and a short connect timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

#: PostgreSQL connect timeout (libpq ``connect_timeout``, whole seconds): a LAN connect takes milliseconds.
CONNECT_TIMEOUT_SECONDS = 3


def engine_url(url: str) -> str:
    """Plain ``postgresql://`` means psycopg2 here (SQLAlchemy 2.1 would pick psycopg 3, not installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def is_sqlite(url: str) -> bool:
    return engine_url(url).startswith("sqlite")


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of sqlite3's lazy
        # BEGIN, so a claim holds the write lock from its first SELECT.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_engine(url: str) -> Engine:
    """An engine for the ledger at ``url`` (``sqlite:///...`` or ``postgresql://...``)."""
    url = engine_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # libpq waits for a TCP connect as long as the OS does (minutes for an unreachable host); every
    # async request and the readiness probe go through this pool. A ``connect_timeout`` in the URL wins.
    connect_args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args)
