"""A run worker started before its run: ``python -m orchestration.warm_worker --status-fd N``.

Why: on a single host most of a small report's wait was Dagster starting the run's
process — a fresh interpreter importing Dagster, the report's libraries (polars,
pyarrow, duckdb, httpx, SQLAlchemy) and opening the instance, ≈ 1.5 s of the ≈ 3 s
from request to webhook (docs/benchmarks.md, "Where a request's time goes").
``orchestration.run_launcher.LocalRunLauncher`` keeps one of these processes ready
and hands it the next run; the run then does only its own work.

What it does before it has a run (lines on stdin, answers on the status pipe):

1. reads the instance ref and the code location's code pointer (one JSON line);
2. imports the code location as Dagster would, then *forgets the project's own
   modules* (every module that import added from outside the interpreter's
   ``stdlib``/``site-packages``): the third-party libraries stay imported, the
   project's code is imported again when the run loads its job — so a code change
   is picked up exactly as by a cold worker, with no staleness rule to get wrong;
3. opens and closes the instance once (Dagster's SQLite storage parses its Alembic
   revisions once per process) — nothing stays open while it waits: no connection,
   no thread, no lock;
4. says ``ready`` and waits for a run id (EOF — the launcher's process is gone or
   it discards this worker — ends it).

With a run id it does what ``dagster api execute_run`` does (``dagster._cli.api``):
opens the instance from the ref, says ``started`` once the run is loaded (or
``error`` with Dagster's serialized error, which the launcher raises as a launch
failure, as the code server's ``StartRun`` does), then Dagster's own
``_execute_run_command_body``: the "Started process for run (pid: N)" engine event
that run monitoring reads, ``core_execute_run`` with the run's tags, logs, hooks and
retries, SIGINT → the run ends CANCELED.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
import threading
from collections.abc import Callable
from typing import Any


def _interpreter_paths() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(sorted({os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib")}))


def _is_project(module: Any, interpreter: tuple[str, ...]) -> bool:
    """Whether a module comes from outside the interpreter (the code location's own code)."""
    files = [getattr(module, "__file__", None), *list(getattr(module, "__path__", None) or [])]
    files = [os.path.realpath(f) for f in files if isinstance(f, str)]
    return bool(files) and not all(f.startswith(interpreter) for f in files)


def preload(code_pointer: Any) -> list[str]:
    """Import the code location (and so every library it needs), then drop its own modules from
    ``sys.modules``; returns the dropped names."""
    before = set(sys.modules)
    code_pointer.load_target()
    interpreter = _interpreter_paths()
    dropped = [name for name in set(sys.modules) - before if _is_project(sys.modules[name], interpreter)]
    for name in dropped:
        del sys.modules[name]
    return sorted(dropped)


#: How far below the process's CPU priority the warm-up runs (Linux nice steps; at +10 it gets about a
#: tenth of a core that another process also wants).
WARM_UP_NICE = 10


def warm_up(work: Callable[[], None]) -> None:
    """Run ``work`` (the warm-up) in a thread at a lower CPU priority and wait for it; its exception is raised here.

    Why: the launcher starts this worker when it hands the previous one its run, so the warm-up (1.5-1.8 s
    of CPU: imports, opening the instance) runs while that run works. The big institution's month keeps
    both cores busy (the Polars build and the xlsx deflate threads: ≈ 10 s of CPU in ≈ 5 s), so every
    CPU-second spent beside it lengthens its step by about half a second (docs/benchmarks.md, "The big
    institution's month inside a run"). At a lower priority the warm-up takes what the run leaves idle.
    Linux nice values are per thread, so only this thread is lowered: the main thread, which later executes
    the run, and the threads the run starts (Polars' pool, DuckDB's, the deflate threads) keep the process's
    priority; helper threads started by the imports themselves (OpenBLAS, the jemalloc purgers, Polars'
    out-of-core cleaner) inherit the lower one, none of them does the report's work. A whole-process nice
    could not be undone when the run arrives (raising priority needs CAP_SYS_NICE; the image runs as an
    unprivileged user). Elsewhere (no per-thread nice) the warm-up runs at the process's priority, as before.
    """
    failed: list[BaseException] = []

    def body() -> None:
        if sys.platform == "linux":
            try:
                tid = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + WARM_UP_NICE)
            except OSError:
                pass  # a sandbox that forbids it: warm up at full priority
        try:
            work()
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=body, name="warm-up")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def _say(status: int, text: str) -> None:
    os.write(status, (text + "\n").encode())


def serve(stdin: Any, status: int) -> int:
    """Warm up, then run the one run the launcher hands over (see the module docstring)."""
    from dagster import DagsterInstance
    from dagster._cli.api import _execute_run_command_body
    from dagster._cli.utils import get_instance_for_cli
    from dagster._core.instance import InstanceRef
    from dagster._serdes import deserialize_value, serialize_value
    from dagster._utils.error import serializable_error_info_from_exc_info
    from dagster._utils.interrupts import capture_interrupts

    setup = json.loads(stdin.readline() or "null")
    if setup is None:
        return 0
    instance_ref = deserialize_value(setup["instance_ref"], InstanceRef)

    def warm() -> None:
        preload(deserialize_value(setup["code_pointer"]))
        with DagsterInstance.from_ref(instance_ref) as instance:
            instance.get_run_by_id("warm-up")

    warm_up(warm)
    _say(status, "ready")

    run_id = stdin.readline().strip()
    if not run_id:
        return 0  # discarded before it got a run
    with capture_interrupts():
        try:
            with get_instance_for_cli(instance_ref=instance_ref) as instance:
                run = instance.get_run_by_id(run_id)
                if run is None or run.job_code_origin is None:
                    raise RuntimeError(f"run {run_id} not found, or it has no code origin")
                _say(status, "started")
                os.close(status)
                status = -1
                return _execute_run_command_body(run_id, instance, _ignore, set_exit_code_on_failure=False)
        except Exception:
            if status < 0:
                raise
            _say(status, "error " + serialize_value(serializable_error_info_from_exc_info(sys.exc_info())))
            return 1


def _ignore(_event: Any) -> None:
    """``dagster api execute_run`` buffers the events for nobody; so does this."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.warm_worker")
    parser.add_argument("--status-fd", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        return serve(sys.stdin, args.status_fd)
    except BrokenPipeError:
        return 0  # the launcher let go of it (discarded, or its process is gone) before it had a run


if __name__ == "__main__":
    sys.exit(main())
