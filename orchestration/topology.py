"""Which processes make up a deployment profile, and what production needs before it starts.

Two profiles of ``lxp-reports up``:

* ``embedded`` (the demo): the Dagster webserver and daemon load the code
  in-process (``workspace.yaml``) and one API process; state is SQLite/DuckDB
  files under ``$LXP_HOME``.
* ``production``: every part is its own process and talks to the others only
  over the network, as it would across pods. The code location is a gRPC code
  server (``dagster api grpc``) that the webserver and the daemon reach through
  ``deploy/workspace.production.yaml`` (host and port from
  ``LXP_CODE_SERVER_HOST``/``LXP_CODE_SERVER_PORT``), and N API replicas listen
  on consecutive ports. The state services are *not* started here: their URLs
  come from settings (PostgreSQL for Dagster storage, the request/outbox
  database and the warehouse; Redis for the shared rate limit; S3 for reports
  and compute logs), and :func:`production_problems` refuses to start a
  "production" stack whose state would silently stay per process or per
  machine, or whose secrets are weak (``Settings.secret_problems``). Its
  children run with ``LXP_ENV=production``, so each of them refuses weak
  secrets on its own as well.

The supervisor (``orchestration/cli.py``) only receives the ``(name, argv)``
list; this module is the one place that knows the shape of a topology.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from assets.contract import LOCATION
from orchestration.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("embedded", "production")
LOCATION_NAME = LOCATION  # the contract's code location name (deploy/workspace.production.yaml repeats it)
CODE_MODULE = "orchestration.definitions"
EMBEDDED_WORKSPACE = ROOT / "workspace.yaml"
PRODUCTION_WORKSPACE = ROOT / "deploy" / "workspace.production.yaml"
# The production workspace file reads these (``{env: ...}``); Settings holds their values.
CODE_SERVER_HOST_ENV = "LXP_CODE_SERVER_HOST"
CODE_SERVER_PORT_ENV = "LXP_CODE_SERVER_PORT"
DAGSTER_PG_URL_ENV = "DAGSTER_PG_URL"
ENV_ENV = "LXP_ENV"
CODE_SERVER_WAIT_SECONDS = 300.0

Process = tuple[str, list[str]]


@dataclass(frozen=True)
class Layout:
    """Where each listening process binds (API replicas take ``api_port``, ``api_port + 1``, ...)."""

    host: str = "127.0.0.1"
    api_port: int = 8000
    dagster_port: int = 3000
    code_server_port: int = 4000
    api_replicas: int = 1

    def api_ports(self) -> list[int]:
        return [self.api_port + i for i in range(self.api_replicas)]


#: The daemon: ``dagster-daemon run`` plus keeping run workers warm from its start (``orchestration.dagster_daemon``).
DAEMON = [sys.executable, "-m", "orchestration.dagster_daemon"]


def _bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _api(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "api.app:app", "--host", host, "--port", str(port)]


def api_process_names(profile: str, replicas: int) -> list[str]:
    """``api`` for the single embedded API, ``api-1`` ... ``api-N`` for production replicas."""
    return ["api"] if profile == "embedded" else [f"api-{i + 1}" for i in range(replicas)]


def processes(profile: str, layout: Layout, *, with_dagster: bool = True, with_api: bool = True) -> list[Process]:
    """The ``(name, argv)`` of every process of ``profile``, in start order."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    procs: list[Process] = []
    if profile == "embedded":
        target = ["-w", str(EMBEDDED_WORKSPACE)] if EMBEDDED_WORKSPACE.exists() else ["-m", CODE_MODULE]
        if with_dagster:
            web = [_bin("dagster-webserver"), *target, "-h", layout.host, "-p", str(layout.dagster_port)]
            procs += [("dagster-webserver", web), ("dagster-daemon", [*DAEMON, "run", *target])]
        if with_api:
            procs.append(("api", _api(layout.host, layout.api_port)))
        return procs
    if with_dagster:
        code_server = [
            _bin("dagster"),
            "api",
            "grpc",
            "-m",
            CODE_MODULE,
            "--location-name",
            LOCATION_NAME,
            "-h",
            layout.host,
            "-p",
            str(layout.code_server_port),
        ]
        # Webserver and daemon load the location over gRPC; they start once it answers
        # (a webserver that came up first would keep a "location failed to load" until reloaded).
        wait = [sys.executable, "-m", "orchestration.topology", "wait-code-server", "--"]
        target = ["-w", str(PRODUCTION_WORKSPACE)]
        web = [*wait, _bin("dagster-webserver"), *target, "-h", layout.host, "-p", str(layout.dagster_port)]
        procs += [
            ("code-server", code_server),
            ("dagster-webserver", web),
            ("dagster-daemon", [*wait, *DAEMON, "run", *target]),
        ]
    if with_api:
        names = api_process_names(profile, layout.api_replicas)
        procs += [(name, _api(layout.host, port)) for name, port in zip(names, layout.api_ports(), strict=True)]
    return procs


def environment(profile: str, settings: Settings, layout: Layout, base: Mapping[str, str]) -> dict[str, str]:
    """The children's environment: ``base`` plus what the profile's processes need to find each other."""
    env = dict(base)
    env["LXP_HOME"] = str(settings.home.resolve())
    env["DAGSTER_HOME"] = str(settings.dagster_home)
    env.setdefault("LXP_DAGSTER_URL", f"http://{layout.host}:{layout.dagster_port}")
    env.setdefault("LXP_PUBLIC_BASE_URL", f"http://{layout.host}:{layout.api_port}")
    if profile == "production":
        env[ENV_ENV] = "production"  # each child refuses weak secrets itself (Settings.production_problems)
        env[CODE_SERVER_HOST_ENV] = layout.host
        env[CODE_SERVER_PORT_ENV] = str(layout.code_server_port)
    return env


def production_problems(settings: Settings, environ: Mapping[str, str], api_replicas: int) -> list[str]:
    """Why this configuration is not a production topology (empty when it is).

    Every piece of shared state must live in a network service: a SQLite outbox,
    a DuckDB warehouse file, local report storage or an in-memory rate limit
    would each be private to one process or one machine, so two replicas would
    disagree (double runs, a 120/min limit, links to files another pod cannot serve).
    And no secret may be unset, published or short (``Settings.secret_problems``, the one rule
    the API and the code location apply under ``LXP_ENV=production``)."""
    problems = []
    if not environ.get(DAGSTER_PG_URL_ENV, "").startswith("postgresql"):
        problems.append(f"{DAGSTER_PG_URL_ENV} must be postgresql+psycopg2://... (Dagster run/event/schedule storage)")
    if not settings.ledger_url.startswith(("postgresql", "postgres")):
        problems.append("LXP_LEDGER_URL must be a postgresql:// URL (requests, in-flight claims and the outbox)")
    if not settings.warehouse_url.startswith(("postgresql", "postgres")):
        problems.append("LXP_WAREHOUSE_URL must be a postgresql:// URL (the warehouse, shared by every process)")
    if not settings.storage.startswith("s3://"):
        problems.append("LXP_STORAGE must be s3://bucket/prefix (reports readable from every replica)")
    if not settings.compute_logs.startswith("s3://"):
        problems.append("LXP_COMPUTE_LOGS must be s3://bucket/prefix (Dagster compute logs off the run's disk)")
    if api_replicas > 1 and not settings.rate_limit_storage.startswith("redis"):
        problems.append("LXP_RATE_LIMIT_STORAGE must be redis://host:port with several API replicas (one shared limit)")
    if api_replicas < 1:
        problems.append("--api-replicas must be at least 1")
    return problems + settings.secret_problems()


def wait_code_server(host: str, port: int, timeout: float) -> bool:
    """True once the gRPC code server at host:port answers a ping (within ``timeout`` seconds)."""
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(host=host, port=port)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping("topology")
            return True
        except Exception:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchestration.topology wait-code-server -- CMD...``: wait for the code server
    named by the environment, then become CMD (``exec``, so signals reach it directly)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.topology", usage="%(prog)s wait-code-server [--timeout SECONDS] -- COMMAND..."
    )
    parser.add_argument("action", choices=["wait-code-server"])
    parser.add_argument("--timeout", type=float, default=CODE_SERVER_WAIT_SECONDS)
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        parser.error("missing the command to run once the code server answers")
    host = os.environ.get(CODE_SERVER_HOST_ENV, "127.0.0.1")
    port = int(os.environ.get(CODE_SERVER_PORT_ENV, "4000"))
    if not wait_code_server(host, port, args.timeout):
        print(f"code server {host}:{port} did not answer within {args.timeout:.0f}s", file=sys.stderr)
        return 1
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
