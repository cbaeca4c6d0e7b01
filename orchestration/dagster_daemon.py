"""The Dagster daemon of single-host profiles: ``python -m orchestration.dagster_daemon run -w WORKSPACE``.

Why: ``orchestration.run_launcher.LocalRunLauncher`` hands runs to warm workers, but Dagster's daemon
touches the run launcher only when it launches a run, and the launcher does not know the workspace — so
the first run after a start (the first request after ``lxp-reports up``) was started the cold way,
≈ 1.5 s slower (request → webhook 3.1-3.25 s against a target of 3.0 s). This entry point does what
``dagster-daemon run`` does — the same instance (``$DAGSTER_HOME``), the same workspace options and the
same daemons (``create_daemons_from_instance``) — plus one more, ``WarmRunWorkerDaemon``: every
``WARM_INTERVAL_SECONDS`` it looks at the code locations the daemon has loaded and asks the instance's
``LocalRunLauncher`` (``keep_warm``) to keep a worker ready for each repository it may run warm, keyed as
a run of that repository is keyed (``run_launcher.warm_key``). It also refills a worker that died idle
without waiting for the next run. It runs in the daemon's process because the launcher lives there (the
queue daemon's ``launch_run`` and this thread share the launcher's lock).

The queue: a queued run waits for the queue daemon's next look, and Dagster's configuration takes whole
seconds (``instance_config.DEQUEUE_INTERVAL_SECONDS`` = 1, a look every ≈ 1.05 s). Building the queue daemon
here, it looks every ``instance_config.LOCAL_DEQUEUE_INTERVAL_SECONDS`` (0.5 s, a look every ≈ 0.55 s; an
look at an empty queue is two indexed run-storage queries).

Health: the extra daemon is not one of the instance's *required* daemon types, so ``dagster-daemon
liveness-check`` and the UI's daemon health (both ask only for required types) are unchanged. Dagster's
controller, though, checks the heartbeats of every daemon it runs and counts a non-required type as never
healthy, which logged "have not sent heartbeats" for it every minute; ``_Controller`` checks this one by
its thread instead (a dead thread still stops the daemon process, as for Dagster's own daemons).

The module is named ``dagster_daemon`` so that its command line still says so: the PostgreSQL
``application_name`` (``pg_storage.process_kind``) and the benchmarks classify processes by it.
Kubernetes is unaffected (Dagster's image runs ``dagster-daemon run`` with ``K8sRunLauncher``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import click
from dagster import DagsterInstance
from dagster._cli.utils import assert_no_remaining_opts, get_instance_for_cli
from dagster._cli.workspace.cli_target import workspace_opts_to_load_target
from dagster._core.origin import RepositoryPythonOrigin
from dagster._core.remote_origin import CodeLocationOrigin
from dagster._core.workspace.context import (
    BaseWorkspaceRequestContext,
    IWorkspaceProcessContext,
    WorkspaceProcessContext,
)
from dagster._core.workspace.load_target import WorkspaceLoadTarget
from dagster._daemon.controller import (
    DEFAULT_DAEMON_HEARTBEAT_TOLERANCE_SECONDS,
    DagsterDaemonController,
    create_daemon_grpc_server_registry,
    create_daemons_from_instance,
)
from dagster._daemon.daemon import DaemonIterator, DagsterDaemon, IntervalDaemon
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._utils.interrupts import capture_interrupts, setup_interrupt_handlers
from dagster._utils.log import configure_loggers
from dagster_shared.cli import WorkspaceOpts, workspace_options

from orchestration.instance_config import DEQUEUE_INTERVAL_SECONDS, LOCAL_DEQUEUE_INTERVAL_SECONDS
from orchestration.run_launcher import LocalRunLauncher

#: How often the daemon checks that every code location has a warm worker (a check is a dictionary lookup and a
#: ``poll()`` per location; Dagster's interval daemons sleep in 0.5 s steps).
WARM_INTERVAL_SECONDS = 2.0


def repository_origins(
    workspace: BaseWorkspaceRequestContext,
) -> Iterator[tuple[RepositoryPythonOrigin, CodeLocationOrigin]]:
    """(repository origin, code location origin) of every repository of every loaded code location: what a run
    of that repository carries as ``job_code_origin.repository_origin`` and its location origin."""
    for location in workspace.code_locations:
        for name in location.get_repository_names():
            repository = location.get_repository_python_origin(name)
            if repository is not None:
                yield repository, location.origin


_Context = IWorkspaceProcessContext[BaseWorkspaceRequestContext]


class WarmRunWorkerDaemon(IntervalDaemon[_Context]):
    """Keeps a warm run worker ready for each loaded code location (see the module docstring)."""

    def __init__(self, interval_seconds: float = WARM_INTERVAL_SECONDS) -> None:
        super().__init__(interval_seconds=interval_seconds)

    @classmethod
    def daemon_type(cls) -> str:
        return "WARM_RUN_WORKER"

    def run_iteration(self, workspace_process_context: _Context) -> DaemonIterator:
        launcher = workspace_process_context.instance.run_launcher
        if isinstance(launcher, LocalRunLauncher):
            launcher.keep_warm(list(repository_origins(workspace_process_context.create_request_context())))
        yield None


def daemons(instance: DagsterInstance) -> list[DagsterDaemon[Any]]:
    """Dagster's daemons for this instance, plus the warm-worker daemon when its launcher is ours, and a queue
    daemon looking every ``LOCAL_DEQUEUE_INTERVAL_SECONDS`` where ``dagster.yaml`` has our
    ``DEQUEUE_INTERVAL_SECONDS`` (an operator's own value is kept)."""
    found = list(create_daemons_from_instance(instance))
    for index, daemon in enumerate(found):
        if isinstance(daemon, QueuedRunCoordinatorDaemon) and daemon.interval_seconds == DEQUEUE_INTERVAL_SECONDS:
            found[index] = QueuedRunCoordinatorDaemon(interval_seconds=LOCAL_DEQUEUE_INTERVAL_SECONDS)
    if isinstance(instance.run_launcher, LocalRunLauncher):
        found.append(WarmRunWorkerDaemon())
    return found


class _Controller(DagsterDaemonController):
    """Dagster's controller, checking ``WARM_RUN_WORKER`` by its thread rather than by a heartbeat (why: see
    the module docstring)."""

    def _daemon_heartbeat_health(self) -> Mapping[str, bool]:
        health = dict(super()._daemon_heartbeat_health())
        if WarmRunWorkerDaemon.daemon_type() in health:
            health[WarmRunWorkerDaemon.daemon_type()] = self._daemon_thread_healthy(WarmRunWorkerDaemon.daemon_type())
        return health


@contextmanager
def daemon_controller(
    instance: DagsterInstance,
    workspace_load_target: WorkspaceLoadTarget,
    *,
    heartbeat_tolerance_seconds: int = DEFAULT_DAEMON_HEARTBEAT_TOLERANCE_SECONDS,
    gen_daemons: Callable[[DagsterInstance], Iterable[DagsterDaemon[Any]]] = daemons,
    code_server_log_level: str = "warning",
    log_level: str = "info",
    log_format: str = "colored",
) -> Iterator[DagsterDaemonController]:
    """``dagster._daemon.controller.daemon_controller_from_instance`` (Dagster 1.13) with ``_Controller``."""
    with ExitStack() as stack:
        registry = stack.enter_context(create_daemon_grpc_server_registry(instance, code_server_log_level))
        running = [stack.enter_context(daemon) for daemon in gen_daemons(instance)]
        context = stack.enter_context(
            WorkspaceProcessContext(
                instance=instance, workspace_load_target=workspace_load_target, grpc_server_registry=registry
            )
        )
        configure_loggers(handler="default", formatter=log_format, log_level=log_level.upper())
        yield stack.enter_context(
            _Controller(
                context,
                running,
                heartbeat_tolerance_seconds=heartbeat_tolerance_seconds,
                grpc_server_registry=registry,
            )
        )


def _heartbeat_tolerance() -> int:
    """``dagster-daemon run``'s ``DAGSTER_DAEMON_HEARTBEAT_TOLERANCE``."""
    tolerance = os.getenv("DAGSTER_DAEMON_HEARTBEAT_TOLERANCE")
    return int(tolerance) if tolerance else DEFAULT_DAEMON_HEARTBEAT_TOLERANCE_SECONDS


_LEVELS = click.Choice(["critical", "error", "warning", "info", "debug"], case_sensitive=False)


@click.command(name="run", help="Run the instance's daemons (as dagster-daemon run) and keep run workers warm.")
@click.option("--code-server-log-level", type=_LEVELS, default="warning", show_default=True)
@click.option("--log-level", type=_LEVELS, default="info", show_default=True, envvar="DAGSTER_DAEMON_LOG_LEVEL")
@click.option(
    "--log-format",
    type=click.Choice(["colored", "json", "rich"], case_sensitive=False),
    default="colored",
    show_default=True,
)
@workspace_options
def run_command(code_server_log_level: str, log_level: str, log_format: str, **other_opts: object) -> None:
    """What ``dagster._daemon.cli.run_command`` does, with ``daemon_controller``."""
    workspace_opts = WorkspaceOpts.extract_from_cli_options(other_opts)
    assert_no_remaining_opts(other_opts)
    setup_interrupt_handlers()
    try:
        with (
            capture_interrupts(),
            get_instance_for_cli() as instance,
            daemon_controller(
                instance,
                workspace_opts_to_load_target(workspace_opts),
                heartbeat_tolerance_seconds=_heartbeat_tolerance(),
                code_server_log_level=code_server_log_level,
                log_level=log_level,
                log_format=log_format,
            ) as controller,
        ):
            controller.check_daemon_loop()
    except KeyboardInterrupt:
        return  # exit cleanly on SIGINT/SIGTERM, as dagster-daemon does


@click.group(commands={"run": run_command})
def cli() -> None:
    """The LXP Reports Dagster daemon (single-host profiles)."""


def main(argv: Sequence[str] | None = None) -> int:
    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="python -m orchestration.dagster_daemon")
    return 0


if __name__ == "__main__":
    sys.exit(main())
