"""LocalRunLauncher's warm start with real processes: a real instance, a real code
location (a module written to a temp dir, loaded by Dagster's own managed code
server), runs launched through ``instance.launch_run`` as the daemon launches them.

The whole stack (daemon, API, webhook) is tests/e2e and tests/reliability; this is the
launcher's contract: the first run goes the default way and warms a worker, the next
ones are handed to it and are ordinary Dagster runs (events, tags, logs, pid event),
terminate ends a warm run CANCELED, a killed warm worker's run is failed, a code
change is picked up, and a warm worker never outlives the process that owns it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.test_utils import create_run_for_test
from dagster._core.workspace.context import BaseWorkspaceRequestContext, WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget

from orchestration.instance_config import local_profile
from orchestration.run_launcher import LocalRunLauncher, _worker_started
from orchestration.settings import Settings
from orchestration.warm_worker import WARM_UP_NICE, warm_up

LOCATION = "warm_test_location"
# The job: says which code version it is (a log line) and, while ``hold`` exists, waits before returning.
SOURCE = """
import os, time
import dagster as dg

VERSION = "{version}"

@dg.op
def work(context):
    context.log.info(f"code version {{VERSION}} in pid {{os.getpid()}} at nice {{os.getpriority(os.PRIO_PROCESS, 0)}}")
    hold = os.environ.get("WARM_TEST_HOLD", "")
    while hold and os.path.exists(hold):
        time.sleep(0.05)
    return VERSION

@dg.job(executor_def=dg.in_process_executor)
def warm_job():
    work()

defs = dg.Definitions(jobs=[warm_job])
"""


def _write_location(directory: Path, version: str) -> None:
    path = directory / f"{LOCATION}.py"
    path.write_text(textwrap.dedent(SOURCE.format(version=version)), encoding="utf-8")
    stamp = time.time() + 2  # a different mtime even within one second, so no stale .pyc is taken
    os.utime(path, (stamp, stamp))


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "hold"
    monkeypatch.setenv("WARM_TEST_HOLD", str(path))
    return path


@pytest.fixture
def setup(tmp_path: Path, hold: Path) -> Iterator[tuple[dg.DagsterInstance, BaseWorkspaceRequestContext, Path]]:
    code = tmp_path / "code"
    code.mkdir()
    _write_location(code, "one")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(local_profile(Settings()), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        target = ModuleTarget(module_name=LOCATION, attribute=None, working_directory=str(code), location_name=LOCATION)
        with WorkspaceProcessContext(instance, target) as context:
            yield instance, context.create_request_context(), code
            instance.run_launcher.dispose()


def _new_run(instance: dg.DagsterInstance, workspace: BaseWorkspaceRequestContext, **tags: str) -> dg.DagsterRun:
    """A run of ``warm_job`` created from ``workspace``'s view of the location, as the webserver creates one."""
    location = workspace.get_code_location(LOCATION)
    job = location.get_repository("__repository__").get_full_job("warm_job")
    return create_run_for_test(
        instance,
        job_name="warm_job",
        remote_job_origin=job.get_remote_origin(),
        job_code_origin=job.get_python_origin(),
        job_snapshot=job.job_snapshot,
        tags=tags,
    )


def _launch(instance: dg.DagsterInstance, workspace: BaseWorkspaceRequestContext, **tags: str) -> str:
    run = _new_run(instance, workspace, **tags)
    instance.launch_run(run.run_id, workspace)
    return run.run_id


def _status(instance: dg.DagsterInstance, run_id: str) -> DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run.status


def _finished(instance: dg.DagsterInstance, run_id: str, timeout: float = 60) -> DagsterRunStatus:
    def finished() -> bool:
        run = instance.get_run_by_id(run_id)
        return run is not None and run.is_finished

    wait_until(finished, timeout, f"run {run_id} to end")
    return _status(instance, run_id)


def _messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.message or entry.user_message for entry in instance.all_logs(run_id)]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _warmed(instance: dg.DagsterInstance, workspace: BaseWorkspaceRequestContext) -> None:
    """The first run goes the default way (through the code server) and warms a worker."""
    first = _launch(instance, workspace)
    assert _finished(instance, first) == DagsterRunStatus.SUCCESS
    run = instance.get_run_by_id(first)
    assert run is not None and GRPC_INFO_TAG in run.tags


def test_the_next_run_is_handed_to_a_warm_worker_and_is_an_ordinary_dagster_run(setup, hold) -> None:
    instance, workspace, _code = setup
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    _warmed(instance, workspace)
    run_id = _launch(instance, workspace, **{"lxp/institution": "7"})
    assert _finished(instance, run_id) == DagsterRunStatus.SUCCESS
    run = instance.get_run_by_id(run_id)
    assert run is not None and GRPC_INFO_TAG not in run.tags and run.tags["lxp/institution"] == "7"
    messages = _messages(instance, run_id)
    started = _worker_started(instance, run_id)
    assert started is not None
    assert f"Started process for run (pid: {started[0]})." in messages
    # The op's own log line; the run works at the launcher's priority, not the warm-up's (warm_worker.warm_up).
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    assert any(f"code version one in pid {started[0]} at nice {nice}" in m for m in messages), messages
    types = [e.dagster_event.event_type_value for e in instance.all_logs(run_id) if e.dagster_event]
    for expected in ("PIPELINE_START", "STEP_START", "STEP_SUCCESS", "PIPELINE_SUCCESS"):
        assert expected in types


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_the_warm_up_runs_at_a_lower_priority_and_the_caller_keeps_its_own() -> None:
    seen: list[int] = []
    warm_up(lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))  # 0: the calling thread, on Linux
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen == [min(base + WARM_UP_NICE, 19)]
    with pytest.raises(ZeroDivisionError):  # the warm-up's failure is the caller's
        warm_up(lambda: seen.append(1 // 0))


def _held_warm_run(instance: dg.DagsterInstance, workspace: BaseWorkspaceRequestContext, hold: Path) -> tuple[str, int]:
    """A run handed to a warm worker and held before its file (``hold``): its id and worker pid."""
    _warmed(instance, workspace)
    hold.touch()
    run_id = _launch(instance, workspace)
    wait_until(lambda: _status(instance, run_id) == DagsterRunStatus.STARTED, 30, "the run to start")
    started = _worker_started(instance, run_id)
    assert started is not None and _parent(started[0]) == os.getpid()  # a warm worker, ours
    return run_id, started[0]


def test_terminate_ends_a_warm_run_canceled(setup, hold) -> None:
    instance, workspace, _code = setup
    run_id, _pid = _held_warm_run(instance, workspace, hold)
    assert instance.run_launcher.terminate(run_id)
    assert _finished(instance, run_id) == DagsterRunStatus.CANCELED


def test_a_killed_warm_worker_fails_its_run(setup, hold) -> None:
    instance, workspace, _code = setup
    run_id, pid = _held_warm_run(instance, workspace, hold)
    os.kill(pid, signal.SIGKILL)
    assert _finished(instance, run_id) == DagsterRunStatus.FAILURE
    assert any("terminated by signal 9" in m for m in _messages(instance, run_id))


def test_a_code_change_is_picked_up_by_the_next_warm_run(setup, hold) -> None:
    instance, workspace, code = setup
    _warmed(instance, workspace)  # a warm worker imported version "one"
    _write_location(code, "two")
    run_id = _launch(instance, workspace)
    assert _finished(instance, run_id) == DagsterRunStatus.SUCCESS
    run = instance.get_run_by_id(run_id)
    assert run is not None and GRPC_INFO_TAG not in run.tags  # warm, yet the code as it is now
    assert any("code version two" in m for m in _messages(instance, run_id))


def test_a_warm_worker_lost_before_it_took_the_run_leaves_the_run_to_the_default_way(setup, hold) -> None:
    instance, workspace, _code = setup
    _warmed(instance, workspace)
    children = [int(p) for p in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()]
    (idle,) = [pid for pid in children if b"orchestration.warm_worker" in _cmdline(pid)]
    os.kill(idle, signal.SIGKILL)
    run_id = _launch(instance, workspace)
    assert _finished(instance, run_id) == DagsterRunStatus.SUCCESS
    run = instance.get_run_by_id(run_id)
    assert run is not None and GRPC_INFO_TAG in run.tags
    assert any(f"Warm run worker {idle} did not take the run" in m for m in _messages(instance, run_id))


OWNER = """
import os, sys, time
import dagster as dg
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
sys.path.insert(0, sys.argv[3])
from tests.orchestration.test_warm_worker import _launch, LOCATION

with dg.DagsterInstance.from_config(sys.argv[1]) as instance:
    target = ModuleTarget(module_name=LOCATION, attribute=None, working_directory=sys.argv[2], location_name=LOCATION)
    with WorkspaceProcessContext(instance, target) as context:
        workspace = context.create_request_context()
        first = _launch(instance, workspace)
        while not instance.get_run_by_id(first).is_finished:
            time.sleep(0.1)
        open(os.environ["WARM_TEST_HOLD"], "w").close()  # the second run waits while it exists
        print("RUN", _launch(instance, workspace), flush=True)  # handed to the warm worker; a new one warms up
        time.sleep(600)
"""


def test_killing_the_launchers_process_loses_no_run_and_leaves_no_idle_worker(setup, hold, tmp_path) -> None:
    """kill -9 of the process that owns the warm workers (the daemon): the run it handed over goes
    on to the end, the idle warm worker exits (EOF on its stdin)."""
    instance, _workspace, code = setup
    root = Path(__file__).resolve().parents[2]
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "home"), str(code), str(root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        lines = iter(owner.stdout.readline, "")  # its code server logs to the same stdout
        run_id = next((line.split()[1] for line in lines if line.startswith("RUN ")), "")
        assert run_id, "the owner did not launch its second run"
        wait_until(lambda: _status(instance, run_id) == DagsterRunStatus.STARTED, 30, "the run to start")
        started = _worker_started(instance, run_id)
        assert started is not None
        children = [int(p) for p in Path(f"/proc/{owner.pid}/task/{owner.pid}/children").read_text().split()]
        idle = [pid for pid in children if pid != started[0] and b"orchestration.warm_worker" in _cmdline(pid)]
        assert len(idle) == 1, children
        owner.kill()
        owner.wait()
        wait_until(lambda: not _alive(idle[0]), 30, "the idle warm worker to exit")
        hold.unlink()
        assert _finished(instance, run_id) == DagsterRunStatus.SUCCESS
    finally:
        owner.kill()
        owner.wait()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
