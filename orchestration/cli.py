"""``lxp-reports``: generate the demo warehouse, run the stack, mint demo tokens,
inspect the notification outbox."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path

from orchestration import topology
from orchestration.settings import get_settings
from orchestration.topology import Layout

ROOT = Path(__file__).resolve().parent.parent


def _cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.warehouse.client import duckdb_path
    from orchestration.warehouse.generate import generate_warehouse
    from orchestration.warehouse.load import is_postgres_url

    settings = get_settings()
    out = args.out or str((settings.home / "warehouse.duckdb").resolve())
    if not is_postgres_url(out):
        Path(duckdb_path(out)).parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    counts = generate_warehouse(args.scale, args.seed, out)
    took = time.perf_counter() - started
    for table, n in sorted(counts.items()):
        print(f"{table:28s} {n:>12,}")
    print(f"generated scale={args.scale} seed={args.seed} into {out} in {took:.1f}s")
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    import jwt

    settings = get_settings()
    claims: dict[str, object] = {
        "institutionId": args.institution,
        "userId": args.user,
        "subdomain": args.subdomain,
        "privilegio_id": args.privilege,
    }
    if args.expires_in:
        claims["exp"] = int(time.time()) + args.expires_in
    algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
    if "RS256" in algorithms and settings.jwt_private_key and (args.algorithm == "RS256" or "HS256" not in algorithms):
        print(jwt.encode(claims, settings.jwt_private_key, algorithm="RS256"))
    else:
        print(jwt.encode(claims, settings.jwt_secret, algorithm="HS256"))
    return 0


def _layout(args: argparse.Namespace) -> Layout:
    return Layout(
        host=args.host,
        api_port=args.port,
        dagster_port=args.dagster_port,
        code_server_port=getattr(args, "code_server_port", 4000),
        api_replicas=getattr(args, "api_replicas", 1),
    )


def _child_env(args: argparse.Namespace) -> dict[str, str]:
    return topology.environment(getattr(args, "profile", "embedded"), get_settings(), _layout(args), os.environ)


def _processes(args: argparse.Namespace, with_dagster: bool, with_api: bool) -> list[tuple[str, list[str]]]:
    profile = getattr(args, "profile", "embedded")
    with_api = with_api and _api_available()
    return topology.processes(profile, _layout(args), with_dagster=with_dagster, with_api=with_api)


def _api_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("api.app") is not None


def _supervise(procs: list[tuple[str, list[str]]], env: dict[str, str], replicas: Collection[str] = frozenset()) -> int:
    """Start children in their own process groups; stop them all on SIGTERM/Ctrl-C
    or as soon as one dies (a half-running stack is worse than none). ``replicas``
    are interchangeable copies (API replicas): losing some of them is reported and
    the others keep serving; the stack stops when the last one is gone."""
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False
    reported: set[str] = set()

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for name, cmd in procs:
        children.append((name, subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)))
    code = 0
    try:
        while not stopping:
            for name, child in children:
                if child.poll() is None or name in reported:
                    continue
                alive = [n for n, c in children if n in replicas and c.poll() is None]
                if name in replicas and alive:
                    print(f"{name} exited with {child.returncode}; still serving: {', '.join(alive)}", file=sys.stderr)
                    reported.add(name)
                    continue
                print(f"{name} exited with {child.returncode}; stopping the stack", file=sys.stderr)
                code = child.returncode or 1
                stopping = True
            time.sleep(0.3)
    finally:
        for _, child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.time() + 20
        for _, child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    return code


def _cmd_up(args: argparse.Namespace) -> int:
    from orchestration.instance_config import ensure_instance
    from orchestration.warehouse.client import duckdb_path

    settings = get_settings()
    env = _child_env(args)
    if args.profile == "production":
        problems = topology.production_problems(settings, os.environ, args.api_replicas)
        if problems:
            print("not a production topology:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 2
    ensure_instance(settings, args.profile)
    warehouse = settings.warehouse
    if warehouse.startswith("duckdb:") and not Path(duckdb_path(warehouse)).exists():
        print(f"no warehouse at {warehouse}; run `lxp-reports generate --scale demo` first", file=sys.stderr)
        return 2
    procs = _processes(args, with_dagster=True, with_api=True)
    host = args.host
    print(f"Dagster UI:  http://{host}:{args.dagster_port}")
    if args.profile == "production":
        print(f"Code server: {host}:{args.code_server_port} (gRPC)")
    api_names = set(topology.api_process_names(args.profile, args.api_replicas))
    for (name, _), port in zip([p for p in procs if p[0] in api_names], _layout(args).api_ports(), strict=False):
        print(f"API docs:    http://{host}:{port}/docs  ({name})")
    sys.stdout.flush()
    return _supervise(procs, env, replicas=api_names if len(api_names) > 1 else set())


def _cmd_serve(args: argparse.Namespace) -> int:
    env = _child_env(args)
    if not _api_available():
        print("the API package is not installed", file=sys.stderr)
        return 2
    return _supervise(_processes(args, with_dagster=False, with_api=True), env)


def _cmd_outbox(args: argparse.Namespace) -> int:
    from orchestration.outbox import Outbox

    settings = get_settings()
    outbox = Outbox.from_settings(settings)
    outbox.create_schema()
    if args.action == "retry":
        if args.id is None:
            print("usage: lxp-reports outbox retry ID", file=sys.stderr)
            return 2
        outbox.retry(args.id)
        print(f"notification {args.id} queued for delivery again")
        return 0
    rows = outbox.list(status=args.status, limit=args.limit)
    print(f"{'id':>6} {'state':8} {'attempts':>8} {'job':40} {'user':>8} {'report':18} last_error")
    for n in rows:
        print(
            f"{n.id:>6} {n.state:8} {n.attempts:>8} {n.job_id[:40]:40} {n.recipient_user_id:>8} {n.report:18} {(n.last_error or '')[:60]}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lxp-reports", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="build the deterministic synthetic warehouse")
    gen.add_argument("--scale", choices=["tiny", "small", "demo", "large"], default="demo")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--out", default="", help="DuckDB file or postgresql:// URL (default $LXP_HOME/warehouse.duckdb)")
    gen.set_defaults(func=_cmd_generate)

    for name, helptext, fn in (
        ("up", "run Dagster webserver + daemon + API", _cmd_up),
        ("serve", "run the API alone", _cmd_serve),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--dagster-port", type=int, default=3000)
        p.add_argument("--host", default="127.0.0.1")
        p.set_defaults(func=fn)
        if name == "up":
            p.add_argument(
                "--profile",
                choices=topology.PROFILES,
                default="embedded",
                help="embedded: in-process code, local files; production: gRPC code server, N API replicas, "
                "state in PostgreSQL/Redis/S3 named by the environment",
            )
            p.add_argument("--api-replicas", type=int, default=1, help="production: API processes on --port, +1, ...")
            p.add_argument("--code-server-port", type=int, default=4000, help="production: gRPC code server port")

    tok = sub.add_parser("token", help="print a signed JWT for demos and tests")
    tok.add_argument("--institution", type=int, required=True)
    tok.add_argument("--user", type=int, required=True)
    tok.add_argument("--privilege", type=int, default=2, help="privilegio_id (4 = student)")
    tok.add_argument("--subdomain", default="demo")
    tok.add_argument("--expires-in", type=int, default=24 * 3600, help="seconds; 0 = no exp claim")
    tok.add_argument("--algorithm", choices=["HS256", "RS256"], default="HS256")
    tok.set_defaults(func=_cmd_token)

    out = sub.add_parser("outbox", help="list notifications, or `outbox retry ID`")
    out.add_argument("action", nargs="?", choices=["list", "retry"], default="list")
    out.add_argument("id", nargs="?", type=int)
    out.add_argument("--status", choices=["pending", "sending", "sent", "dead"])
    out.add_argument("--limit", type=int, default=50)
    out.set_defaults(func=_cmd_outbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
