"""The process supervisor behind ``lxp-reports up`` / ``serve``.

Why a supervisor and not "stop everything when one child dies": the stack's
children are independent. Reports run in worker processes the Dagster daemon
launched (in the daemon's process group); the API and the webserver only talk
to Dagster. Stopping the whole stack because the API crashed used to SIGTERM
the daemon's group and fail every run in progress. Now a child that exits on
its own is restarted, alone, after an exponential backoff, with a log line on
stderr; the process groups of the other children (and the runs in them) are
never touched. Only SIGTERM/SIGINT (Ctrl-C) to the supervisor stops the stack.

A crashed child's process group is left alone too: the runs a killed daemon
launched keep running and finish (the restarted daemon picks their outcome up);
they are stopped with everything else when the supervisor itself stops.

A child that keeps dying quickly (:data:`MAX_RAPID_FAILURES` times in a row,
each within :data:`STABLE_AFTER_SECONDS` of its start) is a configuration
problem (port in use, bad settings), not a crash: the stack then stops with
that child's exit code instead of restarting it forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
#: A child that ran this long before dying was healthy: its backoff starts over.
STABLE_AFTER_SECONDS = 60.0
MAX_RAPID_FAILURES = 6
STOP_TIMEOUT_SECONDS = 20.0
_POLL_SECONDS = 0.3


def log(message: str) -> None:
    print(f"supervisor: {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    """One supervised command and its current process."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    rapid_failures: int = 0
    restart_at: float | None = None
    groups: list[int] = field(default_factory=list)

    def backoff(self, initial: float, maximum: float) -> float:
        return float(min(maximum, initial * 2.0 ** max(0, self.rapid_failures - 1)))


class Supervisor:
    """Starts children in their own process groups and keeps them running until told to stop."""

    def __init__(
        self,
        procs: Sequence[tuple[str, Sequence[str]]],
        env: Mapping[str, str],
        *,
        cwd: Path | str | None = None,
        backoff_initial: float = BACKOFF_INITIAL_SECONDS,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        stable_after: float = STABLE_AFTER_SECONDS,
        max_rapid_failures: int = MAX_RAPID_FAILURES,
        stop_timeout: float = STOP_TIMEOUT_SECONDS,
        replicas: Collection[str] = frozenset(),
    ) -> None:
        self.children = [Child(name, list(argv)) for name, argv in procs]
        self.replicas = frozenset(replicas)
        self.env = dict(env)
        self.cwd = cwd
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.max_rapid_failures = max_rapid_failures
        self.stop_timeout = stop_timeout
        self.stopping = False

    def request_stop(self, *_: object) -> None:
        self.stopping = True

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, env=self.env, cwd=self.cwd, start_new_session=True)
        child.started_at = time.monotonic()
        child.restart_at = None
        child.groups.append(child.proc.pid)
        log(f"started {child.name} pid={child.proc.pid}")

    def _on_exit(self, child: Child, code: int) -> int | None:
        """Schedule the restart of a child that exited; an exit code means: give up, stop the stack."""
        ran = time.monotonic() - child.started_at
        child.proc = None
        child.rapid_failures = 1 if ran >= self.stable_after else child.rapid_failures + 1
        if child.rapid_failures > self.max_rapid_failures:
            log(f"{child.name} exited with {code} {child.rapid_failures - 1} times in a row; stopping the stack")
            return code or 1
        delay = child.backoff(self.backoff_initial, self.backoff_max)
        child.restarts += 1
        child.restart_at = time.monotonic() + delay
        serving = ""
        if child.name in self.replicas:
            alive = [c.name for c in self.children if c.name in self.replicas and c.proc is not None]
            serving = f"; still serving: {', '.join(alive) or 'none'}"
        log(
            f"{child.name} exited with {code} after {ran:.1f}s{serving}; "
            f"restarting in {delay:.1f}s (restart #{child.restarts})"
        )
        return None

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (exit 0) or a child that cannot stay up (its exit code)."""
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        code = 0
        try:
            for child in self.children:
                self._start(child)
            while not self.stopping:
                now = time.monotonic()
                for child in self.children:
                    if child.proc is not None and (rc := child.proc.poll()) is not None:
                        if (give_up := self._on_exit(child, rc)) is not None:
                            code = give_up
                            self.stopping = True
                            break
                    elif child.proc is None and child.restart_at is not None and now >= child.restart_at:
                        self._start(child)
                time.sleep(_POLL_SECONDS)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _stop_all(self) -> None:
        """SIGTERM every process group ever started (live children and what crashed ones left), then SIGKILL."""
        groups = [pgid for child in self.children for pgid in child.groups]
        for pgid in groups:
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        for pgid in groups:
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def supervise(
    procs: Sequence[tuple[str, Sequence[str]]], env: Mapping[str, str], *, cwd: Path | str | None = None
) -> int:
    """Run ``procs`` (name, argv) with ``env`` until SIGTERM/Ctrl-C, restarting any that die."""
    return Supervisor(procs, env, cwd=cwd).run()
