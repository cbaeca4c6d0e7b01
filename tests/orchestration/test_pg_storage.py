"""The production profile's pooled PostgreSQL storage (``orchestration.pg_storage``) on a real server:
storage calls reuse one connection per engine, the process kind is visible to the server, the pool
survives a server restart, and ``pool: false`` is Dagster's unpooled storage again."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from orchestration.instance_config import postgres_profile
from orchestration.pg_storage import process_kind
from orchestration.settings import Settings
from tests.services.postgres import create_database, postgres_url, restart  # noqa: F401 - fixture

pytestmark = pytest.mark.services


def _sessions(server_url: str, database: str) -> int:
    con = psycopg2.connect(server_url)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,))
            return int(cur.fetchone()[0])
    finally:
        con.close()


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_url: str, pool: bool = True) -> tuple[str, str]:
    (tmp_path / "dagster.yaml").write_text(postgres_profile(Settings(), pool=pool), encoding="utf-8")
    url = create_database(server_url)
    monkeypatch.setenv("DAGSTER_PG_URL", url.replace("postgresql://", "postgresql+psycopg2://", 1))
    return str(tmp_path), url.rsplit("/", 1)[1]


def _calls(instance: dg.DagsterInstance, n: int) -> None:
    """Run-storage, event-log and schedule-storage calls, as the daemon and a run worker make them."""
    for _ in range(n):
        instance.get_runs(limit=1)
        instance.get_dynamic_partitions("institution")
        instance.all_instigator_state()


def test_storage_calls_reuse_pooled_connections(
    postgres_url,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, database = _home(tmp_path, monkeypatch, postgres_url)
    with dg.DagsterInstance.from_config(home) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"  # ensure_instance's check still holds
        instance.add_dynamic_partitions("institution", ["1", "2"])
        _calls(instance, 1)
        before = _sessions(postgres_url, database)
        _calls(instance, 30)
        assert _sessions(postgres_url, database) == before  # 90 calls, no new connection

        # A run worker rebuilds the instance from its ref: the same pooled storage class.
        assert instance.get_ref().storage_data.class_name == "PooledPostgresStorage"


def test_unpooled_storage_connects_per_call(
    postgres_url,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``pool: false``: Dagster's NullPool, one connection per call (what the pool saves)."""
    home, database = _home(tmp_path, monkeypatch, postgres_url, pool=False)
    with dg.DagsterInstance.from_config(home) as instance:
        _calls(instance, 1)
        before = _sessions(postgres_url, database)
        _calls(instance, 10)
        assert _sessions(postgres_url, database) - before >= 30


def test_the_server_sees_the_process_kind(
    postgres_url,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, database = _home(tmp_path, monkeypatch, postgres_url)
    with dg.DagsterInstance.from_config(home) as instance:
        _calls(instance, 1)
        con = psycopg2.connect(postgres_url)
        try:
            with con.cursor() as cur:
                cur.execute("SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = %s", (database,))
                names = {row[0] for row in cur.fetchall()}
        finally:
            con.close()
    assert names == {process_kind()}
    assert process_kind(["/venv/bin/dagster-daemon", "run"]) == "lxp-daemon"
    assert process_kind(["python", "-c", "from multiprocessing.spawn import spawn_main", "--multiprocessing-fork"]) == (
        "lxp-run"
    )


def test_pooled_connections_survive_a_server_restart(
    postgres_url,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A restart (or failover) cuts the pooled connections; the next call must not fail on the dead one."""
    home, _ = _home(tmp_path, monkeypatch, postgres_url)
    with dg.DagsterInstance.from_config(home) as instance:
        _calls(instance, 1)
        restart(postgres_url)
        _calls(instance, 1)
