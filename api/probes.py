"""Backend checks with a deadline, for ``/readyz`` and ``/healthz``.

Each check runs in its own daemon thread and is waited for at most
:data:`PROBE_DEADLINE_SECONDS` (all checks run at once, so a probe answers
within that deadline whatever hangs). A hung backend cannot pile threads up
either: while a component's previous check is still running, no new one starts
and the probe waits for that one instead (within its own deadline). The checks
are bounded themselves where the client allows it (the S3 probe client's 1 s
timeouts, the ledger's connect timeout), so a stuck thread ends on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("api.health")

#: How long a readiness/health probe waits for its checks (Kubernetes' probe timeout must be larger).
PROBE_DEADLINE_SECONDS = 2.0

OK = "ok"


class _Check:
    def __init__(self, name: str, probe: Callable[[], Any]) -> None:
        self.name = name
        self.probe = probe
        self.outcome: str | None = None
        self.error = ""
        self.thread = threading.Thread(target=self._run, name=f"probe-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self.probe()
            self.outcome = OK
        except Exception as exc:  # a probe reports, it never raises
            self.error = f"{type(exc).__name__}: {exc}"
            self.outcome = f"unreachable ({type(exc).__name__})"


class Prober:
    """Runs named checks concurrently, each bounded by ``deadline`` seconds; one in flight per name."""

    def __init__(self, deadline: float = PROBE_DEADLINE_SECONDS) -> None:
        self.deadline = deadline
        self._lock = threading.Lock()
        self._running: dict[str, _Check] = {}

    def run(self, checks: Mapping[str, Callable[[], Any]]) -> dict[str, str]:
        """``{name: "ok" | "unreachable (<error>)" | "unreachable (timeout after <n>s)"}``."""
        started: dict[str, _Check] = {}
        with self._lock:
            for name, probe in checks.items():
                previous = self._running.get(name)
                if previous is not None and previous.thread.is_alive():
                    started[name] = previous  # still running (hung?): wait for it, start no other thread
                    continue
                check = self._running[name] = started[name] = _Check(name, probe)
                check.thread.start()
        timeout_text = f"unreachable (timeout after {self.deadline:g}s)"
        results: dict[str, str] = {}
        end = time.monotonic() + self.deadline
        for name, check in started.items():
            check.thread.join(max(0.0, end - time.monotonic()))
            # Logged here, not in the check's thread, so the line carries this request's id.
            if check.outcome is None:
                log.warning("probe: %s did not answer within %gs", name, self.deadline)
            elif check.outcome != OK:
                log.warning("probe: %s unreachable: %s", name, check.error)
            results[name] = check.outcome or timeout_text
        return results
