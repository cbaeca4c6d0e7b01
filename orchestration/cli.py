"""``lxp-reports``: generate the demo warehouse, run the stack, mint demo tokens,
inspect the notification outbox.

:func:`main` is an entry point: it reads the settings from the environment once
and hands them to the command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestration import topology
from orchestration.settings import Settings, exit_if_unsafe
from orchestration.topology import Layout

ROOT = Path(__file__).resolve().parent.parent


def _cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.warehouse.client import duckdb_path
    from orchestration.warehouse.generate import generate_warehouse, resolve_now, with_institutions
    from orchestration.warehouse.load import is_postgres_url

    out = args.out or str((settings.home / "warehouse.duckdb").resolve())
    if not is_postgres_url(out):
        Path(duckdb_path(out)).parent.mkdir(parents=True, exist_ok=True)
    scale = with_institutions(args.scale, args.institutions) if args.institutions else args.scale
    now = resolve_now(args.as_of)
    started = time.perf_counter()
    counts = generate_warehouse(scale, args.seed, out, now=now)
    took = time.perf_counter() - started
    for table, n in sorted(counts.items()):
        print(f"{table:28s} {n:>12,}")
    print(
        f"generated scale={args.scale} institutions={counts['institutions']} seed={args.seed} "
        f"as-of={now:%Y-%m-%dT%H:%M:%S}Z into {out} in {took:.1f}s"
    )
    return 0


def _as_of(text: str) -> datetime:
    """``--as-of``: YYYY-MM-DD (00:00 UTC of that day) or an ISO datetime (naive = UTC)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD or an ISO-8601 datetime, got {text!r}") from None


def _cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    import jwt

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


def _child_env(args: argparse.Namespace, settings: Settings) -> dict[str, str]:
    return topology.environment(getattr(args, "profile", "embedded"), settings, _layout(args), os.environ)


def _processes(args: argparse.Namespace, with_dagster: bool, with_api: bool) -> list[tuple[str, list[str]]]:
    profile = getattr(args, "profile", "embedded")
    with_api = with_api and _api_available()
    return topology.processes(profile, _layout(args), with_dagster=with_dagster, with_api=with_api)


def _api_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("api.app") is not None


def _supervise(
    procs: list[tuple[str, list[str]]],
    env: dict[str, str],
    replicas: Collection[str] = frozenset(),
    **options: Any,
) -> int:
    """Run the children until SIGTERM/Ctrl-C, restarting any that crash (orchestration/supervisor.py).
    ``replicas`` are interchangeable copies (API replicas): a crashed one is restarted like any
    child, and its log line names the replicas still serving meanwhile. ``options`` tune the
    backoff (tests)."""
    from orchestration.supervisor import Supervisor

    return Supervisor(procs, env, cwd=ROOT, replicas=replicas, **options).run()


def _cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.instance_config import ensure_instance
    from orchestration.warehouse.client import duckdb_path

    env = _child_env(args, settings)
    if args.profile == "production":
        problems = topology.production_problems(settings, os.environ, args.api_replicas)
        if problems:
            print("not a production topology:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 2
    exit_if_unsafe(settings, "lxp-reports up")  # LXP_ENV=production with the embedded profile
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


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    exit_if_unsafe(settings, "lxp-reports serve")
    env = _child_env(args, settings)
    if not _api_available():
        print("the API package is not installed", file=sys.stderr)
        return 2
    return _supervise(_processes(args, with_dagster=False, with_api=True), env)


def _cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.ledger import Ledger

    ledger = Ledger.from_settings(settings)
    ledger.migrate()
    deliveries = ledger.deliveries
    if args.action == "retry":
        if args.id is None:
            print("usage: lxp-reports outbox retry ID", file=sys.stderr)
            return 2
        deliveries.retry(args.id)
        print(f"notification {args.id} queued for delivery again")
        return 0
    rows = deliveries.list(status=args.status, limit=args.limit)
    print(f"{'id':>6} {'channel':10} {'state':8} {'attempts':>8} {'job':40} {'user':>8} {'report':18} last_error")
    for n in rows:  # a recipient not routed to channels yet has no delivery id: "-"
        print(
            f"{n.id or '-':>6} {n.channel or '-':10} {n.state:8} {n.attempts:>8} {n.job_id[:40]:40} "
            f"{n.recipient_user_id:>8} {n.report:18} {(n.last_error or '')[:60]}"
        )
    return 0


def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.ledger import migrate

    url = settings.ledger
    changed = migrate.upgrade(url, args.revision)
    print(f"ledger at revision {migrate.current_of(url)}" + (" (migrated)" if changed else " (already up to date)"))
    return 0


def _cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.provision import init

    for line in init(settings, os.environ):
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lxp-reports", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="build the deterministic synthetic warehouse")
    gen.add_argument("--scale", choices=["tiny", "small", "demo", "large"], default="demo")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument(
        "--as-of",
        type=_as_of,
        default=None,
        help="the generator's clock: YYYY-MM-DD (00:00 UTC) or ISO datetime; default 00:00 UTC today. "
        "Data = the 12 months before its month plus its month up to it.",
    )
    gen.add_argument(
        "--institutions",
        type=int,
        default=0,
        help="N institutions (ids 1..N) with the scale's per-institution sizes, e.g. --scale small --institutions 1000",
    )
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

    ini = sub.add_parser(
        "init",
        help="create the PostgreSQL databases (DAGSTER_PG_URL, LXP_LEDGER_URL, LXP_WAREHOUSE_URL) and S3 buckets "
        "(LXP_STORAGE, LXP_COMPUTE_LOGS) that are missing; idempotent",
    )
    ini.set_defaults(func=_cmd_init)

    mig = sub.add_parser("migrate", help="bring the request ledger database (LXP_LEDGER_URL) to the current schema")
    mig.add_argument("revision", nargs="?", default="head")
    mig.set_defaults(func=_cmd_migrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args, Settings()) or 0)


if __name__ == "__main__":
    sys.exit(main())
