"""The supervisor of `lxp-reports up` (issue 10 #3): a crashed child is restarted alone,
with backoff and a log line; the others keep their processes; only SIGTERM stops the stack;
a child that cannot stay up stops it. Real child processes, the supervisor in its own process
(signal handlers need a main thread)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.e2e.stack import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _start_supervisor(tmp_path: Path, procs: list[tuple[str, list[str]]], **options: float) -> subprocess.Popen[str]:
    script = textwrap.dedent(
        f"""
        import sys
        from orchestration.supervisor import Supervisor
        sys.exit(Supervisor({procs!r}, {{"PATH": "/usr/bin:/bin"}}, cwd={str(tmp_path)!r}, **{options!r}).run())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _sleeper(pidfile: Path) -> list[str]:
    """A child that records each of its pids (one line per start) and sleeps."""
    code = f"import os, time; open({str(pidfile)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(600)"
    return [sys.executable, "-c", code]


def _pids(pidfile: Path) -> list[int]:
    return [int(line) for line in pidfile.read_text().split()] if pidfile.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_killed_child_is_restarted_alone_and_sigterm_stops_everything(tmp_path: Path) -> None:
    api, daemon = tmp_path / "api.pids", tmp_path / "daemon.pids"
    sup = _start_supervisor(
        tmp_path, [("api", _sleeper(api)), ("daemon", _sleeper(daemon))], backoff_initial=0.2, stable_after=30
    )
    try:
        wait_until(lambda: _pids(api) and _pids(daemon), 20, "both children to start", interval=0.1)
        (first_api,), (daemon_pid,) = _pids(api), _pids(daemon)
        os.kill(first_api, signal.SIGKILL)
        wait_until(lambda: len(_pids(api)) == 2, 20, "the api to be restarted", interval=0.1)
        os.kill(_pids(api)[1], signal.SIGKILL)  # a second quick crash backs off longer
        wait_until(lambda: len(_pids(api)) == 3, 20, "the api to be restarted again", interval=0.1)
        assert _pids(daemon) == [daemon_pid] and _alive(daemon_pid)  # the other child was never touched
        assert sup.poll() is None
        new_api = _pids(api)[2]
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=30) == 0
    finally:
        if sup.poll() is None:
            os.killpg(sup.pid, signal.SIGKILL)
            sup.wait()
    assert not _alive(new_api) and not _alive(daemon_pid)
    log = sup.stderr.read() if sup.stderr else ""
    assert "api exited with -9" in log and "restarting in 0.2s (restart #1)" in log, log
    assert "restarting in 0.4s (restart #2)" in log, log


def test_a_child_that_cannot_stay_up_stops_the_stack_with_its_exit_code(tmp_path: Path) -> None:
    sleeper = tmp_path / "ok.pids"
    sup = _start_supervisor(
        tmp_path,
        [("broken", [sys.executable, "-c", "raise SystemExit(3)"]), ("ok", _sleeper(sleeper))],
        backoff_initial=0.05,
        backoff_max=0.1,
        max_rapid_failures=3,
    )
    try:
        assert sup.wait(timeout=60) == 3
    finally:
        if sup.poll() is None:
            os.killpg(sup.pid, signal.SIGKILL)
            sup.wait()
    log = sup.stderr.read() if sup.stderr else ""
    assert log.count("broken exited with 3") == 4 and "stopping the stack" in log, log
    assert all(not _alive(pid) for pid in _pids(sleeper))
