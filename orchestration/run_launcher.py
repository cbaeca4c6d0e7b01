"""The run launcher of single-host instances: Dagster's default one, plus a health
check so run monitoring can fail a run whose worker process died.

Why: with the default launcher Dagster cannot tell that a run worker was killed
(OOM killer, ``kill -9``, a crashed interpreter), so the run stays STARTED for
ever, its requesters are never told and an identical request joins a run that
will never end. Kubernetes deployments do not need this (``K8sRunLauncher``
checks its Jobs); the embedded and the ``production`` profile of
``lxp-reports up`` run every process on one host, where the worker's pid — which
Dagster records in the run's "Started process for run (pid: N)" engine event —
answers the question. With run monitoring enabled (``instance_config``), a dead
worker's run is marked FAILURE; the delivery sensor tells its requesters and a
repeated request launches a new run.

The check only ever says FAILED when it is sure: no pid event yet, a worker
started by a code server on another host, or anything it cannot read answers
RUNNING (Dagster fails a run on any other answer). A pid that a newer process
took over since (compared by start time where ``/proc`` exists) counts as dead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRun
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", ""})
#: A worker process whose start follows the pid event by more than this is a reused pid.
_START_SLACK_SECONDS = 5.0


def _worker_started(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid and time of the run's latest "Started process for run" event."""
    found: tuple[int, float] | None = None
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event is not None else None
        pid = data.metadata.get("pid") if data is not None else None
        text = getattr(pid, "text", None) or getattr(pid, "value", None)
        if text is not None and str(text).isdigit():
            found = (int(str(text)), float(entry.timestamp))
    return found


def _on_this_host(run: DagsterRun) -> bool:
    """Whether the run's worker was started on this host (a code server we reach on loopback, or one we spawn)."""
    origin = run.remote_job_origin
    if origin is None:
        return False
    location = origin.repository_origin.code_location_origin
    if isinstance(location, GrpcServerCodeLocationOrigin):
        return location.host in _LOOPBACK
    return True  # a code location from workspace.yaml's python_module/python_file: this instance's processes


def process_state(pid: int, started_by: float) -> str:
    """``"alive"``, ``"dead"`` (gone, a zombie, or a newer process on a reused pid) or ``"unknown"``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:
        return "alive"  # exists, another user's
    except OSError:
        return "unknown"
    stat = Path(f"/proc/{pid}/stat")
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return "alive"  # no /proc (macOS): os.kill is all there is
    if fields[0] in ("Z", "X"):
        return "dead"  # exited, not yet reaped by the code server
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        booted = time.time() - float(Path("/proc/uptime").read_text().split()[0])
        started = booted + int(fields[19]) / ticks
    except (OSError, ValueError, IndexError):
        return "alive"
    return "dead" if started > started_by + _START_SLACK_SECONDS else "alive"


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose runs run monitoring can check (see the module docstring)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if not _on_this_host(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "worker on another host: not checked")
        started = _worker_started(self._instance, run.run_id)
        if started is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker pid recorded yet")
        pid, at = started
        state = process_state(pid, at)
        if state == "dead":
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)", run_worker_id=str(pid)
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {pid}: {state}", run_worker_id=str(pid))
