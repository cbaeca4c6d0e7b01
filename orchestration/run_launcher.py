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

Warm start (``warm_worker: true``, the default): Dagster's default launcher asks the
code server to start each run, and the code server spawns a fresh interpreter that
imports Dagster and the report's libraries and opens the instance — ≈ 1.5 s of a
small report's ≈ 3 s (docs/benchmarks.md). This launcher instead keeps one
``orchestration.warm_worker`` process per code location ready (started right after
the previous hand-over, so it warms while the previous run works) and hands it the
run id; the worker then runs it as ``dagster api execute_run`` would. The run is the
same Dagster run (its tags, event log, compute logs, hooks, retries, the "Started
process for run (pid: N)" event this health check reads); what differs:

* who owns the worker: this launcher's process (the daemon), not the code server. A
  worker that exits while its run is unfinished is reported as the code server
  would (engine event + run failed); if the daemon itself is gone, run monitoring
  sees the dead pid. Idle warm workers exit when the daemon dies (EOF on stdin).
* terminate: SIGINT to the worker's recorded pid — what the code server's
  termination thread does — so the run ends CANCELED. Runs started the default way
  (they carry ``GRPC_INFO_TAG``) are still terminated through their code server.
* which runs: those of code locations this instance starts itself (``workspace.yaml``'s
  ``python_module``/``python_file``: the embedded profile) and, with ``warm_code_server: true``
  (the ``production`` profile, ``instance_config.postgres_profile``), those of a gRPC code server
  reached on loopback. Such a worker is spawned by the daemon, not by the code server: with the
  repository origin's executable (the interpreter the code server reported) and the *daemon's*
  environment and the code pointer's working directory. That is the code server's environment
  on this topology only because ``lxp-reports up`` gives all its children the same one
  (``topology.environment``); a code server elsewhere (Kubernetes' user-code deployment) or one
  started by hand with another environment must keep the option off. The run still imports the
  project's code from disk when it starts, as the code server's own run workers do. Runs started
  warm carry no ``GRPC_INFO_TAG``; ``terminate`` and ``check_run_worker_health`` use their pid.
  Everything else — a code server elsewhere, a run when no warm worker is ready (a burst), or one
  whose worker failed — goes the default way.
* when: ``launch_run`` starts a location's next worker after each hand-over; the daemon's
  ``WARM_RUN_WORKER`` daemon (``orchestration.dagster_daemon``, ``keep_warm``) starts one for every
  loaded location right after the daemon starts and refills one that died idle, so the first run
  after a start is warm as well.
* code changes: the warm worker imports the location only to load its libraries and
  then forgets the project's own modules, so every run imports the code as it is on
  disk when it starts (see ``orchestration.warm_worker``); nothing to invalidate.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dagster import DagsterEventType, DagsterInstance, DagsterRun, Field
from dagster._core.errors import DagsterLaunchFailedError
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, LaunchRunContext, WorkerStatus
from dagster._core.origin import RepositoryPythonOrigin
from dagster._core.remote_origin import CodeLocationOrigin, GrpcServerCodeLocationOrigin
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._serdes import ConfigurableClassData, deserialize_value, serialize_value
from dagster._utils import get_run_crash_explanation
from dagster_shared.error import SerializableErrorInfo

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", ""})
#: A worker process whose start follows the pid event by more than this is a reused pid.
_START_SLACK_SECONDS = 5.0
#: How long a hand-over waits for a warm worker still warming up, then for it to load its run.
_READY_TIMEOUT_SECONDS = 60.0
_START_TIMEOUT_SECONDS = 60.0
#: How long ``keep_warm`` waits before replacing a warm worker that died while idle.
IDLE_DEATH_BACKOFF_SECONDS = 30.0


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


def _location_on_this_host(location: CodeLocationOrigin) -> bool:
    """Whether a code location's processes run on this host (a code server we reach on loopback, or one we spawn)."""
    if isinstance(location, GrpcServerCodeLocationOrigin):
        return location.host in _LOOPBACK
    return True  # a code location from workspace.yaml's python_module/python_file: this instance's processes


def _on_this_host(run: DagsterRun) -> bool:
    """Whether the run's worker was started on this host."""
    origin = run.remote_job_origin
    return origin is not None and _location_on_this_host(origin.repository_origin.code_location_origin)


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


class _WarmWorker:
    """One ``orchestration.warm_worker`` process and the two pipes to it (see that module)."""

    def __init__(self, executable: str, setup: Mapping[str, str], cwd: str | None) -> None:
        read, write = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [executable, "-m", "orchestration.warm_worker", "--status-fd", str(write)],
                stdin=subprocess.PIPE,
                pass_fds=(write,),
                cwd=cwd,
            )
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        self._status = read
        self._buffer = b""
        self.stdin: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
        self.stdin.write(json.dumps(setup).encode() + b"\n")
        self.stdin.flush()

    def read_line(self, timeout: float) -> str | None:
        """The worker's next status line; None when it closed the pipe, exited or took too long."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._status], [], [], min(left, 0.5))
            if not ready:
                if self.proc.poll() is not None:
                    return None
                continue
            chunk = os.read(self._status, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def close(self, kill: bool = False, reap: bool = True) -> None:
        """Let go of the pipes; an idle worker reads EOF and exits (``kill``: do not wait for that;
        ``reap``: a thread collects its exit status, unless the caller waits for it itself)."""
        for closing in (self.stdin.close, lambda: os.close(self._status)):
            try:
                closing()
            except OSError:
                pass
        if kill and self.proc.poll() is None:
            self.proc.kill()
        if reap and self.proc.poll() is None:
            threading.Thread(target=self.proc.wait, name="warm-worker-reaper", daemon=True).start()


@dataclass(frozen=True)
class WarmKey:
    """Which warm worker may run a run: its interpreter, code pointer and working directory."""

    interpreter: str  # see ``_interpreter``
    code_pointer: str  # the serialized CodePointer
    working_directory: str | None
    executable: str = field(compare=False)  # the path to start it with (the first one seen for this interpreter)


def _interpreter(executable: str) -> str:
    """The identity of an interpreter *and its environment*: its directory and the binary, both resolved.

    Why not the path: one interpreter is reached by several. A run created by the webserver names the
    interpreter of ``dagster-webserver``'s shebang (``.venv/bin/python3``, or the target of a symlinked
    ``.venv``), the daemon's code location the daemon's ``sys.executable`` (``.venv/bin/python``): compared
    as strings the daemon's warm worker never matched a run. Resolving the binary alone would be wrong the
    other way (every venv's ``python`` is a link to the same base interpreter; the venv is found from the
    invoked path's directory, ``pyvenv.cfg``), so the directory is part of it."""
    return f"{os.path.realpath(os.path.dirname(executable))}:{os.path.realpath(executable)}"


def warm_key(
    repository: RepositoryPythonOrigin, location: CodeLocationOrigin, *, code_server: bool = False
) -> WarmKey | None:
    """The warm key of a repository of a code location; None: its runs go the default way. The one place that
    says which runs may start warm: ``launch_run`` keys a run by its ``job_code_origin``'s repository, the
    daemon (``orchestration.dagster_daemon``) keys what it keeps ready by
    ``CodeLocation.get_repository_python_origin`` — the same ``RepositoryPythonOrigin``, so the same key.

    ``code_server``: also a gRPC code server on this host (loopback; the ``production`` profile's
    ``warm_code_server`` option, see the module docstring)."""
    if isinstance(location, GrpcServerCodeLocationOrigin) and not (code_server and _location_on_this_host(location)):
        return None  # a code server elsewhere (Kubernetes), or not allowed: it starts its runs
    executable = repository.executable_path
    if repository.container_image or not os.path.isfile(executable):
        return None
    pointer = repository.code_pointer
    packed = serialize_value(pointer)  # type: ignore[arg-type]  # a CodePointer is a serdes record
    return WarmKey(_interpreter(executable), packed, getattr(pointer, "working_directory", None), executable)


def _warm_key(run: DagsterRun, code_server: bool = False) -> WarmKey | None:
    """The warm key of a run (``warm_key`` of its repository); None: the default way."""
    remote = run.remote_job_origin
    origin = run.job_code_origin
    if remote is None or origin is None:
        return None
    return warm_key(origin.repository_origin, remote.repository_origin.code_location_origin, code_server=code_server)


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose runs run monitoring can check, started warm where it can (see the
    module docstring)."""

    def __init__(
        self, inst_data: ConfigurableClassData | None = None, warm_worker: bool = True, warm_code_server: bool = False
    ) -> None:
        super().__init__(inst_data=inst_data)
        self._warm = warm_worker
        self._warm_code_server = warm_code_server
        self._lock = threading.Lock()
        self._ready: dict[WarmKey, _WarmWorker] = {}
        self._retry_after: dict[WarmKey, float] = {}  # monotonic time: a key whose idle worker died waits until then

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "warm_worker": Field(bool, is_required=False, default_value=True),
            "warm_code_server": Field(bool, is_required=False, default_value=False),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> LocalRunLauncher:
        return cls(
            inst_data=inst_data,
            warm_worker=bool(config_value.get("warm_worker", True)),
            warm_code_server=bool(config_value.get("warm_code_server", False)),
        )

    def _start_worker(self, key: WarmKey) -> _WarmWorker:
        setup = {"instance_ref": serialize_value(self._instance.get_ref()), "code_pointer": key.code_pointer}
        return _WarmWorker(key.executable, setup, key.working_directory)

    def _refill(self, key: WarmKey) -> None:
        """Start the key's next warm worker (under the lock); if that fails, the next run goes the default way."""
        try:
            self._ready[key] = self._start_worker(key)
        except OSError:
            pass

    def keep_warm(self, origins: Iterable[tuple[RepositoryPythonOrigin, CodeLocationOrigin]]) -> None:
        """Have a warm worker ready for each (repository, code location) whose runs may start warm.

        Why: ``launch_run`` starts a location's next worker only after a run, so without this the first run after
        a daemon start went the default way (≈ 1.5 s slower), and so did the run after a worker that died while
        idle. The daemon's ``WARM_RUN_WORKER`` daemon (``orchestration.dagster_daemon``) calls this every few
        seconds with the locations it has loaded. A worker that died idle is replaced after
        ``IDLE_DEATH_BACKOFF_SECONDS`` (a location whose import fails would otherwise cost a core in a loop).
        Skipped while ``launch_run`` holds the lock: it starts the next worker itself when done."""
        if not self._warm:
            return
        keys = {key for repository, location in origins if (key := self._key(repository, location)) is not None}
        if not keys or not self._lock.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            for key in keys:
                worker = self._ready.get(key)
                if worker is not None and worker.proc.poll() is None:
                    continue
                if worker is not None:  # died while waiting for a run
                    del self._ready[key]
                    worker.close()
                    self._retry_after[key] = now + IDLE_DEATH_BACKOFF_SECONDS
                if now >= self._retry_after.get(key, 0.0):
                    self._refill(key)
        finally:
            self._lock.release()

    def _key(self, repository: RepositoryPythonOrigin, location: CodeLocationOrigin) -> WarmKey | None:
        return warm_key(repository, location, code_server=self._warm_code_server)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        key = _warm_key(run, self._warm_code_server) if self._warm else None
        if key is None:
            return super().launch_run(context)
        with self._lock:
            worker = self._ready.pop(key, None)
            try:
                if worker is not None and worker.read_line(_READY_TIMEOUT_SECONDS) == "ready":
                    if self._hand_over(worker, run):
                        return None
                elif worker is not None:
                    worker.close(kill=True)
                if worker is not None:  # broken, stuck while warming up, or gone before it took the run
                    self._instance.report_engine_event(
                        f"Warm run worker {worker.proc.pid} did not take the run; starting it the default way.",
                        run,
                        cls=type(self),
                    )
                # No worker ready for this location (a burst, or the daemon has not warmed one yet): the default way.
                return super().launch_run(context)
            finally:
                self._refill(key)  # warms up while this run works

    def _hand_over(self, worker: _WarmWorker, run: DagsterRun) -> bool:
        """Give the run to a ready worker: True once it has loaded the run; False if it died before (it wrote
        nothing to the run: the default way may start it); raise like the code server's StartRun if it
        cannot load the run or does not answer."""
        try:
            worker.stdin.write(run.run_id.encode() + b"\n")
            worker.stdin.flush()
        except OSError:
            pass  # it died: read_line says so
        answer = worker.read_line(_START_TIMEOUT_SECONDS)
        if answer == "started":
            worker.close(reap=False)
            self._run_ids.add(run.run_id)
            threading.Thread(
                target=self._watch, args=(worker.proc, run.run_id), name=f"run-worker-{worker.proc.pid}", daemon=True
            ).start()
            return True
        exited = answer is None and worker.proc.poll() is not None
        worker.close(kill=True)
        if exited:
            return False
        if answer is not None and answer.startswith("error "):
            error = deserialize_value(answer[len("error ") :], SerializableErrorInfo)
            raise DagsterLaunchFailedError(error.message, serializable_error_info=error)  # type: ignore[no-untyped-call]
        code = worker.proc.poll()
        message = f"warm run worker {worker.proc.pid} did not start the run (exit code {code})"
        raise DagsterLaunchFailedError(message)  # type: ignore[no-untyped-call]

    def _watch(self, proc: subprocess.Popen[bytes], run_id: str) -> None:
        """Reap the worker; if its run did not end, report it as the code server reports a lost one."""
        code = proc.wait()
        try:
            run = self._instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                return
            prefix = f"Run execution process for {run_id} (warm run worker {proc.pid})"
            self._instance.report_engine_event(get_run_crash_explanation(prefix, code), run, cls=type(self))
            self._instance.report_run_failed(run)
        except Exception:  # run monitoring will see the dead pid instead
            pass

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        if run is None or run.is_finished or GRPC_INFO_TAG in run.tags:
            return bool(super().terminate(run_id))  # type: ignore[no-untyped-call]  # started by a code server: its way
        self._instance.report_run_canceling(run)
        started = _worker_started(self._instance, run_id)
        if started is None or not _on_this_host(run) or process_state(*started) != "alive":
            self._instance.report_engine_event(
                "No live run worker process to send the termination request to.", run, cls=type(self)
            )
            return False
        os.kill(started[0], signal.SIGINT)  # what the code server's termination thread sends
        return True

    def dispose(self) -> None:
        with self._lock:
            workers, self._ready = list(self._ready.values()), {}
        for worker in workers:
            worker.close()
        super().dispose()

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
