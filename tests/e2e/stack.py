"""`lxp-reports up` as a test fixture: Dagster webserver + daemon + API on free
loopback ports, a temp ``LXP_HOME`` with the generated tiny warehouse, and
whatever delivery configuration (webhook, SMTP, S3) a module needs.

Unlike ``tests/api/test_e2e_stack.py`` (one start per module) a :class:`Stack`
can be stopped and started again on the same home, which the crash/restart
test needs. Every wait is bounded; :meth:`Stack.stop` sends SIGTERM to the
process group (SIGKILL if it lingers) and is safe to call twice.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt

from assets.contract import TAG_CLAIM

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "e2e-delivery-secret-0123456789-0123456789"
NOTIFY_SECRET = "e2e-notify-secret-0123456789-0123456789"  # >= 32 bytes: the production profile refuses less
LINK_SECRET = "e2e-link-secret-0123456789-0123456789"
FINISHED = ("succeeded", "failed", "canceled")

T = TypeVar("T")

_BACKFILLS = """{ partitionBackfillsOrError(limit: 50) { ... on PartitionBackfills {
  results { id status numPartitions tags { key value } } } } }"""
_LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token(institution: int, user: int, subdomain: str, privilege: int = 2) -> str:
    claims = {
        "institutionId": institution,
        "userId": user,
        "subdomain": subdomain,
        "privilegio_id": privilege,
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@dataclass(frozen=True)
class Person:
    """A non-student, undeleted user of an institution, as the warehouse knows them."""

    institution: int
    user: int
    email: str
    subdomain: str

    @property
    def bearer(self) -> str:
        return token(self.institution, self.user, self.subdomain)


def new_home(parent: Path, warehouse: Path) -> Path:
    """A fresh LXP_HOME under ``parent`` holding its own copy of the tiny warehouse."""
    parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(warehouse, parent / "warehouse.duckdb")
    return parent


def months_ago(n: int) -> tuple[int, int]:
    """(year, month) ``n`` whole months before the current one (UTC)."""
    now = datetime.now(UTC)
    index = now.year * 12 + (now.month - 1) - n
    return index // 12, index % 12 + 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def free_ports(count: int) -> list[int]:
    """``count`` consecutive free loopback ports (API replicas listen on --port, --port+1, ...)."""
    for _ in range(200):
        first = free_port()
        socks: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return list(range(first, first + count))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


PORT_TAKEN = "address already in use"


class PortTaken(RuntimeError):
    """A port we found free was taken by someone else before our child bound it."""


class Stack:
    """One `lxp-reports up --profile <profile>` process group over ``home``; with
    ``api_replicas`` > 1 the API processes answer on consecutive ports."""

    def __init__(self, home: Path, env: Mapping[str, str], *, profile: str = "embedded", api_replicas: int = 1) -> None:
        self.home = home
        self.extra_env = dict(env)
        self.profile = profile
        self.api_replicas = api_replicas
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_ports: list[int] = []
        self.dagster_port = 0
        self.code_server_port = 0
        self.starts = 0

    @property
    def api_port(self) -> int:
        return self.api_ports[0] if self.api_ports else 0

    @property
    def base(self) -> str:
        return self.bases[0]

    @property
    def bases(self) -> list[str]:
        """Base URL of every API replica."""
        return [f"http://127.0.0.1:{port}" for port in self.api_ports]

    @property
    def dagster_url(self) -> str:
        return f"http://127.0.0.1:{self.dagster_port}"

    @property
    def log_path(self) -> Path:
        return self.home / f"stack-{self.starts}.log"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, timeout: float = 180, attempts: int = 3) -> None:
        """Start on fresh free ports and wait for /healthz (200 once warehouse, Dagster webserver and storage answer).

        ``LXP_*`` variables of the test process are dropped so nothing leaks in
        from other fixtures; the module's own settings come from ``env``. The
        monthly sensor starts stopped unless ``env`` says otherwise: on a fresh
        instance it would rebuild last month for every institution at a moment
        no test chooses (a request could find its month already cached, a
        rebuild could land mid-test); tests of it start it or launch its backfill. On a
        shared machine a free port can be taken before the child binds it: then
        the stack is stopped and started again on new ports (``attempts`` in all).
        """
        for attempt in range(attempts):
            try:
                self._start(timeout)
                return
            except PortTaken:
                if attempt == attempts - 1:
                    raise

    def _start(self, timeout: float) -> None:
        assert self.proc is None, "already running"
        self.starts += 1
        self.api_ports, self.dagster_port = free_ports(self.api_replicas), free_port()
        self.code_server_port = free_port() if self.profile == "production" else 0
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LXP_")},
            "LXP_HOME": str(self.home),
            "DAGSTER_HOME": str(self.home / "dagster"),
            "LXP_JWT_SECRET": JWT_SECRET,
            "LXP_LINK_SECRET": LINK_SECRET,
            "LXP_NOTIFY_SECRET": NOTIFY_SECRET,
            "LXP_DAGSTER_URL": f"http://127.0.0.1:{self.dagster_port}",
            "LXP_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "PYTHONPATH": str(ROOT),
            "LXP_MONTHLY_SENSOR": "false",
            # Same behaviour, shorter waits: deliveries every 5 s (not 10), transient retries from 1 s (not 10).
            "LXP_DELIVERY_INTERVAL_SECONDS": "5",
            "LXP_TRANSIENT_RETRY_DELAY_SECONDS": "1",
            **self.extra_env,
        }
        with open(self.log_path, "wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orchestration.cli",
                    "up",
                    "--port",
                    str(self.api_port),
                    "--dagster-port",
                    str(self.dagster_port),
                    *(["--api-replicas", str(self.api_replicas)] if self.api_replicas != 1 else []),
                    *(["--profile", self.profile] if self.profile != "embedded" else []),
                    *(["--code-server-port", str(self.code_server_port)] if self.code_server_port else []),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if PORT_TAKEN in self.log_tail(200_000):
                self.stop()
                raise PortTaken(self.log_tail())
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"stack exited early:\n{self.log_tail()}")
            try:
                if all(httpx.get(f"{base}/healthz", timeout=2).status_code == 200 for base in self.bases):
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"stack not healthy in {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.5)

    def stop(self, timeout: float = 40) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    # -- processes (the supervisor's children) ---------------------------------

    def child_pid(self, marker: str) -> int | None:
        """Pid of the supervised child whose command line contains ``marker`` (e.g. ``uvicorn``,
        ``dagster_daemon``, the daemon: ``orchestration.dagster_daemon``): a direct child of the `up` process."""
        assert self.proc is not None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.proc.pid and fields[0] != "Z" and marker in cmdline:
                return int(entry.name)
        return None

    def kill_child(self, marker: str) -> int:
        """SIGKILL one supervised child (not its process group); returns the pid it had."""
        pid = self.child_pid(marker)
        assert pid is not None, f"no child {marker!r}:\n{self.log_tail()}"
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_healthy(self, timeout: float = 120) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(healthy, timeout, "the stack to be healthy", interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A query to the Dagster webserver (what the API sees, without the API)."""
        response = httpx.post(
            f"http://127.0.0.1:{self.dagster_port}/graphql",
            json={"query": query, "variables": dict(variables or {})},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["data"]

    def launch_backfill(self, assets: Sequence[str], partitions: Sequence[str], tags: Mapping[str, str]) -> str:
        """Start an asset backfill as an operator would from the UI; returns its id."""
        launched = self.graphql(
            _LAUNCH_BACKFILL,
            {
                "params": {
                    "assetSelection": [{"path": [name]} for name in assets],
                    "partitionNames": list(partitions),
                    "tags": [{"key": k, "value": v} for k, v in tags.items()],
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return str(launched["backfillId"])

    def backfills(self) -> list[dict[str, Any]]:
        """The latest backfills: ``id``, ``status``, ``numPartitions``, ``tags`` [{key, value}]."""
        return list(self.graphql(_BACKFILLS)["partitionBackfillsOrError"]["results"])

    def wait_backfill(self, backfill_id: str, timeout: float) -> dict[str, Any]:
        """Poll until the backfill has left REQUESTED (completed, failed or canceled); returns it."""

        def finished() -> dict[str, Any] | None:
            return next((b for b in self.backfills() if b["id"] == backfill_id and b["status"] != "REQUESTED"), None)

        try:
            return wait_until(finished, timeout, f"backfill {backfill_id} to finish", interval=2.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def run_status(self, run_id: str) -> str:
        data = self.graphql(
            "query R($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }", {"id": run_id}
        )
        return str(data["runOrError"].get("status") or data["runOrError"]["__typename"])

    def run_worker_pid(self, run_id: str) -> int | None:
        """The pid of the run's worker process, from Dagster's "Started process for run (pid: N)." event."""
        data = self.graphql(
            "query L($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { "
            "__typename ... on EngineEvent { message } } } } }",
            {"id": run_id},
        )
        events = (data.get("logsForRun") or {}).get("events") or []
        found = [
            int(m.group(1))
            for e in events
            if (m := re.match(r"Started process for run \(pid: (\d+)\)", e.get("message") or ""))
        ]
        return found[-1] if found else None

    def run_count(self) -> int:
        """Runs the API launched (they carry ``lxp/claim``). The monthly sensor's
        backfill of last month may start in any stack at any time and is not
        counted: a test asking "did this request launch a run" must not see it."""
        data = self.graphql(
            "query { runsOrError(limit: 100000) { ... on Runs { results { runId tags { key value } } } } }"
        )
        return sum(any(tag["key"] == TAG_CLAIM for tag in run["tags"]) for run in data["runsOrError"]["results"])

    # -- API helpers -----------------------------------------------------------

    def request(self, path: str, bearer: str, replica: int = 0, **params: Any) -> httpx.Response:
        """GET ``path`` from API replica number ``replica`` (0-based)."""
        return httpx.get(
            f"{self.bases[replica]}{path}", params=params, headers={"Authorization": f"Bearer {bearer}"}, timeout=60
        )

    def wait_job(self, job_id: str, bearer: str, timeout: float = 180) -> dict[str, Any]:
        """Poll GET /institution/reports/jobs/{id} until the job has finished."""

        def probe() -> dict[str, Any] | None:
            job = self.request(f"/institution/reports/jobs/{job_id}", bearer).json()
            return job if job.get("status") in FINISHED else None

        try:
            return wait_until(probe, timeout, f"job {job_id} to finish", interval=1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None
