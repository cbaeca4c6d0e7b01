"""Benchmark: partition-status queries and sensor ticks vs institutions x months (retention).

    PYTHONPATH=. .venv/bin/python benchmarks/partition_status.py --institutions 1000,10000 \
        --first-months 2024-01,2025-12

Why: every monthly report is an institution x month multi-partition asset, so
what the UI's asset page and the sensors walk grows with institutions times
the months kept (``LXP_FIRST_MONTH`` .. current month). For each institution
count N this script builds a Dagster instance with N registered institutions
(``registration_order``, as ``institution_sync`` adds them) and one
materialization of last month per institution for the measured asset, plus a
warehouse holding only the ``institutions`` table (the generator's rows for N
``small`` institutions; no activity: these measurements read no report data,
so 10,000 institutions are *simulated* this way instead of generating ~260M
rows). Then, for each first month:

* starts ``dagster-webserver`` alone on the instance (no daemon, so nothing
  runs) and times the GraphQL queries the UI/API send: ``assetPartitionStatuses``
  and ``partitionStats`` of the asset (``monthly_backfill.py`` holds the query
  text), and the API's ``latest_materialization`` of one partition;
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
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api.dagster_client import DagsterClient  # noqa: E402
from benchmarks.monthly_backfill import PARTITION_STATS, PARTITION_STATUSES, load_average  # noqa: E402
from tests.e2e.stack import free_port, wait_until  # noqa: E402


def prepare(home: Path, institutions: int, asset: str) -> None:
    """Warehouse with N institutions (no activity) and an instance with N partitions + one
    materialization of last month per institution."""
    import dagster as dg

    from assets.spec import Institution
    from orchestration.instance_config import ensure_instance
    from orchestration.institutions import registration_order
    from orchestration.partitions import institution_partitions, previous_month
    from orchestration.settings import Settings
    from orchestration.warehouse.generate import institutions_frame, with_institutions
    from orchestration.warehouse.load import load_duckdb

    frame = institutions_frame(with_institutions("small", institutions))
    load_duckdb({"institutions": frame}, home / "warehouse.duckdb")
    rows = [Institution(id=r[0], name=r[1], subdomain=r[2], timezone=r[3]) for r in frame.iter_rows()]
    keys = [str(i.id) for i in registration_order(rows, datetime.now(UTC))]
    month = previous_month(datetime.now(UTC).date())
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    ensure_instance(Settings(home=home))
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(institution_partitions.name, keys)
        for key in keys:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=asset, partition=f"{key}|{month:%Y-%m-%d}")
            )


def webserver_timings(home: Path, first_month: str, asset: str, repeat: int) -> dict[str, list[float]]:
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
    client = DagsterClient(f"http://127.0.0.1:{port}", timeout=300)
    key = {"assetKey": {"path": [asset]}}

    def ready() -> bool:
        try:
            node = client.execute(PARTITION_STATS, key)["assetNodeOrError"]
        except Exception:  # still starting
            return False
        return node.get("__typename") == "AssetNode"

    try:
        wait_until(ready, 300, "the webserver and code location", interval=1.0)
        from orchestration.partitions import previous_month

        partition = f"1|{previous_month(datetime.now(UTC).date()):%Y-%m-%d}"
        probes = {
            "assetPartitionStatuses": lambda: client.execute(PARTITION_STATUSES, key),
            "partitionStats": lambda: client.execute(PARTITION_STATS, key),
            "latest_materialization (API, one partition)": lambda: client.latest_materialization(asset, partition),
        }
        timings: dict[str, list[float]] = {}
        for name, probe in probes.items():
            probe()  # warm-up
            took = []
            for _ in range(repeat):
                started = time.perf_counter()
                probe()
                took.append(time.perf_counter() - started)
            timings[name] = took
        return timings
    finally:
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
    from orchestration.resources import resources_from_settings
    from orchestration.settings import Settings

    settings = Settings(home=home, warehouse_url=f"duckdb:///{home / 'warehouse.duckdb'}")
    repo = build_definitions(settings).get_repository_def()
    resources = resources_from_settings(settings)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--institutions", default="1000,10000")
    parser.add_argument("--first-months", default="2024-01,2025-12", help="LXP_FIRST_MONTH values to compare")
    parser.add_argument("--asset", default="storyboard_usage")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sensor-ticks-only", default="", help=argparse.SUPPRESS)  # subprocess mode: a home
    args = parser.parse_args()
    if args.sensor_ticks_only:
        print(json.dumps(sensor_ticks(Path(args.sensor_ticks_only), args.repeat)))
        return 0

    today = date.today()
    workdir = Path(tempfile.mkdtemp(prefix="lxp-status-"))
    rows: list[tuple[int, str, int, dict[str, list[float]]]] = []
    print(f"load average before: {load_average()}", file=sys.stderr)
    try:
        for n in [int(x) for x in args.institutions.split(",")]:
            home = workdir / f"n{n}"
            home.mkdir()
            started = time.perf_counter()
            prepare(home, n, args.asset)
            print(f"{n} institutions prepared in {time.perf_counter() - started:.0f}s", file=sys.stderr)
            for first in args.first_months.split(","):
                start = date.fromisoformat(f"{first}-01")
                months = (today.year - start.year) * 12 + today.month - start.month + 1
                timings = webserver_timings(home, first, args.asset, args.repeat)
                env = {**os.environ, "LXP_FIRST_MONTH": first, "PYTHONPATH": str(ROOT)}
                proc = subprocess.run(
                    [sys.executable, __file__, "--sensor-ticks-only", str(home), "--repeat", str(args.repeat)],
                    env=env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                timings.update(json.loads(proc.stdout.strip().splitlines()[-1]))
                rows.append((n, first, months, timings))
                print(f"{n} x {first}: { ({k: _median(v) for k, v in timings.items()}) }", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nload average after: {load_average()}\n")
    names = list(rows[0][3])
    print("| institutions | first month | months | partitions | " + " | ".join(names) + " |")
    print("|---:|---|---:|---:|" + "---:|" * len(names))
    for n, first, months, timings in rows:
        cells = " | ".join(_median(timings[k]) for k in names)
        print(f"| {n:,} | {first} | {months} | {n * months:,} | {cells} |")
    print("\n(seconds, median of", args.repeat, "after a warm-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
