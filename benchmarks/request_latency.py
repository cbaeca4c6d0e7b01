"""Benchmark: how long a requester waits for the download link (request -> webhook).

    PYTHONPATH=. .venv/bin/python benchmarks/request_latency.py [--requests 6] [--delivery-interval 10]
        [--profile embedded|production] [--large PATH] [--breakdown] [--status-poll S]

Generates the ``tiny`` warehouse in a temp ``LXP_HOME``, starts ``lxp-reports up``
with a webhook receiver and an SMTP server, then makes ``--requests`` distinct small
requests one after another (alternately a month of storyboard-usage, a partition
run, and a date range of the catalog, an ad-hoc run), each waited for until its
webhook arrived, and finally a cache hit (a colleague asks for the first month
again).

``--profile embedded`` (default): Dagster webserver + daemon + API, loopback only,
SQLite ledger, local files. ``--profile production``: the production topology as
``tests/topology/test_production.py`` runs it — a gRPC code server, the webserver,
the daemon and two API replicas (``Stack(profile="production", api_replicas=2)``),
Dagster storage, ledger and warehouse in a throwaway PostgreSQL, the rate limit in
redis-server, reports and compute logs in a moto S3 server (``tests/services``);
requests alternate between the two replicas.

``--large PATH``: the warehouse is the ``large`` scale at ``PATH`` (a DuckDB file,
generated there with ``lxp-reports generate --scale large`` when absent; copied
into PostgreSQL under ``--profile production``, whose warehouse must be shared),
the small requests go to institution 1 (a regular institution of that scale) and
one more request is made last: the big institution's (the last id's)
storyboard-usage for its campaign month, the last full month (1.23M rows, xlsx).

Per request it prints, in seconds from sending the HTTP request:

* ``http``      — the API's answer (job id, or ``cached: true``);
* ``started``   — the job first seen ``running`` (polling GET /institution/reports/jobs/{id});
* ``succeeded`` — the job first seen ``succeeded`` by the same polling;
* ``webhook``   — the webhook for this requester received;
* ``e-mail``    — the e-mail for this requester received.

Polling runs every 0.1 s, so each figure is up to 0.1 s late. ``--status-poll S`` asks the API
for the job's status only every ``S`` seconds (``started``/``succeeded`` up to ``S`` late; the
webhook and e-mail, seen in this process, are still checked every 0.1 s): each status poll costs
the API and the webserver (a GraphQL ``runOrError``) CPU, ≈ 13 ms together (measured), which on 2 cores a
run that keeps both busy (the big institution's month) goes without; use ``--breakdown`` for the
run's exact times.
``--delivery-interval`` sets ``LXP_DELIVERY_INTERVAL_SECONDS`` (the delivery
sensor's tick; the production default is 10 s).

``--breakdown`` also prints where each run's time went, from the run's own event
log (read through the webserver's GraphQL, so exact to the millisecond, not
polled): the request's send time, then RUN_ENQUEUED, RUN_STARTING,
the worker's "Started process for run" engine event, RUN_START, STEP_START,
STEP_SUCCESS and RUN_SUCCESS; see ``PHASES``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.stack import Stack, months_ago, token  # noqa: E402
from tests.services.http_receiver import HttpReceiver  # noqa: E402
from tests.services.postgres import postgres_server  # noqa: E402
from tests.services.redis import running_redis  # noqa: E402
from tests.services.s3 import CREDENTIALS, free_port, start_moto, stop_moto  # noqa: E402
from tests.services.smtp import running_smtp  # noqa: E402

POLL = 0.1
#: One HTTP client (keep-alive) for the polling: ``httpx.get`` builds a new client, and with it an SSL context
#: (≈ 10 ms of CPU), for every call — at 10 polls a second that was CPU the run, on the same 2 cores, went
#: without (2-4 s of CPU during the big institution's 15-36 s runs on a loaded machine, now ≈ 0.3 s;
#: docs/benchmarks.md, "The big institution's month inside a run").
_POLLER = httpx.Client(timeout=60)

_EVENTS = """query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run {
  eventConnection(limit: 1000) { events { __typename ... on MessageEvent { timestamp message } } } } } }"""
#: (column, from, to): the phases of a run, between marks of ``_marks`` ("request" is when the HTTP request was sent).
PHASES = (
    ("launch", "request", "RunEnqueuedEvent"),  # API: cache look-up, claim, launchRun over GraphQL
    # The daemon's run coordinator: wait for its next dequeue iteration, check the limits, report RUN_STARTING
    # (Dagster 1.13 writes no RUN_DEQUEUED event).
    ("queue", "RunEnqueuedEvent", "RunStartingEvent"),
    # The run launcher asks the code server to start the run: it spawns a Python process, which imports
    # Dagster and opens the instance.
    ("worker up", "RunStartingEvent", "worker"),
    ("code load", "worker", "RunStartEvent"),  # the worker loads the code location and builds the job
    ("to step", "RunStartEvent", "ExecutionStepStartEvent"),  # plan, resources, pool slot
    ("step", "ExecutionStepStartEvent", "ExecutionStepSuccessEvent"),  # the report: query, render, store
    ("run end", "ExecutionStepSuccessEvent", "RunSuccessEvent"),  # success hook (delivery), run end events
    ("total", "request", "RunSuccessEvent"),
)


@dataclass
class Row:
    name: str
    http: float
    started: float | None = None
    succeeded: float | None = None
    webhook: float | None = None
    email: float | None = None
    sent: float = field(default=0.0, repr=False)  # wall-clock send time (event timestamps are wall-clock too)
    run_id: str | None = field(default=None, repr=False)
    rows: int | None = field(default=None, repr=False)  # the report's rows, as the job endpoint says


def _people(warehouse: Path, institution: int) -> list[tuple[int, str, str]]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT u.id, u.email, i.subdomain FROM users u JOIN institutions i ON i.id = u.institution_id "
            "WHERE u.institution_id = ? AND u.privilege_id <> 4 AND u.deleted_at IS NULL AND u.email <> '' "
            "ORDER BY u.id",
            [institution],
        ).fetchall()
    return [(int(a), str(b), str(c)) for a, b, c in rows]


def _measure(
    stack: Stack,
    receiver: HttpReceiver,
    smtp: object,
    name: str,
    path: str,
    user: tuple[int, str, str],
    institution: int,
    params: dict[str, object],
    timeout: float,
    replica: int = 0,
    status_poll: float = POLL,
) -> Row:
    user_id, email, subdomain = user
    bearer = token(institution, user_id, subdomain)
    seen_hooks = len(receiver.requests)
    seen_mails = len(smtp.messages)  # type: ignore[attr-defined]
    sent, t0 = time.time(), time.monotonic()
    response = stack.request(path, bearer, replica=replica, **params)
    row = Row(name, time.monotonic() - t0, sent=sent)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    job_id = results.get("id")
    row.run_id = None if results.get("cached") else job_id
    deadline = t0 + timeout
    next_status = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        if row.webhook is None and any(
            r.json().get("userId") == user_id and 200 <= r.status < 300 for r in list(receiver.requests)[seen_hooks:]
        ):
            row.webhook = now
        if row.email is None and any(email in m.rcpt_tos for m in list(smtp.messages)[seen_mails:]):  # type: ignore[attr-defined]
            row.email = now
        if job_id and row.succeeded is None and now >= next_status:
            next_status = now + status_poll
            job = _POLLER.get(
                f"{stack.bases[replica]}/institution/reports/jobs/{job_id}",
                headers={"Authorization": f"Bearer {bearer}"},
            ).json()
            status = job.get("status")
            if status == "running" and row.started is None:
                row.started = time.monotonic() - t0
            if status == "succeeded":
                row.succeeded = time.monotonic() - t0
                row.rows = job.get("rows")
                row.started = row.started or row.succeeded
            elif status in ("failed", "canceled"):
                raise SystemExit(f"{name}: job {job_id} {status}")
        if row.webhook is not None and row.email is not None and (row.succeeded is not None or not job_id):
            break
        time.sleep(POLL)
    return row


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _marks(stack: Stack, row: Row) -> dict[str, float]:
    """Wall-clock time of each mark of ``PHASES`` in ``row``'s run (the first event of each kind)."""
    data = stack.graphql(_EVENTS, {"runId": row.run_id})["runOrError"]
    marks = {"request": row.sent}
    for event in data.get("eventConnection", {}).get("events", []):
        kind = event["__typename"]
        if kind == "EngineEvent" and (event.get("message") or "").startswith("Started process for run"):
            kind = "worker"
        if "timestamp" in event:
            marks.setdefault(kind, int(event["timestamp"]) / 1000)
    return marks


def _phases(marks: dict[str, float]) -> list[float | None]:
    return [marks[b] - marks[a] if a in marks and b in marks else None for _, a, b in PHASES]


def _print_breakdown(rows: list[Row], phases: list[list[float | None]]) -> None:
    print("\nwhere each run's time went (s, from the run's event log):")
    print("| request | " + " | ".join(name for name, _, _ in PHASES) + " |")
    print("|---|" + "---:|" * len(PHASES))
    for row, values in zip(rows, phases, strict=True):
        print(f"| {row.name} | " + " | ".join(_fmt(v) for v in values) + " |")
    for label, pick in (("min", min), ("median", statistics.median)):
        cells = []
        for i in range(len(PHASES)):
            column = [v[i] for v in phases if v[i] is not None]
            cells.append(_fmt(pick(column) if column else None))
        print(f"| **{label}** | " + " | ".join(cells) + " |")


def _server_url(database_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``database_url``."""
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))


def _copy_to_postgres(duckdb_file: Path, url: str) -> None:
    """Every warehouse table of ``duckdb_file`` into the database at ``url`` (the generator's own
    PostgreSQL loader: same DDL, same indexes), so both profiles query the same rows."""
    import duckdb

    from orchestration.warehouse.load import load_postgres
    from orchestration.warehouse.tables import table_schemas

    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        frames = {table: con.sql(f"SELECT * FROM {table}").pl() for table in table_schemas()}
    load_postgres(frames, url)


@contextmanager
def _production_services(home: Path, warehouse: Path) -> Iterator[dict[str, str]]:
    """PostgreSQL (Dagster storage, ledger, warehouse), redis-server and a moto S3 server, as
    tests/topology/test_production.py gives them to the stack; yields the stack's environment."""
    with ExitStack() as services:
        server = services.enter_context(postgres_server())
        redis_dir = home / "redis"
        redis_dir.mkdir()
        redis = services.enter_context(running_redis(redis_dir))
        port = free_port()
        services.callback(stop_moto, start_moto(port))
        env = {
            "DAGSTER_PG_URL": _server_url(server, "dagster").replace("postgresql://", "postgresql+psycopg2://", 1),
            "LXP_LEDGER_URL": _server_url(server, "ledger"),
            "LXP_WAREHOUSE_URL": _server_url(server, "warehouse"),
            "LXP_RATE_LIMIT_STORAGE": redis,
            "LXP_STORAGE": "s3://latency-reports/lxp/reports",
            "LXP_COMPUTE_LOGS": "s3://latency-dagster/compute-logs",
            "LXP_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            **CREDENTIALS,
        }
        # `lxp-reports init`, as docs/topology.md runs it: the three databases and two buckets.
        subprocess.run(
            [sys.executable, "-m", "orchestration.cli", "init"],
            cwd=ROOT,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("LXP_")}, **env, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
            timeout=120,
        )
        t = time.monotonic()
        _copy_to_postgres(warehouse, env["LXP_WAREHOUSE_URL"])
        print(f"warehouse copied into PostgreSQL in {time.monotonic() - t:.1f} s", flush=True)
        yield env


def _large_warehouse(path: Path) -> Path:
    """The ``large`` warehouse at ``path``, generated there first when absent (the documented command)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        t = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "orchestration.cli", "generate", "--scale", "large", "--out", str(path)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
        )
        print(f"generated the large warehouse at {path} in {time.monotonic() - t:.1f} s", flush=True)
    return path.resolve()


def _big_institution(warehouse: Path) -> int:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return int(con.execute("SELECT max(id) FROM institutions").fetchone()[0])  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--delivery-interval", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--profile", choices=("embedded", "production"), default="embedded")
    parser.add_argument(
        "--large",
        type=Path,
        help="a `large` DuckDB warehouse (generated when absent): adds its big institution's storyboard month",
    )
    parser.add_argument("--breakdown", action="store_true", help="print each run's phases from its event log")
    parser.add_argument(
        "--status-poll", type=float, default=POLL, help="seconds between job-status polls (default 0.1)"
    )
    args = parser.parse_args()

    from orchestration.warehouse.generate import generate_warehouse

    production = args.profile == "production"
    replicas = 2 if production else 1
    with tempfile.TemporaryDirectory(prefix="lxp-latency-", ignore_cleanup_errors=True) as tmp, ExitStack() as up:
        home = Path(tmp)
        if args.large:
            warehouse = _large_warehouse(args.large)
        else:
            warehouse = home / "warehouse.duckdb"
            generate_warehouse("tiny", 42, str(warehouse))
        people = _people(warehouse, 1)
        big = _big_institution(warehouse) if args.large else None
        env = {
            "LXP_RATE_LIMIT": "100000/minute",
            "LXP_DELIVERY_INTERVAL_SECONDS": str(args.delivery_interval),
        }
        if production:
            env.update(up.enter_context(_production_services(home, warehouse)))
        elif args.large:
            env["LXP_WAREHOUSE_URL"] = f"duckdb:///{warehouse}"
        receiver = HttpReceiver().start()
        up.callback(receiver.stop)
        smtp = up.enter_context(running_smtp())
        env.update({"LXP_NOTIFY_URL": receiver.url, "LXP_SMTP_URL": smtp.url})
        stack = Stack(home, env, profile=args.profile, api_replicas=replicas)
        t = time.monotonic()
        stack.start(timeout=300)
        up.callback(stack.stop)
        print(
            f"{args.profile} stack up in {time.monotonic() - t:.1f} s ({replicas} API replica(s); delivery sensor "
            f"every {args.delivery_interval} s; warehouse {warehouse.name})",
            flush=True,
        )
        rows: list[Row] = []
        for i in range(args.requests):
            if i % 2 == 0:
                year, month = months_ago(1 + i // 2)
                name, path = f"storyboard-usage {year}-{month:02d} (partition)", "storyboard-usage"
                params: dict[str, object] = {"month": month, "year": year}
            else:
                year, month = months_ago(1)
                day = 1 + i // 2
                name, path = f"catalog {year}-{month:02d}-01..{day + 1:02d} (ad-hoc)", "catalog"
                params = {
                    "start_date": f"{year}-{month:02d}-01",
                    "end_date": f"{year}-{month:02d}-{day + 1:02d}",
                }
            row = _measure(
                stack,
                receiver,
                smtp,
                name,
                f"/institution/reports/{path}",
                people[0],
                1,
                params,
                args.timeout,
                replica=i % replicas,
                status_poll=args.status_poll,
            )
            rows.append(row)
            print(f"  {name}: {row}", flush=True)
        year, month = months_ago(1)
        hit = _measure(
            stack,
            receiver,
            smtp,
            "cache hit (colleague, first month)",
            "/institution/reports/storyboard-usage",
            people[1],
            1,
            {"month": month, "year": year},
            args.timeout,
            replica=args.requests % replicas,
            status_poll=args.status_poll,
        )
        print(f"  {hit.name}: {hit}", flush=True)
        large: Row | None = None
        if big is not None:
            large = _measure(
                stack,
                receiver,
                smtp,
                f"big institution {big}: storyboard-usage {year}-{month:02d} (large, xlsx)",
                "/institution/reports/storyboard-usage",
                _people(warehouse, big)[0],
                big,
                {"month": month, "year": year},
                max(args.timeout, 600.0),
                replica=(args.requests + 1) % replicas,
                status_poll=args.status_poll,
            )
            print(f"  {large.name}: {large} rows={large.rows}", flush=True)
        runs = [row for row in [*rows, *([large] if large else [])] if row.run_id]
        phases = [_phases(_marks(stack, row)) for row in runs] if args.breakdown else []

    print()
    print("| request | HTTP answer | running | succeeded | webhook | e-mail |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in [*rows, hit, *([large] if large else [])]:
        print(
            f"| {row.name} | {_fmt(row.http)} | {_fmt(row.started)} | {_fmt(row.succeeded)} | "
            f"{_fmt(row.webhook)} | {_fmt(row.email)} |"
        )
    hooks = [r.webhook for r in rows if r.webhook is not None]
    done = [r.succeeded for r in rows if r.succeeded is not None]
    if hooks:
        print(
            f"\ndistinct requests: webhook p50 {statistics.median(hooks):.2f} s, max {max(hooks):.2f} s "
            f"({len(hooks)}/{len(rows)} delivered); succeeded p50 {statistics.median(done):.2f} s, "
            f"max {max(done):.2f} s; HTTP answer p50 {statistics.median(r.http for r in rows):.3f} s"
        )
    print(f"cache hit: HTTP answer {hit.http:.3f} s, webhook {_fmt(hit.webhook)} s, e-mail {_fmt(hit.email)} s")
    if large is not None:
        print(
            f"large ({large.rows} rows): HTTP answer {large.http:.3f} s, succeeded {_fmt(large.succeeded)} s, "
            f"webhook {_fmt(large.webhook)} s"
        )
    if phases:
        _print_breakdown(runs, phases)


if __name__ == "__main__":
    main()
