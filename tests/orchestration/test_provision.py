"""``lxp-reports init`` on a real PostgreSQL server and a moto S3 endpoint: it creates the
databases and buckets the settings name, and a second run finds them all (idempotent)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.services.postgres import postgres_url  # noqa: F401 - fixture
from tests.services.s3 import s3_client, s3_endpoint  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]


def _db(server_url: str, name: str, scheme: str = "postgresql") -> str:
    return urlunsplit(urlsplit(server_url)._replace(scheme=scheme, path=f"/{name}"))


@pytest.mark.services
def test_init_creates_missing_databases_and_buckets_once(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    s3_endpoint: str,  # noqa: F811
    s3_client: Any,  # noqa: F811
) -> None:
    tag = uuid.uuid4().hex[:8]
    names = {"dagster": f"dagster_{tag}", "lxp": f"lxp_{tag}", "warehouse": f"warehouse_{tag}"}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LXP_", "DAGSTER_"))},
        "PYTHONPATH": str(ROOT),
        "LXP_HOME": str(tmp_path),
        "DAGSTER_PG_URL": _db(postgres_url, names["dagster"], "postgresql+psycopg2"),
        "LXP_LEDGER_URL": _db(postgres_url, names["lxp"]),
        "LXP_WAREHOUSE_URL": _db(postgres_url, names["warehouse"]),
        "LXP_STORAGE": f"s3://reports-{tag}/reports",
        "LXP_COMPUTE_LOGS": f"s3://logs-{tag}/compute-logs",
        "LXP_S3_ENDPOINT_URL": s3_endpoint,
    }

    def init() -> list[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestration.cli", "init"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    first = init()
    assert [line.split(":")[-1].strip() for line in first] == ["created"] * 5, first
    for name in names.values():
        assert any(f"database {name!r}" in line for line in first), (name, first)
    buckets = {b["Name"] for b in s3_client.list_buckets()["Buckets"]}
    assert {f"reports-{tag}", f"logs-{tag}"} <= buckets
    second = init()
    assert [line.split(":")[-1].strip() for line in second] == ["exists"] * 5, second
