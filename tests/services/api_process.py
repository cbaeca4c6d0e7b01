"""One real API process, ``uvicorn api.app:app`` on a loopback port (the command of the image
and the Kubernetes Deployment), for tests that need what only a process shows: its logs, how
it reads bytes off the wire, dying to a SIGKILL mid-request.

Inherited ``LXP_*`` variables are dropped: the process gets exactly the settings it is given.
Its output is appended to ``log`` (a restarted process keeps writing the same file)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.e2e.stack import ROOT, free_port, wait_until


class ApiProcess:
    def __init__(self, settings: Mapping[str, str], log: Path, port: int | None = None) -> None:
        self.settings, self.log = dict(settings), log
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def start(self, timeout: float = 90) -> ApiProcess:
        """Start it and wait until it serves ``/openapi.json`` (whatever its backends' health)."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LXP_")},
            "PYTHONPATH": str(ROOT),
            **self.settings,
        }
        with self.log.open("ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc

        def ready() -> bool | None:
            if proc.poll() is not None:
                raise AssertionError(f"the API exited early:\n{self.log_text()[-3000:]}")
            try:
                return httpx.get(f"{self.base}/openapi.json", timeout=2).status_code == 200 or None
            except httpx.HTTPError:
                return None

        wait_until(ready, timeout, "the API process to answer", interval=0.2)
        return self

    def kill(self) -> None:
        """SIGKILL, as the OOM killer would: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def api_process(settings: Mapping[str, str], log: Path, port: int | None = None) -> Iterator[ApiProcess]:
    """A started :class:`ApiProcess`, stopped on exit."""
    api = ApiProcess(settings, log, port)
    try:
        yield api.start()
    finally:
        api.stop()
