"""LocalRunLauncher's health check against a real Dagster instance and real processes
(the whole path — a killed worker's run failed and its requester told — is
tests/reliability/test_faults.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from orchestration.instance_config import DEQUEUE_INTERVAL_SECONDS, local_profile, postgres_profile
from orchestration.run_launcher import LocalRunLauncher, _warm_key, process_state, warm_key
from orchestration.settings import Settings


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster.yaml").write_text(local_profile(Settings(run_monitoring_seconds=7)), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        yield instance


def _run(instance: dg.DagsterInstance, host: str = "127.0.0.1", pid: int | None = None) -> DagsterRun:
    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(GrpcServerCodeLocationOrigin(host=host, port=4266, location_name="lxp"), "__repo__"),
        "catalog_adhoc",
    )
    run = instance.add_run(
        DagsterRun(
            job_name="catalog_adhoc",
            run_id=str(uuid.uuid4()),
            status=DagsterRunStatus.STARTED,
            remote_job_origin=origin,
        )
    )
    if pid is not None:
        instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    return run


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_instance_profile_uses_it_with_run_monitoring_on(instance: dg.DagsterInstance) -> None:
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    assert instance.run_monitoring_enabled and instance.run_monitoring_max_resume_run_attempts == 0
    config = yaml.safe_load(local_profile(Settings(run_monitoring_seconds=7)))["run_monitoring"]
    assert config["poll_interval_seconds"] == 7


def test_the_instance_profile_dequeues_every_second_and_keeps_its_run_limits(instance: dg.DagsterInstance) -> None:
    """A queued run waits for the daemon's next look at the queue: 1 s, not Dagster's default 5 s."""
    coordinator = instance.run_coordinator
    assert isinstance(coordinator, QueuedRunCoordinator)
    assert coordinator.dequeue_interval_seconds == DEQUEUE_INTERVAL_SECONDS == 1
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None and queue.max_concurrent_runs == Settings().max_concurrent_runs
    assert {limit["key"] for limit in queue.tag_concurrency_limits} == {
        "dagster/partition/institution",
        "lxp/institution",
    }


def test_a_live_worker_is_running_and_a_gone_one_failed(instance: dg.DagsterInstance) -> None:
    launcher = instance.run_launcher
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert launcher.check_run_worker_health(_run(instance, pid=live.pid)).status == WorkerStatus.RUNNING
        live.kill()
        live.wait()
        result = launcher.check_run_worker_health(_run(instance, pid=live.pid))
        assert result.status == WorkerStatus.FAILED and str(live.pid) in str(result.msg)
    finally:
        live.kill()


def test_it_only_says_failed_when_sure(instance: dg.DagsterInstance) -> None:
    launcher = instance.run_launcher
    # No pid event yet (the worker is still starting): Dagster fails a run on anything but RUNNING.
    assert launcher.check_run_worker_health(_run(instance)).status == WorkerStatus.RUNNING
    # A code server on another host started the worker: its pid means nothing here.
    remote = _run(instance, host="user-code.lxp.svc", pid=_dead_pid())
    assert launcher.check_run_worker_health(remote).status == WorkerStatus.RUNNING


def test_process_state_sees_zombies_and_reused_pids() -> None:
    assert process_state(os.getpid(), time.time()) == "alive"
    assert process_state(_dead_pid(), time.time()) == "dead"
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        if hasattr(os, "waitid"):  # wait for its exit but leave it unreaped (a zombie)
            os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)
        else:
            time.sleep(1.0)
        assert process_state(zombie.pid, time.time()) == ("dead" if Path("/proc").is_dir() else "alive")
    finally:
        zombie.wait()
    # Our own pid, but "recorded" long before this process started: the pid was reused.
    if Path("/proc").is_dir():
        assert process_state(os.getpid(), 0.0) == "dead"


def test_only_runs_of_a_location_this_instance_starts_itself_are_started_warm(instance: dg.DagsterInstance) -> None:
    """The production profile's code server (gRPC, a port of its own) starts its runs itself: the default way."""
    assert instance.run_launcher._warm  # on by default, also for a dagster.yaml written before the option
    pointer = ModuleCodePointer("orchestration.definitions", "defs", None)
    code = JobPythonOrigin("catalog_adhoc", RepositoryPythonOrigin(sys.executable, pointer))
    managed = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name="orchestration.definitions"),
        location_name="lxp",
    )
    server = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=4266, location_name="lxp")
    elsewhere = GrpcServerCodeLocationOrigin(host="user-code.lxp.svc", port=4266, location_name="lxp")
    # (location, warm by default, warm with warm_code_server: a code server on this host only)
    for location, warm, with_code_server in ((managed, True, True), (server, False, True), (elsewhere, False, False)):
        origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repo__"), "catalog_adhoc")
        run = DagsterRun(
            job_name="catalog_adhoc", run_id=str(uuid.uuid4()), remote_job_origin=origin, job_code_origin=code
        )
        assert (_warm_key(run) is not None) is warm
        assert (_warm_key(run, code_server=True) is not None) is with_code_server


def test_only_the_production_profile_starts_its_code_servers_runs_warm() -> None:
    """The production profile's code server shares the daemon's host and environment (topology.environment)."""
    production = yaml.safe_load(postgres_profile(Settings()))["run_launcher"]
    assert production["config"] == {"warm_code_server": True}
    assert "config" not in yaml.safe_load(local_profile(Settings()))["run_launcher"]
    assert LocalRunLauncher.from_config_value(None, production["config"])._warm_code_server  # type: ignore[arg-type]


def test_a_run_and_the_daemons_location_get_one_key_whichever_path_names_the_interpreter(tmp_path: Path) -> None:
    """The webserver's runs name the interpreter of its shebang (``bin/python3``), the daemon's location its
    ``sys.executable`` (``bin/python``; the benchmark found the daemon's warm worker never matching a run);
    another environment's link to the same base interpreter is another interpreter."""
    venv, other = tmp_path / "venv" / "bin", tmp_path / "other" / "bin"
    for directory in (venv, other):
        directory.mkdir(parents=True)
        for name in ("python", "python3"):
            (directory / name).symlink_to(os.path.realpath(sys.executable))
    linked = tmp_path / "linked"  # a symlinked environment (the worktrees' .venv)
    linked.symlink_to(tmp_path / "venv")
    pointer = ModuleCodePointer("orchestration.definitions", "defs", str(tmp_path))
    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name="orchestration.definitions"),
        location_name="lxp",
    )

    def key(executable: Path) -> object:
        return warm_key(RepositoryPythonOrigin(str(executable), pointer), location)

    assert key(venv / "python") == key(venv / "python3") == key(linked / "bin" / "python") is not None
    assert key(other / "python") != key(venv / "python")
