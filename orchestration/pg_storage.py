"""Dagster's PostgreSQL storage with a connection pool in every process (the production profile's ``storage``).

Why: ``dagster_postgres`` opens every storage engine with SQLAlchemy's ``NullPool`` ("to prevent accumulating
connections per DagsterInstance"), so each storage call outside the webserver — every event a run writes,
every run-queue poll, heartbeat and sensor read of the daemon — connects anew: PostgreSQL forks a backend,
authenticates it and warms its catalog caches for one or two statements. Measured on the 1,000-institution
monthly backfill (docs/benchmarks.md, "Where the PostgreSQL server's CPU goes"): 27,317 sessions for 5,000
partitions, ≈ 4 ms of server CPU each against ≈ 0.06 ms for a statement on an open connection, i.e. most of
the server's CPU was connection set-up, not statements. Dagster itself pools only in the webserver
(``optimize_for_webserver``: a ``QueuePool`` of one connection per engine); this class does the same in every
process that loads the instance (daemon, code servers, run workers), with a ping at checkout so that
a connection cut by a server restart is replaced instead of failing the call (the webserver keeps Dagster's
own engines, without the ping, which it sets up itself).

Same tables, statements and migrations as ``DagsterPostgresStorage`` (it is a subclass); only the engines'
pooling changes, and ``pool: false`` gives Dagster's ``NullPool`` back. Every connection also carries an
``application_name`` naming the process kind (``lxp-daemon``, ``lxp-run``, ...), so ``pg_stat_activity`` and
the server's log tell the stack's processes apart (used by ``benchmarks/pg_server_profile.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from dagster import Field
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_config, pg_url_from_config
from sqlalchemy.engine import make_url

#: Seconds after which a pooled connection is replaced (Dagster's webserver default for ``--db-pool-recycle``
#: is one hour); also bounds how long a connection outlives a server-side change such as a password rotation.
POOL_RECYCLE_SECONDS = 3600
#: Connections opened beyond the pooled one while more threads of one process use the storage at once (the
#: daemon's threads); they are closed when returned, as every connection was before.
POOL_MAX_OVERFLOW = 10


def process_kind(argv: list[str] | None = None) -> str:
    """A short name of this process for ``application_name``, from its command line (why: a backend's
    client is otherwise only a TCP port)."""
    line = " ".join(argv if argv is not None else sys.argv)
    for needle, name in (
        ("dagster-daemon", "lxp-daemon"),
        ("dagster_daemon", "lxp-daemon"),
        ("dagster-webserver", "lxp-webserver"),
        ("dagster_webserver", "lxp-webserver"),
        ("execute_run", "lxp-run"),
        ("warm_worker", "lxp-run"),
        ("multiprocessing", "lxp-run"),  # a run started by a code server through multiprocessing's spawn
        ("execute_step", "lxp-step"),
        ("grpc", "lxp-code-server"),
    ):
        if needle in line:
            return name
    return "lxp-other"


class PooledPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` whose run, event-log and schedule engines each keep one open connection
    (``pool: true``, the default) instead of connecting for every call. See the module docstring for why."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
        pool: bool = True,
    ) -> None:
        super().__init__(with_application_name(postgres_url), should_autocreate_tables, inst_data, token_provider)
        self.pool = pool
        if pool:
            for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
                storage._engine.dispose()
                # The engine Dagster's ``optimize_for_webserver`` swaps in (one pooled connection, recycled,
                # overflow for concurrent threads), plus a ping at checkout: a pooled connection can be dead
                # (server restart, failover, idle timeout), and a storage call failing on it would fail a
                # run's event write, where a fresh connection per call had simply reconnected.
                storage._engine = create_pg_engine(
                    storage.postgres_url,
                    token_provider,
                    isolation_level="AUTOCOMMIT",
                    pool_size=1,
                    max_overflow=POOL_MAX_OVERFLOW,
                    pool_recycle=POOL_RECYCLE_SECONDS,
                    pool_pre_ping=True,
                )

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        base = pg_config()
        assert isinstance(base, Mapping)  # Dagster's PostgreSQL fields, a dict of Fields
        return {
            **base,
            "pool": Field(
                bool,
                is_required=False,
                default_value=True,
                description="Keep one open connection per storage engine and process (false: Dagster's NullPool)",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
            pool=config_value.get("pool", True),
        )


def with_application_name(postgres_url: str) -> str:
    """The URL with ``application_name`` set to this process's kind (unless it names one already): a libpq
    parameter, so it costs no statement, and the webserver's re-created engines keep it."""
    url = make_url(postgres_url)
    if "application_name" in url.query:
        return postgres_url
    return url.update_query_dict({"application_name": process_kind()}).render_as_string(hide_password=False)
