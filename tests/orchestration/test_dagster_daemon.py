"""The daemon of the single-host profiles (``orchestration.dagster_daemon``) keeps run workers warm from its start.

Real processes, as tests/orchestration/test_warm_worker.py: a real instance, a code location written to a temp
dir, the daemon run as ``python -m orchestration.dagster_daemon run`` (its queue daemon dequeues the run and
launches it), for a location the daemon starts itself (embedded) and for a gRPC code server on loopback
(production, ``warm_code_server: true``). The first run after the daemon's start is handed to a warm worker:
no ``GRPC_INFO_TAG``, and its pid (the "Started process for run" event) is a child of the daemon.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.workspace.context import BaseWorkspaceRequestContext, WorkspaceProcessContext
from dagster._core.workspace.load_target import GrpcServerTarget, ModuleTarget, WorkspaceLoadTarget

from orchestration import run_launcher
from orchestration.dagster_daemon import WarmRunWorkerDaemon, daemon_controller, daemons, repository_origins
from orchestration.instance_config import LOCAL_DEQUEUE_INTERVAL_SECONDS, local_profile
from orchestration.run_launcher import LocalRunLauncher, _worker_started
from orchestration.settings import Settings
from orchestration.topology import DAEMON, wait_code_server
from tests.orchestration.test_warm_worker import (
    LOCATION,
    _finished,
    _launch,
    _messages,
    _new_run,
    _parent,
    _status,
    _write_location,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]


def _home(tmp_path: Path, *, warm_code_server: bool = False) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    config = yaml.safe_load(local_profile(Settings()))
    if warm_code_server:  # what instance_config.postgres_profile writes for the production profile
        config["run_launcher"]["config"] = {"warm_code_server": True}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return home


@pytest.fixture
def code(tmp_path: Path, hold: Path) -> Path:
    directory = tmp_path / "code"
    directory.mkdir()
    _write_location(directory, "one")
    return directory


def _queue(instance: dg.DagsterInstance, workspace: BaseWorkspaceRequestContext) -> str:
    """Create the run from the test's own view of the location and put it on the queue, as the API does."""
    run = _new_run(instance, workspace)
    instance.submit_run(run.run_id, workspace)
    return run.run_id


def _assert_warm(instance: dg.DagsterInstance, run_id: str, owner: int) -> int:
    run = instance.get_run_by_id(run_id)
    assert run is not None and GRPC_INFO_TAG not in run.tags, _messages(instance, run_id)
    started = _worker_started(instance, run_id)
    assert started is not None
    assert _parent(started[0]) == owner  # a warm worker of the daemon, not a code server's child
    return started[0]


def _daemon(home: Path, workspace: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        return subprocess.Popen([*DAEMON, "run", "-w", str(workspace)], cwd=ROOT, env=env, stdout=out, stderr=out)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def _liveness(home: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.run(
        [str(bin_dir / "dagster-daemon"), "liveness-check"], env=env, capture_output=True, text=True, timeout=120
    )


def _run_first_after_start(home: Path, workspace_file: Path, target: WorkspaceLoadTarget, hold: Path) -> None:
    """Start the daemon, queue one run (held in its op), check it went warm; terminate it warm; liveness."""
    log = home / "daemon.log"
    daemon = _daemon(home, workspace_file, log)
    try:
        with (
            dg.DagsterInstance.from_config(str(home)) as instance,
            WorkspaceProcessContext(instance, target) as context,
        ):
            workspace = context.create_request_context()
            first = _queue(instance, workspace)
            assert _finished(instance, first, timeout=120) == DagsterRunStatus.SUCCESS
            _assert_warm(instance, first, daemon.pid)
            # The next one too (refilled after the hand-over); held, then terminated through the launcher
            # of another process on this host (the webserver's, in the stack): SIGINT to its pid.
            hold.touch()
            second = _queue(instance, workspace)
            wait_until(lambda: _status(instance, second) == DagsterRunStatus.STARTED, 60, "the second run to start")
            pid = _assert_warm(instance, second, daemon.pid)
            run = instance.get_run_by_id(second)
            assert run is not None
            health = instance.run_launcher.check_run_worker_health(run)
            assert health.status == WorkerStatus.RUNNING and health.run_worker_id == str(pid)
            assert instance.run_launcher.terminate(second)
            assert _finished(instance, second) == DagsterRunStatus.CANCELED
            # An extra daemon type: `dagster-daemon liveness-check` (required types only) still says live.
            live = _liveness(home)
            assert live.returncode == 0 and "Daemon live" in live.stdout, live
    finally:
        hold.unlink(missing_ok=True)
        _stop(daemon)
    err = log.read_text(errors="replace")
    assert "WarmRunWorkerDaemon" in err and "Caught error" not in err, err[-4000:]


def test_the_first_run_after_the_daemons_start_is_warm_for_a_location_it_starts_itself(
    tmp_path: Path, code: Path, hold: Path
) -> None:
    home = _home(tmp_path)
    workspace_file = tmp_path / "workspace.yaml"
    entry = {"module_name": LOCATION, "working_directory": str(code), "location_name": LOCATION}
    workspace_file.write_text(yaml.safe_dump({"load_from": [{"python_module": entry}]}), encoding="utf-8")
    target = ModuleTarget(module_name=LOCATION, attribute=None, working_directory=str(code), location_name=LOCATION)
    _run_first_after_start(home, workspace_file, target, hold)


def test_the_first_run_after_the_daemons_start_is_warm_for_a_code_server_on_loopback(
    tmp_path: Path, code: Path, hold: Path
) -> None:
    """The production profile's shape: the code location is a gRPC code server on this host."""
    from tests.e2e.stack import free_port

    home = _home(tmp_path, warm_code_server=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster", "api", "grpc", "-m", LOCATION, "-d", str(code)]
        + ["--location-name", LOCATION, "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_code_server("127.0.0.1", port, timeout=120)
        workspace_file = tmp_path / "workspace.yaml"
        entry = {"host": "127.0.0.1", "port": port, "location_name": LOCATION}
        workspace_file.write_text(yaml.safe_dump({"load_from": [{"grpc_server": entry}]}), encoding="utf-8")
        target = GrpcServerTarget(host="127.0.0.1", port=port, socket=None, location_name=LOCATION)
        _run_first_after_start(home, workspace_file, target, hold)
    finally:
        _stop(server, timeout=30)


def test_keep_warm_readies_the_key_a_run_of_the_location_gets_and_replaces_a_worker_that_died_idle(
    tmp_path: Path, code: Path, hold: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: the warm-worker daemon in our controller (alone), checked by its thread, not a heartbeat."""
    monkeypatch.setattr(run_launcher, "IDLE_DEATH_BACKOFF_SECONDS", 0.0)
    home = _home(tmp_path)
    target = ModuleTarget(module_name=LOCATION, attribute=None, working_directory=str(code), location_name=LOCATION)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, LocalRunLauncher)
        try:
            with daemon_controller(instance, target, gen_daemons=lambda _: [WarmRunWorkerDaemon(0.5)]) as controller:
                assert controller._daemon_heartbeat_health() == {"WARM_RUN_WORKER": True}
                wait_until(lambda: len(launcher._ready) == 1, 30, "a warm worker")
                (first,) = launcher._ready.values()
                first.proc.kill()
                wait_until(lambda: _replaced(launcher, first), 30, "the dead idle worker to be replaced")
                with WorkspaceProcessContext(instance, target) as context:
                    workspace = context.create_request_context()
                    keys = {launcher._key(*origin) for origin in repository_origins(workspace)}
                    assert keys == set(launcher._ready)  # the test's view of the location keys as the daemon's
                    run_id = _launch(instance, workspace)
                    assert _finished(instance, run_id) == DagsterRunStatus.SUCCESS
                    _assert_warm(instance, run_id, os.getpid())
        finally:
            launcher.dispose()


def _replaced(launcher: LocalRunLauncher, dead: object) -> bool:
    workers = list(launcher._ready.values())
    return len(workers) == 1 and workers[0] is not dead and workers[0].proc.poll() is None


@pytest.fixture
def hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "hold"
    monkeypatch.setenv("WARM_TEST_HOLD", str(path))
    yield path
    path.unlink(missing_ok=True)


def test_the_queue_is_looked_at_every_half_second_unless_the_operator_chose_an_interval(tmp_path: Path) -> None:
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    def queue_interval(home: Path) -> float:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            found = daemons(instance)
            assert sum(isinstance(d, WarmRunWorkerDaemon) for d in found) == 1
            (queue,) = [d for d in found if isinstance(d, QueuedRunCoordinatorDaemon)]
            return float(queue.interval_seconds)

    home = _home(tmp_path)
    assert queue_interval(home) == LOCAL_DEQUEUE_INTERVAL_SECONDS == 0.5
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 5
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert queue_interval(home) == 5
