"""Benchmark: the real monthly backfill for many institutions on the embedded stack.

    PYTHONPATH=. .venv/bin/python benchmarks/monthly_backfill.py --institutions 1000
    PYTHONPATH=. .venv/bin/python benchmarks/monthly_backfill.py --institutions 200 --env LXP_MAX_CONCURRENT_RUNS=2

Why this shape: the claim to check is operational ("the day-1 backfill of every
institution x every monthly report fits in N minutes on 2 cores"), so nothing
is launched by hand. The script

1. generates ``small``-sized institutions 1..N (``lxp-reports generate --scale
   small --institutions N``; ``--warehouse`` reuses a file) into a temp
   ``LXP_HOME``;
2. registers the institutions as dynamic partitions the way the
   ``institution_sync`` sensor does (same ``registration_order``), as they are
   long before any day 1 in production (the ``monthly_reports`` sensor would
   register them itself, in the same order, if it ticked first);
3. starts ``lxp-reports up`` with the e2e ``Stack`` helper
   (``tests/e2e/stack.py``: webserver + daemon + API, the queued run
   coordinator with the ``dagster.yaml`` limits) and lets the real
   ``monthly_reports`` sensor submit its backfill(s) of last month: one per
   month that is due, so institutions in zones already past day 1 (Tokyo,
   Lisbon) get the month that just closed there, the others the month before;
4. waits until every backfill is done and no run of them is active, sampling
   the CPU time of every process of the stack from ``/proc`` once a second
   (webserver, daemon, code servers, API, run workers, step workers);
5. reads the runs (creation/start/end, step start/end), the sensors' tick
   durations, and times the partition-status GraphQL queries at this size.

Wall time is the server's: first backfill created -> last run ended. The
machine's load average is printed next to the figures (other work shares the
cores). Output is Markdown on stdout; the stack is stopped even on error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api.dagster_client import LOCATION, REPOSITORY, DagsterClient  # noqa: E402
from benchmarks.dagster_storage import add_storage_arguments, dagster_postgres_home  # noqa: E402
from orchestration.settings import Settings  # noqa: E402
from tests.e2e.stack import Stack, wait_until  # noqa: E402

ACTIVE = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
DONE_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
SENSORS = ("monthly_reports", "institution_sync", "report_delivery")
CLK_TCK = os.sysconf("SC_CLK_TCK")

BACKFILLS = """
query Backfills {
  partitionBackfillsOrError(limit: 100) {
    __typename
    ... on PartitionBackfills {
      results {
        id status timestamp endTimestamp
        tags { key value }
        assetBackfillData {
          assetBackfillStatuses {
            __typename
            ... on AssetPartitionsStatusCounts {
              assetKey { path }
              numPartitionsTargeted numPartitionsInProgress numPartitionsMaterialized numPartitionsFailed
            }
          }
        }
      }
    }
    ... on Error { message }
  }
}"""
RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs {
      results {
        runId status creationTime startTime endTime
        tags { key value }
        stepStats { stepKey startTime endTime }
      }
    }
    ... on Error { message }
  }
}"""
TICKS = """
query Ticks($selector: SensorSelector!, $limit: Int) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { ticks(limit: $limit) { status timestamp endTimestamp } } }
    ... on Error { message }
  }
}"""
# What the UI's asset page (and an operator's dashboard) asks for one partitioned asset.
PARTITION_STATUSES = """
query PartitionStatuses($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      assetPartitionStatuses {
        __typename
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey
            secondaryDim {
              __typename
              ... on TimePartitionStatuses { ranges { startKey endKey status } }
              ... on DefaultPartitionStatuses { materializedPartitions failedPartitions }
            }
          }
        }
      }
    }
  }
}"""
PARTITION_STATS = """
query PartitionStats($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode { partitionStats { numMaterialized numPartitions numFailed numMaterializing } }
  }
}"""


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def gql(client: DagsterClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return client.execute(query, variables)


# ---------------------------------------------------------------- CPU of the stack's processes
def _classify(cmdline: str) -> str:
    """Process kind from its command line. Runs are started by a code server through
    multiprocessing's *spawn* (``spawn_main(...) --multiprocessing-fork``), not as
    ``dagster api execute_run``, or handed to a warm worker (``orchestration.warm_worker``, started
    by the daemon's run launcher); step workers (multiprocess executor) as ``execute_step``."""
    if "execute_step" in cmdline:
        return "step workers"
    if "resource_tracker" in cmdline:
        return "other (cli, supervisor, helpers)"
    if "execute_run" in cmdline or "--multiprocessing-fork" in cmdline or "orchestration.warm_worker" in cmdline:
        return "run workers"
    if "dagster-webserver" in cmdline or "dagster_webserver" in cmdline:
        return "webserver"
    if "dagster-daemon" in cmdline or "dagster_daemon" in cmdline:
        return "daemon"
    if "api grpc" in cmdline:
        return "code servers"
    if "uvicorn" in cmdline:
        return "api"
    return "other (cli, supervisor, helpers)"


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine_busy() -> float:
    """CPU seconds spent by the whole machine (all processes, all cores) so far."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in parts]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


def _peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class CpuSampler:
    """Samples the CPU seconds of every process under ``root`` (the stack: its children run
    in their own sessions, run and step workers are children of the daemon) once a second.
    A process that exits between two samples loses its last second at most."""

    root: int
    interval: float = 1.0
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    kind: dict[int, str] = field(default_factory=dict)
    born_inside: set[int] = field(default_factory=set)
    peak_kb: dict[int, int] = field(default_factory=dict)  # VmHWM: the process's peak resident set
    machine_start: float = 0.0
    machine_end: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self, initial: bool) -> None:
        stats = {int(e.name): _proc_stat(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
        children: dict[int, list[int]] = defaultdict(list)
        for pid, stat in stats.items():
            if stat is not None:
                children[stat[0]].append(pid)
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        for pid in tree:
            stat = stats.get(pid)
            if stat is None:
                continue
            entry = Path(f"/proc/{pid}")
            if pid not in self.kind:
                try:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                self.kind[pid] = _classify(cmd)
                self.first[pid] = stat[1]
                if not initial:
                    self.born_inside.add(pid)
            self.last[pid] = stat[1]
            peak = _peak_rss_kb(pid)
            if peak:
                self.peak_kb[pid] = max(peak, self.peak_kb.get(pid, 0))

    def start(self) -> None:
        self.machine_start = _machine_busy()
        self._sample(initial=True)

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self._sample(initial=False)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample(initial=False)
        self.machine_end = _machine_busy()
        totals: dict[str, float] = defaultdict(float)
        for pid, kind in self.kind.items():
            base = 0.0 if pid in self.born_inside else self.first[pid]
            totals[kind] += self.last[pid] - base
        return dict(totals)

    @property
    def peak_rss_mb(self) -> dict[str, float]:
        """Largest peak RSS of one process of each kind, MB."""
        peaks: dict[str, float] = defaultdict(float)
        for pid, kb in self.peak_kb.items():
            peaks[self.kind[pid]] = max(peaks[self.kind[pid]], kb / 1024)
        return dict(peaks)

    @property
    def processes(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for pid in self.born_inside:
            counts[self.kind[pid]] += 1
        return dict(counts)


# ---------------------------------------------------------------- the measured backfill
def _ts(value: Any) -> float | None:
    return float(value) if value else None


def register_institutions(settings: Settings, warehouse: Path) -> int:
    """Write dagster.yaml (from the stack's ``settings``) and add every institution to the
    dynamic partition, in the order (and with the code) the ``institution_sync`` sensor uses."""
    import dagster as dg
    import duckdb

    from assets.spec import Institution
    from orchestration.defs.reports.partitions import institution_partitions
    from orchestration.instance_config import ensure_instance
    from orchestration.institutions import registration_order

    ensure_instance(settings)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("SELECT id, name, subdomain, timezone FROM institutions ORDER BY id").fetchall()
    institutions = [Institution(id=r[0], name=r[1], subdomain=r[2], timezone=r[3]) for r in rows]
    keys = [str(i.id) for i in registration_order(institutions, datetime.now(UTC))]
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(institution_partitions.name, keys)
    return len(keys)


def monthly_backfills(client: DagsterClient) -> list[dict[str, Any]]:
    found = gql(client, BACKFILLS)["partitionBackfillsOrError"]
    if found["__typename"] != "PartitionBackfills":
        raise RuntimeError(f"partitionBackfillsOrError: {found}")
    return [
        b
        for b in found["results"]
        if any(t["key"] == "lxp/trigger" and t["value"] == "monthly" for t in b["tags"] or [])
    ]


def backfill_runs(client: DagsterClient, backfill_id: str, statuses: list[str] | None = None) -> list[dict[str, Any]]:
    flt: dict[str, Any] = {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}
    if statuses:
        flt["statuses"] = statuses
    result = gql(client, RUNS, {"filter": flt})["runsOrError"]
    if result["__typename"] != "Runs":
        raise RuntimeError(f"runsOrError: {result}")
    return result["results"]


def sensor_ticks(client: DagsterClient, name: str, limit: int = 500) -> list[dict[str, Any]]:
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": name}
    found = gql(client, TICKS, {"selector": selector, "limit": limit})["sensorOrError"]
    return found["sensorState"]["ticks"] if found["__typename"] == "Sensor" else []


def time_query(client: DagsterClient, query: str, variables: dict[str, Any], repeat: int) -> list[float]:
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        data = gql(client, query, variables)
        took.append(time.perf_counter() - started)
        node = data.get("assetNodeOrError", {})
        if node.get("__typename") != "AssetNode":
            raise RuntimeError(f"status query failed: {node}")
    return took


def status_queries(client: DagsterClient, asset: str, repeat: int = 5) -> dict[str, list[float]]:
    key = {"assetKey": {"path": [asset]}}
    return {
        "assetPartitionStatuses": time_query(client, PARTITION_STATUSES, key, repeat),
        "partitionStats": time_query(client, PARTITION_STATS, key, repeat),
    }


_CHECK_EVENTS = """
query CheckEvents($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status
      eventConnection(afterCursor: null) {
        events {
          __typename
          ... on AssetCheckEvaluationEvent {
            evaluation {
              assetKey { path }
              success
              metadataEntries { label ... on IntMetadataEntry { intValue } }
            }
          }
        }
      }
    }
  }
}
"""


def run_completeness_check(client: DagsterClient, timeout: float) -> dict[str, tuple[bool, int, int]]:
    """Launch the ``monthly_completeness`` job (what its daily schedule does) and read each report's
    evaluation: {report: (passed, missing institutions, institutions)}. Why here: the month is only done
    when the check the operators watch says so, not when the backfill's own counters do."""
    from orchestration.defs.reports.completeness import JOB_NAME

    run_id = client.launch_run(JOB_NAME, {}, {})
    deadline = time.monotonic() + timeout
    while True:
        run = client.execute(_CHECK_EVENTS, {"runId": run_id})["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
            break
        time.sleep(1)
    results: dict[str, tuple[bool, int, int]] = {}
    for event in run["eventConnection"]["events"]:
        if event["__typename"] != "AssetCheckEvaluationEvent":
            continue
        evaluation = event["evaluation"]
        numbers = {m["label"]: m.get("intValue") for m in evaluation["metadataEntries"]}
        results["/".join(evaluation["assetKey"]["path"])] = (
            bool(evaluation["success"]),
            int(numbers.get("missing") or 0),
            int(numbers.get("institutions") or 0),
        )
    if not results:
        print(f"completeness run {run_id} ended {run['status']} without evaluations", file=sys.stderr)
    return results


def _fmt_stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} (max {max(values):.2f}, n={len(values)})"


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lxp-monthly-"))
    home = workdir / f"home{args.institutions}"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    warehouse = home / "warehouse.duckdb"
    # The measured thing is the sensor's own backfill: start it (the e2e Stack leaves it stopped).
    extra_env = {"LXP_MONTHLY_SENSOR": "true", **dict(e.split("=", 1) for e in args.env)}
    gen_s = 0.0
    if args.warehouse:
        try:  # the stack opens the warehouse READ_ONLY: a hard link spares copying 19 GB at 10,000 institutions
            os.link(args.warehouse, warehouse)
        except OSError:  # another filesystem
            shutil.copyfile(args.warehouse, warehouse)
    else:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestration.cli",
                "generate",
                "--scale",
                "small",
                "--institutions",
                str(args.institutions),
                "--out",
                str(warehouse),
            ],
            cwd=ROOT,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        gen_s = time.perf_counter() - started

    # The stack's environment, applied here too so dagster.yaml is written with the same limits.
    for key in [k for k in os.environ if k.startswith("LXP_")]:
        del os.environ[key]
    os.environ.update({"LXP_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **extra_env})
    registered = register_institutions(Settings(), warehouse)  # the stack's settings, from that environment

    if args.dagster_storage == "postgres":
        extra_env["DAGSTER_PG_URL"] = dagster_postgres_home(
            home, args.dagster_pg_url, pool=args.dagster_pg_pool == "on"
        )
    stack = Stack(home, extra_env)
    load_before = load_average()
    stack.start(timeout=300)
    sampler = CpuSampler(root=stack.proc.pid if stack.proc else 0)
    client = DagsterClient(f"http://127.0.0.1:{stack.dagster_port}", timeout=120)
    try:
        backfills = wait_until(lambda: monthly_backfills(client), args.sensor_timeout, "the monthly_reports backfill")
        sampler.start()
        deadline = time.monotonic() + args.timeout
        while True:
            stack_alive = stack.proc is not None and stack.proc.poll() is None
            if not stack_alive:
                raise RuntimeError(f"stack exited:\n{stack.log_tail()}")
            backfills = monthly_backfills(client)
            done = all(b["status"] in DONE_BACKFILL for b in backfills)
            if done and not any(backfill_runs(client, b["id"], ACTIVE) for b in backfills):
                break
            if time.monotonic() > deadline:
                print(f"TIMEOUT after {args.timeout:.0f}s", file=sys.stderr)
                break
            time.sleep(3)
        cpu = sampler.stop()
        load_after = load_average()
        runs = [r for b in backfills for r in backfill_runs(client, b["id"])]
        ticks = {name: sensor_ticks(client, name) for name in SENSORS}
        statuses = status_queries(client, args.asset)
        completeness = run_completeness_check(client, args.timeout)
    finally:
        client.close()
        stack.stop()

    created = min(float(b["timestamp"]) for b in backfills)
    ended = [t for r in runs if (t := _ts(r["endTime"]))]
    started_at = [t for r in runs if (t := _ts(r["startTime"]))]
    wall = max(ended) - created if ended else float("nan")
    counts = [
        s for b in backfills for s in b["assetBackfillData"]["assetBackfillStatuses"] if "numPartitionsTargeted" in s
    ]
    targeted = sum(s["numPartitionsTargeted"] for s in counts)
    materialized = sum(s["numPartitionsMaterialized"] for s in counts)
    failed = sum(s["numPartitionsFailed"] for s in counts)
    run_s = [r["endTime"] - r["startTime"] for r in runs if r["endTime"] and r["startTime"]]
    step_s = [
        s["endTime"] - s["startTime"] for r in runs for s in r["stepStats"] or [] if s["endTime"] and s["startTime"]
    ]
    queue_s = [r["startTime"] - r["creationTime"] for r in runs if r["startTime"]]
    months = sorted({t["value"] for b in backfills for t in b["tags"] if t["key"] == "lxp/month"})
    by_status: dict[str, int] = defaultdict(int)
    for r in runs:
        by_status[r["status"]] += 1
    machine = sampler.machine_end - sampler.machine_start

    print(f"\n### {args.institutions} institutions ({registered} registered), monthly backfill\n")
    print(f"- command: `{' '.join(sys.argv)}`")
    print(f"- generation: {gen_s:.1f} s" if gen_s else f"- warehouse: {args.warehouse}")
    print(f"- load average (1/5/15 min) before: {load_before}; after: {load_after}")
    pool = f" (pooled connections: {args.dagster_pg_pool})" if args.dagster_storage == "postgres" else ""
    print(f"- settings: {extra_env or 'defaults'}; Dagster storage: {args.dagster_storage}{pool}")
    print(f"- backfills: {len(backfills)} (months {', '.join(months)}), statuses {[b['status'] for b in backfills]}")
    print()
    print("| partitions | materialized / failed | runs | wall s | partitions/min | first run started after s |")
    print("|---:|---:|---:|---:|---:|---:|")
    per_min = materialized / (wall / 60) if wall == wall and wall > 0 else float("nan")
    first = min(started_at) - created if started_at else float("nan")
    print(f"| {targeted} | {materialized} / {failed} | {len(runs)} | {wall:.0f} | {per_min:.0f} | {first:.0f} |")
    print(f"\nrun statuses: {dict(by_status)}")
    print("\n| per run (median / max) | s |\n|---|---:|")
    print(f"| queued (created -> started) | {_fmt_stats(queue_s)} |")
    print(f"| run (started -> ended) | {_fmt_stats(run_s)} |")
    print(f"| step (the report code: extract, build, write, per batch) | {_fmt_stats(step_s)} |")
    print(f"| sum of run durations | {sum(run_s):.0f} |")
    print(f"| sum of step durations | {sum(step_s):.0f} |")
    total = sum(cpu.values())
    print(
        f"\nCPU seconds during the backfill window ({wall:.0f} s wall; the machine spent {machine:.0f} CPU-s in all):\n"
    )
    print("| process | CPU s | share | CPU s / partition | processes started | peak RSS of one, MB |")
    print("|---|---:|---:|---:|---:|---:|")
    procs, peaks = sampler.processes, sampler.peak_rss_mb
    per_part = max(materialized, 1)
    for kind, secs in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(
            f"| {kind} | {secs:.0f} | {secs / total:.0%} | {secs / per_part:.4f} | {procs.get(kind, 0)} "
            f"| {peaks.get(kind, 0):.0f} |"
        )
    print(f"| **stack total** | {total:.0f} | | {total / per_part:.4f} | | |")
    print("\n| sensor | ticks | tick s median | max |\n|---|---:|---:|---:|")
    for name, items in ticks.items():
        durations = [t["endTimestamp"] - t["timestamp"] for t in items if t.get("endTimestamp")]
        med = statistics.median(durations) if durations else float("nan")
        print(f"| {name} | {len(durations)} | {med:.2f} | {max(durations, default=float('nan')):.2f} |")
    print(
        "\nmonthly completeness check after the backfill (the `monthly_completeness` job, as its daily schedule runs it):\n"
    )
    print("| report | passed | missing | institutions |\n|---|---|---:|---:|")
    for asset, (passed, missing, total) in sorted(completeness.items()):
        print(f"| {asset} | {'yes' if passed else '**no**'} | {missing} | {total} |")
    print(f"\npartition-status GraphQL for `{args.asset}` ({args.institutions} institutions), seconds:\n")
    for name, values in statuses.items():
        print(f"- {name}: median {statistics.median(values):.3f}, max {max(values):.3f} (n={len(values)})")
    if args.keep:
        print(f"\n(kept {home})", file=sys.stderr)
    elif not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    complete = bool(completeness) and all(passed for passed, _, _ in completeness.values())
    return 0 if failed == 0 and materialized == targeted and targeted > 0 and complete else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--institutions", type=int, default=1000)
    parser.add_argument("--warehouse", default="", help="reuse this generated DuckDB file instead of generating")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the stack (repeatable)")
    parser.add_argument("--asset", default="storyboard_usage", help="asset whose partition status is queried")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the backfill")
    parser.add_argument("--sensor-timeout", type=float, default=420, help="seconds to wait for the sensor's backfill")
    parser.add_argument("--workdir", default="", help="keep homes under this directory (default: a temp dir)")
    add_storage_arguments(parser)
    parser.add_argument("--keep", action="store_true", help="keep the home (instance, logs) for inspection")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
