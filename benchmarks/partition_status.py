"""Benchmark: the asset's partition page, partition-status queries and sensor ticks vs institutions x months.

    PYTHONPATH=. .venv/bin/python benchmarks/partition_status.py --institutions 1000,10000 \
        --first-months 2024-01,2025-12
    PYTHONPATH=. .venv/bin/python benchmarks/partition_status.py --dagster-storage postgres \
        --dagster-pg-url postgresql://postgres@127.0.0.1:55434/postgres

Why: every monthly report is an institution x month multi-partition asset, so
what the UI's asset page and the sensors walk grows with institutions times
the months kept (``LXP_FIRST_MONTH`` .. current month). For each institution
count N this script builds a Dagster instance with N registered institutions
(``registration_order``, as ``institution_sync`` adds them) and one
materialization of last month per institution for the measured asset, plus a
warehouse holding only the ``institutions`` table (the generator's rows for N
``small`` institutions; no activity: these measurements read no report data,
so 10,000 institutions are *simulated* this way instead of generating ~260M
rows). The instance's storage is the embedded SQLite default or, with
``--dagster-storage postgres``, the production profile's PostgreSQL (a fresh
database per N on ``--dagster-pg-url``; ``benchmarks/dagster_storage.py``).
Then, for each first month:

* starts ``dagster-webserver`` alone on the instance (no daemon, so nothing
  runs) and times what the asset's *Partitions* tab asks at load. Those
  operations are read from the installed UI itself (the webapp's source maps:
  each ``gql`` document with its fragments), so they are the exact text the
  UI of this Dagster version sends, under the UI's own operation names:
  ``AssetViewDefinitionQuery`` (the page's definition), ``AssetGraphLiveQuery``
  and ``AssetsFreshnessInfoQuery`` (live data, with ``partitionStats``),
  ``AssetStaleStatusDataQuery`` and ``PartitionHealthQuery`` (every partition
  key per dimension plus ``assetPartitionStatuses``: what the tab draws);
  *partition page* sends those five at once, as the browser does, and takes
  the time until the last answer. Also the narrower ``assetPartitionStatuses``
  and ``partitionStats`` queries (``monthly_backfill.py`` holds their text)
  and the API's ``latest_materialization`` of one partition;
* in a subprocess with that ``LXP_FIRST_MONTH``, evaluates each sensor once
  against the instance as the daemon would: ``institution_sync`` when all are
  registered (steady state) and on an empty instance (first tick: all new);
  ``monthly_reports`` on day 1 with an empty cursor (every institution due: the
  tick that builds the big backfill request) and with a full cursor (steady);
  ``report_delivery`` (no finished runs here: its cost does not depend on N).

Output is Markdown. Timings are medians of ``--repeat`` calls after one warm-up.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api.dagster_client import DagsterClient  # noqa: E402
from benchmarks.dagster_storage import add_storage_arguments, dagster_postgres_home  # noqa: E402
from benchmarks.monthly_backfill import PARTITION_STATS, PARTITION_STATUSES, load_average  # noqa: E402
from tests.e2e.stack import free_port, wait_until  # noqa: E402

#: What the asset's Partitions tab sends at load, by the UI's operation names, and whether an operation
#: takes one ``assetKey`` or the ``assetKeys`` list of the live-data providers (which batch the page's keys).
PAGE_OPERATIONS = {
    "AssetViewDefinitionQuery": "assetKey",
    "AssetGraphLiveQuery": "assetKeys",
    "AssetsFreshnessInfoQuery": "assetKeys",
    "AssetStaleStatusDataQuery": "assetKeys",
    "PartitionHealthQuery": "assetKey",
}
BROWSER_PROBE = "partition page in Chromium (first visit, until the status legend)"


def ui_operations(names: list[str]) -> dict[str, str]:
    """The GraphQL documents the installed Dagster UI sends, by operation name.

    Read from the webapp's source maps (``dagster_webserver/webapp/build``): every ``gql`` template of the
    UI's sources, its ``${FRAGMENT}`` interpolations resolved and fragments de-duplicated by name as the
    UI's ``gql`` tag does. Copying the text here instead would drift from the UI at the next Dagster upgrade
    and quietly measure queries nobody sends."""
    import dagster_webserver

    build = Path(dagster_webserver.__file__).parent / "webapp" / "build"
    template = re.compile(r"const\s+([A-Z0-9_]+)\s*=\s*gql`([^`]*)`")
    consts: dict[str, str] = {}
    for path in glob.glob(str(build / "**" / "*.js.map"), recursive=True):
        with open(path, encoding="utf-8") as fh:
            source_map = json.load(fh)
        for source, content in zip(source_map.get("sources", []), source_map.get("sourcesContent") or [], strict=False):
            if content and "gql`" in content and "ui-core/src" in source:
                for name, text in template.findall(content):
                    consts.setdefault(name, text)
    if not consts:
        raise SystemExit(f"no UI GraphQL documents found under {build} (source maps missing?)")

    def resolve(text: str) -> str:
        return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: resolve(consts[m.group(1)]), text)

    documents = {}
    for name in names:
        found = [text for text in consts.values() if re.search(rf"\bquery\s+{name}\b", text)]
        if len(set(found)) != 1:
            raise SystemExit(f"UI operation {name}: {len(set(found))} documents found, expected one")
        parts, seen = [], set()
        for part in re.split(r"(?=\b(?:fragment|query)\s+\w+\s*[({]|\bfragment\s+\w+\s+on\b)", resolve(found[0])):
            head = re.match(r"\s*(fragment|query)\s+(\w+)", part)
            if head and head.group(2) in seen:
                continue
            if head:
                seen.add(head.group(2))
            parts.append(part)
        documents[name] = "".join(parts)
    return documents


def prepare(home: Path, institutions: int, asset: str, storage: str, pg_url: str, history_from: date | None) -> None:
    """Warehouse with N institutions (no activity) and an instance with N partitions + one
    materialization of last month per institution, or of every month from ``history_from`` to last month
    (a partition space in steady use: the status cache then holds every materialized key)."""
    import dagster as dg

    from assets.periods import previous_month
    from assets.spec import Institution
    from orchestration.defs.reports.partitions import institution_partitions
    from orchestration.instance_config import ensure_instance
    from orchestration.institutions import registration_order
    from orchestration.settings import Settings
    from orchestration.warehouse.generate import institutions_frame, with_institutions
    from orchestration.warehouse.load import load_duckdb

    frame = institutions_frame(with_institutions("small", institutions))
    load_duckdb({"institutions": frame}, home / "warehouse.duckdb")
    rows = [Institution(id=r[0], name=r[1], subdomain=r[2], timezone=r[3]) for r in frame.iter_rows()]
    keys = [str(i.id) for i in registration_order(rows, datetime.now(UTC))]
    month = previous_month(datetime.now(UTC).date())
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    if storage == "postgres":
        # A fresh database per N; the webserver and the sensor subprocess inherit $DAGSTER_PG_URL.
        os.environ["DAGSTER_PG_URL"] = dagster_postgres_home(home, pg_url)
    ensure_instance(Settings(home=home), profile="postgres" if storage == "postgres" else "local")
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(institution_partitions.name, keys)
        if history_from is None:
            for key in keys:
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(asset_key=asset, partition=f"{key}|{month:%Y-%m-%d}")
                )
        else:
            _store_history(instance, asset, keys, history_from, month)


def _store_history(instance: Any, asset: str, keys: list[str], first: date, last: date) -> None:
    """Runless materializations of every institution x month in ``first``..``last``, oldest first, written
    with the event storage's batch insert: ``report_runless_asset_event`` writes one event per call (35–80/s
    on SQLite here, hours for 10,000 x 35), PostgreSQL's ``store_event_batch`` inserts thousands in one
    statement. The entries are built as ``report_runless_asset_event`` builds them (Dagster 1.13,
    ``AssetMethods._report_runless_asset_event`` / ``report_dagster_event``); SQLite's batch is its
    per-event loop, so there this is as slow as the public call."""
    import logging

    import dagster as dg
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

    months = []
    while first <= last:
        months.append(first)
        first = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    batch: list[EventLogEntry] = []
    for month in months:
        for key in keys:
            event = DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                event_specific_data=StepMaterializationData(
                    dg.AssetMaterialization(asset_key=asset, partition=f"{key}|{month:%Y-%m-%d}")
                ),
                job_name=RUNLESS_JOB_NAME,
            )
            batch.append(
                EventLogEntry(
                    user_message="",
                    level=logging.INFO,
                    job_name=RUNLESS_JOB_NAME,
                    run_id=RUNLESS_RUN_ID,
                    error_info=None,
                    timestamp=time.time(),
                    step_key=None,
                    dagster_event=event,
                )
            )
            if len(batch) == 5000:
                instance.event_log_storage.store_event_batch(batch)
                batch = []
    if batch:
        instance.event_log_storage.store_event_batch(batch)


def _page_probes(url: str, asset: str) -> tuple[dict[str, Any], dict[str, int]]:
    """One timed probe per UI operation, one for the whole page (the five at once, as the browser sends
    them), and each operation's response size."""
    import httpx

    documents = ui_operations(list(PAGE_OPERATIONS))
    http = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=len(documents)))
    pool = ThreadPoolExecutor(max_workers=len(documents))
    sizes: dict[str, int] = {}

    def send(name: str) -> None:
        variables = {"assetKey": {"path": [asset]}} if PAGE_OPERATIONS[name] == "assetKey" else {}
        if not variables:
            variables = {"assetKeys": [{"path": [asset]}]}
        response = http.post(
            f"{url}/graphql", json={"operationName": name, "query": documents[name], "variables": variables}
        )
        payload = response.json()
        if response.status_code >= 400 or payload.get("errors"):
            raise RuntimeError(f"{name}: HTTP {response.status_code} {payload.get('errors')}")
        sizes[name] = len(response.content)

    def page() -> None:
        for future in [pool.submit(send, name) for name in documents]:
            future.result()

    probes: dict[str, Any] = {name: (lambda name=name: send(name)) for name in documents}
    probes["partition page (the five at once)"] = page
    return probes, sizes


@contextlib.contextmanager
def _browser_probe(executable: str, url: str, asset: str, materialized: int) -> Iterator[Callable[[], None]]:
    """The Partitions tab in a real headless Chromium, first visit each time (a fresh browser context: no
    HTTP cache, no IndexedDB), until the status legend shows Dagster's count of materialized partitions. That
    legend needs ``PartitionHealthQuery``'s answer processed by the UI's JavaScript, which the GraphQL
    timings alone do not show. Needs ``playwright`` importable (its Python package only: the browser is the
    one given, e.g. Debian's ``chromium``)."""
    from playwright.sync_api import sync_playwright

    legend = re.compile(rf"Materialized \({materialized}\)")  # the UI prints the count unformatted
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])

        def load() -> None:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            try:
                page = context.new_page()
                page.goto(f"{url}/assets/{asset}?view=partitions", timeout=600_000)
                page.get_by_text(legend).wait_for(timeout=600_000)
            finally:
                context.close()

        try:
            yield load
        finally:
            browser.close()


def webserver_timings(
    home: Path, first_month: str, asset: str, repeat: int, browser: str
) -> tuple[dict[str, list[float]], dict[str, int], str]:
    """Timings by probe, UI response sizes (bytes), and the asset's partitions (materialized) as Dagster
    counts them."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LXP_")},
        "LXP_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "LXP_FIRST_MONTH": first_month,
        "PYTHONPATH": str(ROOT),
    }
    cmd = [
        str(Path(sys.executable).parent / "dagster-webserver"),
        "-w",
        str(ROOT / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with open(home / f"webserver-{first_month}.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    client = DagsterClient(url, timeout=600)
    key = {"assetKey": {"path": [asset]}}
    stack = contextlib.ExitStack()

    def ready() -> bool:
        try:
            node = client.execute(PARTITION_STATS, key)["assetNodeOrError"]
        except Exception:  # still starting
            return False
        return node.get("__typename") == "AssetNode"

    try:
        wait_until(ready, 300, "the webserver and code location", interval=1.0)
        from assets.periods import previous_month

        stats = client.execute(PARTITION_STATS, key)["assetNodeOrError"]["partitionStats"]
        partitions = stats["numPartitions"]
        partition = f"1|{previous_month(datetime.now(UTC).date()):%Y-%m-%d}"
        probes, sizes = _page_probes(url, asset)
        probes.update(
            {
                "assetPartitionStatuses": lambda: client.execute(PARTITION_STATUSES, key),
                "partitionStats": lambda: client.execute(PARTITION_STATS, key),
                "latest_materialization (API, one partition)": lambda: client.latest_materialization(asset, partition),
            }
        )
        if browser:
            probes[BROWSER_PROBE] = stack.enter_context(_browser_probe(browser, url, asset, stats["numMaterialized"]))
        timings: dict[str, list[float]] = {}
        for name, probe in probes.items():
            probe()  # warm-up
            took = []
            for _ in range(repeat):
                started = time.perf_counter()
                probe()
                took.append(time.perf_counter() - started)
            timings[name] = took
        return timings, sizes, f"{partitions:,} ({stats['numMaterialized']:,})"
    finally:
        stack.close()
        client.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def sensor_ticks(home: Path, repeat: int) -> dict[str, list[float]]:
    """Runs in a subprocess whose LXP_FIRST_MONTH is set: evaluates each sensor like the daemon."""
    import dagster as dg

    from orchestration.definitions import build_definitions
    from orchestration.settings import Settings

    settings = Settings(home=home, warehouse_url=f"duckdb:///{home / 'warehouse.duckdb'}")
    repo = build_definitions(settings).get_repository_def()
    resources = repo.get_top_level_resources()  # every resource the daemon would give (notifier included)
    day1 = datetime.now(UTC).date().replace(day=1)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    results: dict[str, list[float]] = {}
    with dg.DagsterInstance.get() as instance:
        ids = instance.get_dynamic_partitions("institution")
        done = json.dumps({i: f"{day1:%Y-%m}" for i in ids})
        cases: dict[str, tuple[str, dg.DagsterInstance, str | None]] = {
            "institution_sync (all registered)": ("institution_sync", instance, None),
            "institution_sync (first tick: all new)": ("institution_sync", dg.DagsterInstance.ephemeral(), None),
            "monthly_reports (day 1: all due, builds the backfill request)": ("monthly_reports", instance, None),
            "monthly_reports (nothing due)": ("monthly_reports", instance, done),
            "report_delivery": ("report_delivery", instance, None),
        }
        for label, (name, inst, cursor) in cases.items():
            sensor = repo.get_sensor_def(name)
            took = []
            for _ in range(repeat + 1):
                ctx = dg.build_sensor_context(instance=inst, repository_def=repo, resources=resources, cursor=cursor)
                started = time.perf_counter()
                result = sensor(ctx)
                took.append(time.perf_counter() - started)
                if name == "monthly_reports" and cursor is None:
                    assert isinstance(result, dg.SensorResult) and result.run_requests, result
            results[label] = took[1:]
    return results


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}"


def _table(rows: list[tuple[int, str, str, dict[str, list[float]]]], names: list[str], storage: str) -> None:
    print("| storage | institutions | first month | partitions (materialized) | " + " | ".join(names) + " |")
    print("|---|---:|---|---:|" + "---:|" * len(names))
    for n, first, partitions, timings in rows:
        cells = " | ".join(_median(timings[k]) for k in names)
        print(f"| {storage} | {n:,} | {first} | {partitions} | {cells} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--institutions", default="1000,10000")
    parser.add_argument("--first-months", default="2024-01,2025-12", help="LXP_FIRST_MONTH values to compare")
    parser.add_argument("--asset", default="storyboard_usage")
    parser.add_argument("--repeat", type=int, default=5)
    add_storage_arguments(parser)
    parser.add_argument(
        "--materialized",
        choices=["last-month", "all-months"],
        default="last-month",
        help="materialize last month per institution, or every month from the earliest --first-months on",
    )
    parser.add_argument(
        "--browser",
        default="",
        help="a Chromium executable: also time the Partitions tab in it (needs the playwright package importable)",
    )
    parser.add_argument("--sensor-ticks-only", default="", help=argparse.SUPPRESS)  # subprocess mode: a home
    args = parser.parse_args()
    if args.sensor_ticks_only:
        print(json.dumps(sensor_ticks(Path(args.sensor_ticks_only), args.repeat)))
        return 0

    import dagster

    ui_operations(list(PAGE_OPERATIONS))  # fail before the long preparation if the UI's documents are not found
    firsts = sorted(date.fromisoformat(f"{first}-01") for first in args.first_months.split(","))
    history_from = firsts[0] if args.materialized == "all-months" else None
    workdir = Path(tempfile.mkdtemp(prefix="lxp-status-"))
    rows: list[tuple[int, str, str, dict[str, list[float]]]] = []
    tick_rows: list[tuple[int, str, str, dict[str, list[float]]]] = []
    sizes: dict[tuple[int, str], dict[str, int]] = {}
    print(f"load average before: {load_average()}", file=sys.stderr)
    try:
        for n in [int(x) for x in args.institutions.split(",")]:
            home = workdir / f"n{n}"
            home.mkdir()
            started = time.perf_counter()
            prepare(home, n, args.asset, args.dagster_storage, args.dagster_pg_url, history_from)
            print(
                f"{n} institutions prepared in {time.perf_counter() - started:.0f}s (load {load_average()})",
                file=sys.stderr,
            )
            for first in args.first_months.split(","):
                date.fromisoformat(f"{first}-01")  # a typo fails here, not in the webserver
                timings, sizes[(n, first)], partitions = webserver_timings(
                    home, first, args.asset, args.repeat, args.browser
                )
                env = {**os.environ, "LXP_FIRST_MONTH": first, "PYTHONPATH": str(ROOT)}
                proc = subprocess.run(
                    [sys.executable, __file__, "--sensor-ticks-only", str(home), "--repeat", str(args.repeat)],
                    env=env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    raise SystemExit(f"sensor ticks failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
                ticks = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append((n, first, partitions, timings))
                tick_rows.append((n, first, partitions, ticks))
                print(
                    f"{n} x {first} (load {load_average()}): "
                    f"{ ({k: _median(v) for k, v in {**timings, **ticks}.items()}) }",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\nDagster {dagster.__version__}, storage {args.dagster_storage}, materialized {args.materialized}; "
        f"load average after: {load_average()}\n"
    )
    _table(rows, list(rows[0][3]), args.dagster_storage)
    print()
    _table(tick_rows, list(tick_rows[0][3]), args.dagster_storage)
    print("\n(seconds, median of", args.repeat, "after a warm-up)\n")
    print("| storage | institutions | first month | " + " | ".join(f"{k} bytes" for k in PAGE_OPERATIONS) + " |")
    print("|---|---:|---|" + "---:|" * len(PAGE_OPERATIONS))
    for (n, first), by_name in sizes.items():
        print(
            f"| {args.dagster_storage} | {n:,} | {first} | "
            + " | ".join(f"{by_name[k]:,}" for k in PAGE_OPERATIONS)
            + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
