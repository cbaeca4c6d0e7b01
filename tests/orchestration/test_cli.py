"""The `lxp-reports` CLI as users call it (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import jwt

from tests.ledger_rows import enqueue, routed

BIN = Path(sys.executable).parent / "lxp-reports"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def test_token_is_signed_with_the_configured_secret() -> None:
    proc = _run(
        "token",
        "--institution",
        "7",
        "--user",
        "42",
        "--privilege",
        "4",
        "--subdomain",
        "escola",
        env={"LXP_JWT_SECRET": "s3cr3t-for-tests-only-0123456789abcdef"},
    )
    assert proc.returncode == 0, proc.stderr
    claims = jwt.decode(proc.stdout.strip(), "s3cr3t-for-tests-only-0123456789abcdef", algorithms=["HS256"])
    assert claims["institutionId"] == 7 and claims["userId"] == 42 and claims["privilegio_id"] == 4
    assert claims["subdomain"] == "escola" and claims["exp"] > datetime.now(UTC).timestamp()


def test_generate_writes_a_deterministic_warehouse(tmp_path: Path) -> None:
    """Same seed and --as-of: every table of both DuckDB files is row-identical (the README's promise)."""
    import duckdb
    import polars as pl
    from polars.testing import assert_frame_equal

    from orchestration.warehouse.tables import sort_keys, table_schemas

    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    for out in (a, b):
        proc = _run("generate", "--scale", "tiny", "--seed", "7", "--as-of", "2026-11-23", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        assert "story_views" in proc.stdout and "as-of=2026-11-23T00:00:00Z" in proc.stdout
    left, right = (duckdb.connect(str(p), read_only=True) for p in (a, b))
    try:
        for table in table_schemas():
            order = ", ".join([*sort_keys(table), *table_schemas()[table]])
            x = pl.from_arrow(left.sql(f"SELECT * FROM {table} ORDER BY {order}").to_arrow_table())
            y = pl.from_arrow(right.sql(f"SELECT * FROM {table} ORDER BY {order}").to_arrow_table())
            assert_frame_equal(x, y)
            assert x.hash_rows().to_list() == y.hash_rows().to_list(), table
        assert left.execute("SELECT COUNT(*) FROM bookings").fetchone()[0] > 0
        # bookings run up to 30 days past the as-of instant (pending / queued ones)
        assert left.execute("SELECT MAX(scheduled_for) FROM bookings").fetchone()[0] > datetime(2026, 11, 23)
    finally:
        left.close()
        right.close()
    bad = _run("generate", "--scale", "tiny", "--as-of", "23/11/2026", "--out", str(tmp_path / "c.duckdb"))
    assert bad.returncode == 2 and "--as-of" in bad.stderr


def test_outbox_lists_and_retries_dead_notifications(tmp_path: Path) -> None:
    from orchestration.ledger import Ledger

    url = f"sqlite:///{tmp_path / 'outbox.sqlite'}"
    box = Ledger(url, max_attempts=1)
    box.migrate()
    enqueue(
        box,
        job_id="run-1",
        recipient_user_id=5,
        institution_id=1,
        subdomain="demo",
        report="catalog",
        status_of_job="failed",
    )
    (row,) = routed(box, datetime.now(UTC)).claim_due(datetime.now(UTC))
    box.deliveries.mark_failed(row.id, "receiver said 400", datetime.now(UTC), permanent=True)
    env = {"LXP_LEDGER_URL": url}
    listed = _run("outbox", "--status", "dead", env=env)
    assert listed.returncode == 0 and "run-1" in listed.stdout and "dead" in listed.stdout
    retried = _run("outbox", "retry", str(row.id), env=env)
    assert retried.returncode == 0, retried.stderr
    assert box.deliveries.get(row.id).state == "pending"


def test_up_refuses_to_start_without_a_warehouse(tmp_path: Path) -> None:
    proc = _run("up", "--port", "0", env={"LXP_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster")})
    assert proc.returncode == 2 and "lxp-reports generate" in proc.stderr


def test_service_hours_are_configurable_and_reach_the_builders(monkeypatch) -> None:
    import json

    from assets.reports.groups_usage import service_hours
    from assets.spec import Institution, ReportRequest
    from orchestration.defs.resources import resources_from_settings
    from orchestration.settings import Settings

    monkeypatch.setenv("LXP_SERVICE_HOURS", '{"0": ["09:00", "17:30"], "5": ["10:00", "12:00"]}')
    settings = Settings()
    options = resources_from_settings(settings)["options"].as_options()  # what a Dagster run sees
    assert options == json.loads(json.dumps(settings.report_options()))
    request = ReportRequest(Institution(1, "I", "i"), None, None, datetime.now(UTC), options=options)
    assert service_hours(request) == {0: (540, 1050), 5: (600, 720)}


def test_migrate_brings_the_ledger_to_head_once(tmp_path: Path) -> None:
    from orchestration.ledger import migrate

    env = {"LXP_HOME": str(tmp_path)}
    first = _run("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"ledger at revision {migrate.head()} (migrated)"
    again = _run("migrate", env=env)
    assert again.returncode == 0 and again.stdout.strip().endswith("(already up to date)")
    assert migrate.current_of(f"sqlite:///{tmp_path / 'outbox.sqlite'}") == migrate.head()
