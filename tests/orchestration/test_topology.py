"""The process list of each `up` profile, the production preflight, the production
instance (PostgreSQL storage + S3 compute logs) and the production workspace file.
The topology running for real is tests/topology/test_production.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestration import cli, topology
from orchestration.instance_config import postgres_profile
from orchestration.settings import Settings
from orchestration.topology import PRODUCTION_WORKSPACE, Layout, processes, production_problems

PRODUCTION_ENV = {
    "LXP_LEDGER_URL": "postgresql://u@db:5432/requests",
    "LXP_WAREHOUSE_URL": "postgresql://u@warehouse:5439/lxp",
    "LXP_STORAGE": "s3://reports/lxp",
    "LXP_COMPUTE_LOGS": "s3://dagster-logs/compute",
    "LXP_RATE_LIMIT_STORAGE": "redis://redis:6379/0",
    # Production also refuses published or short secrets (tests/orchestration/test_production_secrets.py).
    "LXP_JWT_SECRET": "topology-test-jwt-secret-0123456789abcdef",
    "LXP_LINK_SECRET": "topology-test-link-secret-0123456789abcdef",
}


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name in (*PRODUCTION_ENV, "LXP_ENV", "LXP_NOTIFY_URL", "LXP_NOTIFY_SECRET", "LXP_JWT_ALGORITHMS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_embedded_profile_is_webserver_daemon_and_one_api_loading_code_in_process() -> None:
    procs = dict(processes("embedded", Layout(api_port=8100, dagster_port=3100)))
    assert list(procs) == ["dagster-webserver", "dagster-daemon", "api"]
    assert "-w" in procs["dagster-webserver"] and str(topology.EMBEDDED_WORKSPACE) in procs["dagster-webserver"]
    # dagster-daemon run plus warm run workers from its start (orchestration.dagster_daemon)
    assert procs["dagster-daemon"][:4] == [sys.executable, "-m", "orchestration.dagster_daemon", "run"]
    assert procs["api"][-2:] == ["--port", "8100"]


def test_production_profile_is_a_grpc_code_server_and_replicas_on_consecutive_ports() -> None:
    layout = Layout(api_port=8100, dagster_port=3100, code_server_port=4100, api_replicas=3)
    procs = dict(processes("production", layout))
    assert list(procs) == ["code-server", "dagster-webserver", "dagster-daemon", "api-1", "api-2", "api-3"]
    code = procs["code-server"]
    assert code[1:4] == ["api", "grpc", "-m"] and code[4] == topology.CODE_MODULE
    assert code[-4:] == ["-h", "127.0.0.1", "-p", "4100"]
    for name in ("dagster-webserver", "dagster-daemon"):
        argv = procs[name]
        # Waits for the code server, then execs the Dagster process on the gRPC workspace.
        assert argv[1:4] == ["-m", "orchestration.topology", "wait-code-server"]
        assert argv[argv.index("-w") + 1] == str(PRODUCTION_WORKSPACE)
    daemon = procs["dagster-daemon"]
    assert daemon[daemon.index("--") + 1 :][:4] == [sys.executable, "-m", "orchestration.dagster_daemon", "run"]
    assert [procs[f"api-{i}"][-1] for i in (1, 2, 3)] == ["8100", "8101", "8102"]
    assert dict(processes("production", layout, with_dagster=False)).keys() == {"api-1", "api-2", "api-3"}
    with pytest.raises(ValueError, match="unknown profile"):
        processes("staging", layout)


def test_production_environment_names_the_code_server_for_the_workspace_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LXP_HOME", str(tmp_path))
    env = topology.environment("production", Settings(), Layout(dagster_port=3100, code_server_port=4100), {})
    assert (env["LXP_CODE_SERVER_HOST"], env["LXP_CODE_SERVER_PORT"]) == ("127.0.0.1", "4100")
    assert env["LXP_DAGSTER_URL"] == "http://127.0.0.1:3100"
    workspace = yaml.safe_load(PRODUCTION_WORKSPACE.read_text())
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    assert server["host"] == {"env": "LXP_CODE_SERVER_HOST"} and server["port"] == {"env": "LXP_CODE_SERVER_PORT"}
    assert server["location_name"] == topology.LOCATION_NAME
    assert "LXP_CODE_SERVER_HOST" not in topology.environment("embedded", Settings(), Layout(), {})


def test_production_preflight_refuses_per_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    pg = {"DAGSTER_PG_URL": "postgresql+psycopg2://u@db/dagster"}
    assert production_problems(_settings(monkeypatch, PRODUCTION_ENV), pg, api_replicas=2) == []
    problems = production_problems(_settings(monkeypatch, {}), {}, api_replicas=2)
    for name in ("DAGSTER_PG_URL", "LXP_LEDGER_URL", "LXP_WAREHOUSE_URL", "LXP_STORAGE", "LXP_COMPUTE_LOGS"):
        assert any(p.startswith(name) for p in problems), (name, problems)
    assert any(p.startswith("LXP_RATE_LIMIT_STORAGE") for p in problems)
    # One replica may count in memory; two may not.
    local_limit = {**PRODUCTION_ENV, "LXP_RATE_LIMIT_STORAGE": "memory://"}
    assert production_problems(_settings(monkeypatch, local_limit), pg, api_replicas=1) == []
    assert len(production_problems(_settings(monkeypatch, local_limit), pg, api_replicas=2)) == 1


def test_up_production_refuses_to_start_without_shared_state(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _settings(monkeypatch, {})
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    assert cli.main(["up", "--profile", "production", "--api-replicas", "2"]) == 2  # main reads the environment
    assert "not a production topology" in capsys.readouterr().err


def test_production_instance_has_postgres_storage_and_s3_compute_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, {**PRODUCTION_ENV, "LXP_S3_ENDPOINT_URL": "http://127.0.0.1:9000"})
    config = yaml.safe_load(postgres_profile(settings))
    storage = config["storage"]["custom"]
    assert (storage["module"], storage["class"]) == ("orchestration.pg_storage", "PooledPostgresStorage")
    assert storage["config"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    # deploy/dagster.postgres.yaml (the file operators copy) has the same storage
    deployed = yaml.safe_load((Path(__file__).parents[2] / "deploy" / "dagster.postgres.yaml").read_text("utf-8"))
    assert deployed["storage"] == config["storage"]
    logs = config["compute_logs"]
    assert (logs["module"], logs["class"]) == ("dagster_aws.s3.compute_log_manager", "S3ComputeLogManager")
    assert logs["config"] == {
        "bucket": "dagster-logs",
        "prefix": "compute",
        "skip_empty_files": True,
        "endpoint_url": "http://127.0.0.1:9000",
    }
    assert "compute_logs" not in yaml.safe_load(postgres_profile(_settings(monkeypatch, {})))


def test_the_compute_log_manager_config_is_valid_for_dagster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The rendered section loads in Dagster's own instance schema (no server needed to construct it)."""
    from dagster._core.instance.config import dagster_instance_config

    settings = _settings(monkeypatch, PRODUCTION_ENV)
    (tmp_path / "dagster.yaml").write_text(postgres_profile(settings), encoding="utf-8")
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u@db/dagster")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["compute_logs"]["config"]["bucket"] == "dagster-logs"


def test_wait_code_server_gives_up_after_its_timeout() -> None:
    started = time.monotonic()
    assert topology.wait_code_server("127.0.0.1", _closed_port(), timeout=1.0) is False
    assert time.monotonic() - started < 15


def test_the_wait_wrapper_execs_its_command_once_the_code_server_answers(tmp_path: Path) -> None:
    """A real gRPC code server; the wrapper then becomes the command (same pid, its exit code)."""
    from tests.e2e.stack import free_port

    port = free_port()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "LXP_HOME": str(tmp_path)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "api",
            "grpc",
            "-m",
            "tests.orchestration.tiny_location",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wrapped = subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestration.topology",
                "wait-code-server",
                "--timeout",
                "120",
                "--",
                sys.executable,
                "-c",
                "import os, sys; sys.exit(7)",
            ],
            cwd=root,
            env={**env, "LXP_CODE_SERVER_HOST": "127.0.0.1", "LXP_CODE_SERVER_PORT": str(port)},
            capture_output=True,
            timeout=150,
        )
        assert wrapped.returncode == 7, wrapped.stderr
    finally:
        # In one full-suite run Dagster's gRPC server ignored the SIGTERM (py-spy, 30 min later: its
        # termination thread still waiting for the event the signal handler sets). The server's shutdown
        # is not what this test checks, so it is killed after 30 s rather than failing the test (the
        # supervisor of `lxp-reports up` escalates to SIGKILL the same way).
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


def _closed_port() -> int:
    from tests.e2e.stack import free_port

    return free_port()


def test_a_crashed_replica_is_restarted_while_the_others_keep_serving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """api-1 dies at once, again and again: each exit names the replicas still serving and it is
    restarted with backoff (issue 10 #3: a crashed child is restarted, the stack keeps running);
    one that cannot stay up at all stops the stack with its exit code, the others with it."""
    import signal

    procs = [
        ("daemon", [sys.executable, "-c", "import time; time.sleep(60)"]),
        ("api-1", [sys.executable, "-c", "raise SystemExit(3)"]),
        ("api-2", [sys.executable, "-c", "import time; time.sleep(60)"]),
    ]
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    started = time.monotonic()
    try:
        code = cli._supervise(
            procs, dict(os.environ), replicas={"api-1", "api-2"}, backoff_initial=0.05, max_rapid_failures=3
        )
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert "still serving: api-2; restarting in 0.1s (restart #2)" in err, err
    assert err.count("api-1 exited with 3") == 4 and "stopping the stack" in err, err
    assert "api-2 exited" not in err and "daemon exited" not in err
    assert code == 3 and took < 30, (code, took)
