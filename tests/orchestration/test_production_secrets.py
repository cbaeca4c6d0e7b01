"""Production refuses weak secrets: the rule (``Settings.secret_problems``) and the entry points
that apply it — ``lxp-reports up --profile production`` (with the state services configured) and
the Dagster code server under ``LXP_ENV=production``. The API process: tests/api/test_production_secrets.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestration import topology
from orchestration.settings import MIN_SECRET_BYTES, Settings
from orchestration.topology import Layout
from tests.e2e.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
STRONG = "s" * MIN_SECRET_BYTES
# Production-shaped state: nothing listens there, the preflight refuses before connecting to any of it.
STATE = {
    "DAGSTER_PG_URL": "postgresql+psycopg2://u@127.0.0.1:1/dagster",
    "LXP_LEDGER_URL": "postgresql://u@127.0.0.1:1/lxp",
    "LXP_WAREHOUSE_URL": "postgresql://u@127.0.0.1:1/warehouse",
    "LXP_STORAGE": "s3://reports/lxp",
    "LXP_COMPUTE_LOGS": "s3://dagster-logs/compute",
    "LXP_RATE_LIMIT_STORAGE": "redis://127.0.0.1:1/0",
}


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LXP_", "DAGSTER_"))},
        "PYTHONPATH": str(ROOT),
        "LXP_HOME": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        **extra,
    }


def test_every_unset_default_or_short_secret_is_named() -> None:
    defaults = Settings(notify_url="https://platform.example/hook")
    assert defaults.secret_problems() == [
        "LXP_JWT_SECRET is the built-in development default (published in the source)",
        "LXP_LINK_SECRET is the built-in development default (published in the source)",
        "LXP_NOTIFY_SECRET is the built-in development default (published in the source)",
    ]
    weak = Settings(jwt_secret="", link_secret="x" * (MIN_SECRET_BYTES - 1), notify_url="https://h", notify_secret="")
    assert weak.secret_problems() == [
        "LXP_JWT_SECRET is unset",
        f"LXP_LINK_SECRET is {MIN_SECRET_BYTES - 1} bytes; at least {MIN_SECRET_BYTES} are required",
        "LXP_NOTIFY_SECRET is unset",
    ]
    # Bytes, not characters: 16 two-byte characters are 32 bytes.
    assert Settings(jwt_secret="é" * 16, link_secret=STRONG).secret_problems() == []


def test_which_secrets_are_required_depends_on_what_is_on() -> None:
    # No webhook: the notify secret signs nothing. RS256 only: the HS256 secret verifies nothing.
    assert Settings(jwt_secret=STRONG, link_secret=STRONG).secret_problems() == []
    rs256 = Settings(jwt_algorithms="RS256", link_secret=STRONG)
    assert rs256.secret_problems() == []
    assert Settings(jwt_algorithms="rs256, hs256", link_secret=STRONG).secret_problems() == [
        "LXP_JWT_SECRET is the built-in development default (published in the source)"
    ]
    # The link secret is always required (a switch to local storage must not sign with a published key).
    assert Settings(jwt_secret=STRONG).secret_problems() == [
        "LXP_LINK_SECRET is the built-in development default (published in the source)"
    ]


def test_only_production_refuses() -> None:
    assert Settings().env == "development" and Settings().production_problems() == []
    assert len(Settings(env="production").production_problems()) == 2
    assert Settings(env="production", jwt_secret=STRONG, link_secret=STRONG).production_problems() == []


def test_the_production_profile_runs_its_children_with_lxp_env_production(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert topology.environment("production", settings, Layout(), {})["LXP_ENV"] == "production"
    assert "LXP_ENV" not in topology.environment("embedded", settings, Layout(), {})


def test_the_preflight_lists_secrets_with_the_state_problems() -> None:
    settings = Settings(ledger_url="sqlite:///x.db", notify_url="https://h")
    problems = topology.production_problems(settings, {}, api_replicas=1)
    assert any(p.startswith("LXP_LEDGER_URL") for p in problems)
    assert [p.split()[0] for p in problems if "SECRET" in p.split()[0]] == [
        "LXP_JWT_SECRET",
        "LXP_LINK_SECRET",
        "LXP_NOTIFY_SECRET",
    ]


def test_up_production_exits_2_listing_the_unsafe_secrets_before_starting_anything(tmp_path: Path) -> None:
    env = _clean_env(
        tmp_path,
        **STATE,
        LXP_LINK_SECRET="too-short",
        LXP_NOTIFY_URL="http://127.0.0.1:1/hook",
    )
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "up", "--profile", "production", "--api-replicas", "2"]
        + ["--port", str(port), "--dagster-port", str(free_port()), "--code-server-port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert lines[0] == "not a production topology:"
    assert [line.split()[0] for line in lines[1:]] == ["LXP_JWT_SECRET", "LXP_LINK_SECRET", "LXP_NOTIFY_SECRET"]
    assert "LXP_LINK_SECRET is 9 bytes" in proc.stderr
    # Nothing started, nothing written: no URLs printed, no Dagster instance file.
    assert "Dagster UI" not in proc.stdout and not (tmp_path / "dagster" / "dagster.yaml").exists()


def test_the_code_server_refuses_to_start_in_production_with_default_secrets(tmp_path: Path) -> None:
    env = _clean_env(tmp_path, LXP_ENV="production")
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "api", "grpc", "-m", "orchestration.definitions"]
        + ["--location-name", topology.LOCATION_NAME, "-h", "127.0.0.1", "-p", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Dagster code location: refusing to start with LXP_ENV=production:" in proc.stderr
    assert "LXP_JWT_SECRET is the built-in development default" in proc.stderr
    assert "Traceback" not in proc.stderr
