"""Bringing a ledger database to the current schema, safely from many processes at once.

Every API replica, the Dagster delivery sensor and ``lxp-reports migrate`` call
:func:`upgrade` at start-up. It is idempotent (a database already at head costs
one SELECT) and serialized: on PostgreSQL a transaction-scoped advisory lock,
on SQLite the ``BEGIN IMMEDIATE`` write lock of :mod:`orchestration.ledger.engine`,
is held around the whole migration, and both databases run the DDL inside
that transaction, so processes starting together migrate exactly once and the
others find the result. The migration scripts ship inside the package
(``orchestration/ledger/migrations``), so an installed wheel can migrate.
"""

from __future__ import annotations

import functools
import zlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from orchestration.ledger.engine import create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number works; derived from a name so it reads as what it locks.
ADVISORY_LOCK_ID = zlib.crc32(b"lxp-reports ledger migrations")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(target: Engine | str, revision: str = "head") -> bool:
    """Migrate to ``revision``; returns True when this call changed the schema."""
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        if revision == "head" and current(engine) == head():
            return False
        with engine.connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(alembic_config(conn), revision)
            return MigrationContext.configure(conn).get_current_revision() != before
    finally:
        if isinstance(target, str):
            engine.dispose()


def current_of(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return current(engine)
    finally:
        engine.dispose()
