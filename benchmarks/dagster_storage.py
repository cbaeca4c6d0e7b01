"""Dagster instance storage for the benchmarks: the embedded SQLite default or the production profile's PostgreSQL.

Shared by ``monthly_backfill.py`` and ``partition_status.py`` so both measure the same instance
configuration (``orchestration.instance_config.postgres_profile``) rather than two hand-written copies.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestration.settings import Settings


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dagster-storage {sqlite,postgres}`` and ``--dagster-pg-url``, the same in every benchmark."""
    parser.add_argument(
        "--dagster-storage",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="Dagster run/event storage: the embedded SQLite files, or PostgreSQL (a fresh database on --dagster-pg-url)",
    )
    parser.add_argument("--dagster-pg-url", default="", help="postgresql://user@host:port/db of a server to use")
    parser.add_argument(
        "--dagster-pg-pool",
        choices=["on", "off"],
        default="on",
        help="the profile's pooled connections (orchestration.pg_storage), or off: Dagster's NullPool, as before",
    )


def dagster_postgres_home(home: Path, server_url: str, pool: bool = True) -> str:
    """Dagster instance storage in a fresh database on ``server_url`` (the production profile's storage,
    everything else as embedded): ``dagster.yaml`` is written before ``up``, which never overwrites it.

    ``pool=False`` sets the storage's ``pool: false`` (Dagster's ``NullPool``: a new connection per storage
    call), to measure what the pool saves. Returns the ``postgresql+psycopg2://`` URL of the new database, for ``$DAGSTER_PG_URL`` (the profile
    reads it from there, as in production)."""
    import uuid

    import psycopg2

    from orchestration.instance_config import postgres_profile

    if not server_url:
        raise SystemExit("--dagster-storage postgres needs --dagster-pg-url postgresql://user@host:port/db")
    name = f"lxp_bench_{uuid.uuid4().hex[:10]}"
    con = psycopg2.connect(server_url.replace("postgresql+psycopg2://", "postgresql://"))
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    con.close()
    base = server_url.replace("postgresql+psycopg2://", "postgresql://").rsplit("/", 1)[0]
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(postgres_profile(Settings(), pool=pool), encoding="utf-8")
    return f"{base.replace('postgresql://', 'postgresql+psycopg2://', 1)}/{name}"
