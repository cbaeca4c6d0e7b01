"""Alembic environment of the request ledger.

Migrations always run on a connection handed in by
:func:`orchestration.ledger.migrate.upgrade` (``config.attributes["connection"]``),
which holds the migration lock; there is no offline (SQL script) mode.
"""

from __future__ import annotations

from alembic import context

from orchestration.ledger.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through a bare `alembic` command
    raise RuntimeError("run ledger migrations with `lxp-reports migrate` (orchestration.ledger.migrate.upgrade)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
