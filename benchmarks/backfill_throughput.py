"""Benchmark: monthly backfill throughput, batched runs vs one run per partition.

    PYTHONPATH=. .venv/bin/python benchmarks/backfill_throughput.py                  # 10 institutions x 5 months, batch 50 vs 1
    PYTHONPATH=. .venv/bin/python benchmarks/backfill_throughput.py --quick          # 10 x 2 months
    PYTHONPATH=. .venv/bin/python benchmarks/backfill_throughput.py --batches 50,10,1

For each batch size, in its own stack run (nothing shared but the generated
warehouse file): a temp ``LXP_HOME`` with the ``small`` warehouse, the real
``lxp-reports up`` (Dagster webserver + daemon + API; the queued run
coordinator with its ``dagster.yaml`` limits: 4 runs, 1 per institution) with
``LXP_BACKFILL_BATCH_SIZE`` set, then:

1. wait for the code location and for the ``institution_sync`` sensor to
   register the institutions; stop the ``monthly_reports`` sensor and cancel any
   backfill it already submitted (it catches up last month on a fresh instance),
   and wait until no run is active, so only the measured backfill runs;
2. ``launchPartitionBackfill`` through the webserver's GraphQL with
   ``partitionsByAssets`` for one monthly asset: per month one range
   ``"1|<month>" .. "<N>|<month>"`` (a multi-partition range is the rectangle
   institutions 1..N x that month);
3. poll the backfill until every targeted partition is materialized or failed.

Wall time is the server's: backfill creation -> last run's end. The obvious
alternative is the same backfill with one partition per run (batch size 1),
Dagster's default for a partitioned asset without a backfill policy. Output is
Markdown; the stack is stopped (SIGTERM to its process group) even on error.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api.dagster_client import LOCATION, REPOSITORY, DagsterClient, RunInfo  # noqa: E402
from assets.periods import previous_month  # noqa: E402
from tests.e2e.stack import Stack as E2EStack  # noqa: E402
from tests.e2e.stack import new_home  # noqa: E402

ACTIVE = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
DONE_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

_SENSOR = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { id sensorState { status } }
    ... on Error { message }
  }
}"""
_STOP_SENSOR = """
mutation Stop($id: String!) {
  stopSensor(id: $id) { __typename ... on Error { message } }
}"""
_PARTITION_KEYS = """
query Keys($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode { partitionKeysByDimension { name partitionKeys } }
  }
}"""
_BACKFILLS = """
query Backfills($status: BulkActionStatus) {
  partitionBackfillsOrError(status: $status) {
    __typename
    ... on PartitionBackfills { results { id tags { key value } } }
    ... on Error { message }
  }
}"""
_CANCEL = """
mutation Cancel($id: String!) {
  cancelPartitionBackfill(backfillId: $id) { __typename ... on Error { message } }
}"""
_LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""
_BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      timestamp
      assetBackfillData {
        assetBackfillStatuses {
          __typename
          ... on AssetPartitionsStatusCounts {
            numPartitionsTargeted numPartitionsInProgress numPartitionsMaterialized numPartitionsFailed
          }
        }
      }
    }
    ... on Error { message }
  }
}"""


def benchmark_months(today: date, count: int) -> list[date]:
    """The ``count`` full months before the current one, oldest first."""
    months = [previous_month(today)]
    while len(months) < count:
        months.append(previous_month(months[-1]))
    return sorted(months)


def contiguous_ranges(order: list[str], wanted: set[str]) -> list[tuple[str, str]]:
    """Runs of ``wanted`` keys that are adjacent in the dynamic partition order."""
    ranges: list[tuple[str, str]] = []
    start = prev = None
    for key in order:
        if key in wanted:
            start = start or key
            prev = key
        elif start is not None:
            ranges.append((start, prev))  # type: ignore[arg-type]
            start = None
    if start is not None:
        ranges.append((start, prev))  # type: ignore[arg-type]
    return ranges


class Stack:
    """The shared e2e ``Stack`` (``lxp-reports up``) in a temp home with one batch size."""

    def __init__(self, warehouse: Path, batch_size: int, workdir: Path) -> None:
        self.home = new_home(workdir / f"batch{batch_size}", warehouse)
        self.stack = E2EStack(self.home, {"LXP_BACKFILL_BATCH_SIZE": str(batch_size)})
        self.stack.start(timeout=300)
        self.client = DagsterClient(self.stack.dagster_url, timeout=60)

    def check_alive(self) -> None:
        proc = self.stack.proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError("stack exited:\n" + self.stack.log_tail(3000))

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.client.execute(query, variables)

    def close(self) -> None:
        self.stack.stop(timeout=60)
        self.client.close()


def _wait(what: str, timeout: float, probe, stack: Stack, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        try:
            value = probe()
        except Exception:  # webserver still starting
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _runs(stack: Stack, *, backfill_id: str | None = None, statuses: list[str] | None = None) -> list[RunInfo]:
    tags = {"dagster/backfill": backfill_id} if backfill_id else None
    return stack.client.find_runs(tags=tags, statuses=statuses, limit=100_000)


def quiesce(stack: Stack, asset: str, institutions: int, timeout: float) -> tuple[list[str], int]:
    """Stop the monthly sensor, cancel its backfill if any, wait for idle; returns the institution order."""
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": "monthly_reports"}
    sensor = _wait(
        "the code location",
        timeout,
        lambda: (s := stack.gql(_SENSOR, {"selector": selector})["sensorOrError"])["__typename"] == "Sensor" and s,
        stack,
    )
    stopped = stack.gql(_STOP_SENSOR, {"id": sensor["id"]})["stopSensor"]
    if stopped["__typename"] != "StopSensorMutationResult":
        raise RuntimeError(f"stopSensor: {stopped}")

    wanted = {str(i) for i in range(1, institutions + 1)}

    def institution_keys() -> list[str] | None:
        node = stack.gql(_PARTITION_KEYS, {"assetKey": {"path": [asset]}})["assetNodeOrError"]
        dims = {d["name"]: d["partitionKeys"] for d in node.get("partitionKeysByDimension") or []}
        keys = dims.get("institution", [])
        return keys if wanted <= set(keys) else None

    order = _wait("institution_sync to register the institutions", timeout, institution_keys, stack, interval=2.0)
    cancelled = 0
    for status in ("REQUESTED",):
        found = stack.gql(_BACKFILLS, {"status": status})["partitionBackfillsOrError"]
        for backfill in found.get("results", []):
            stack.gql(_CANCEL, {"id": backfill["id"]})
            cancelled += 1
    _wait("no active runs", timeout, lambda: not _runs(stack, statuses=ACTIVE), stack, interval=2.0)
    return order, cancelled


@dataclass
class Result:
    batch_size: int
    partitions: int
    materialized: int
    failed: int
    runs: int
    wall_s: float
    first_run_s: float
    active_s: float
    run_seconds: float
    status: str
    cancelled_stray: int


def run_backfill(
    stack: Stack, asset: str, months: list[date], institutions: int, timeout: float, batch_size: int
) -> Result:
    order, cancelled = quiesce(stack, asset, institutions, timeout=300)
    wanted = {str(i) for i in range(1, institutions + 1)}
    ranges = [
        {"start": f"{a}|{m:%Y-%m-%d}", "end": f"{b}|{m:%Y-%m-%d}"}
        for m in months
        for a, b in contiguous_ranges(order, wanted)
    ]
    params = {
        "partitionsByAssets": [{"assetKey": {"path": [asset]}, "partitions": {"ranges": ranges}}],
        "title": f"benchmark batch={batch_size}",
        "tags": [{"key": "lxp/benchmark", "value": "backfill_throughput"}],
    }
    launched = stack.gql(_LAUNCH, {"params": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill: {launched}")
    backfill_id = launched["backfillId"]
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    status = "REQUESTED"
    try:
        while True:
            stack.check_alive()
            data = stack.gql(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            status, created = data["status"], float(data["timestamp"])
            counts = next(s for s in data["assetBackfillData"]["assetBackfillStatuses"] if "numPartitionsTargeted" in s)
            finished = (
                counts["numPartitionsMaterialized"] + counts["numPartitionsFailed"] >= counts["numPartitionsTargeted"]
            )
            if (finished or status in DONE_BACKFILL) and not _runs(stack, backfill_id=backfill_id, statuses=ACTIVE):
                break
            if time.monotonic() > deadline:
                stack.gql(_CANCEL, {"id": backfill_id})
                status = f"TIMEOUT after {timeout:.0f}s (cancelled)"
                break
            time.sleep(2)
    finally:
        runs = _runs(stack, backfill_id=backfill_id)
    ended = [r.ended_at.timestamp() for r in runs if r.ended_at]
    started = [r.started_at.timestamp() for r in runs if r.started_at]
    return Result(
        batch_size=batch_size,
        partitions=counts.get("numPartitionsTargeted", 0),
        materialized=counts.get("numPartitionsMaterialized", 0),
        failed=counts.get("numPartitionsFailed", 0),
        runs=len(runs),
        wall_s=(max(ended) - created) if ended else float("nan"),
        first_run_s=(min(started) - created) if started else float("nan"),
        active_s=(max(ended) - min(started)) if ended and started else float("nan"),
        run_seconds=sum((r.ended_at - r.started_at).total_seconds() for r in runs if r.ended_at and r.started_at),
        status=status,
        cancelled_stray=cancelled,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--batches", default="50,1", help="comma-separated LXP_BACKFILL_BATCH_SIZE values, one stack run each"
    )
    parser.add_argument("--asset", default="course_catalog")
    parser.add_argument("--institutions", type=int, default=10, help="institutions 1..N (small has 10)")
    parser.add_argument(
        "--months", type=int, default=0, help="full months before the current one (default 5, --quick 2)"
    )
    parser.add_argument("--scale", default="small")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per backfill before it is cancelled")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp homes (logs) for inspection")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    months = benchmark_months(datetime.now(UTC).date(), args.months or (2 if args.quick else 5))

    from orchestration.warehouse.generate import generate_warehouse

    workdir = Path(tempfile.mkdtemp(prefix="lxp-backfill-"))
    results: list[Result] = []
    try:
        warehouse = workdir / "warehouse.duckdb"
        generate_warehouse(args.scale, 42, str(warehouse))
        for batch in batches:
            print(f"batch size {batch}: starting the stack in {workdir}", file=sys.stderr)
            stack = Stack(warehouse, batch, workdir)
            try:
                results.append(run_backfill(stack, args.asset, months, args.institutions, args.timeout, batch))
                print(f"batch size {batch}: {results[-1]}", file=sys.stderr)
            finally:
                stack.close()
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\n`{args.asset}`, institutions 1..{args.institutions} x months {months[0]:%Y-%m}..{months[-1]:%Y-%m} "
        f"({args.scale} warehouse); wall = backfill created -> last run ended (server timestamps).\n"
    )
    print(
        "| batch size | partitions | materialized / failed | runs | wall s | first run started after s "
        "| first start -> last end s | partitions / min (wall) | sum of run durations s | status |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        per_min = r.materialized / (r.wall_s / 60) if r.wall_s == r.wall_s and r.wall_s > 0 else float("nan")
        print(
            f"| {r.batch_size} | {r.partitions} | {r.materialized} / {r.failed} | {r.runs} | {r.wall_s:.0f} | {r.first_run_s:.0f} "
            f"| {r.active_s:.0f} | {per_min:.1f} | {r.run_seconds:.0f} | {r.status} |"
        )
    if len(results) >= 2:
        base, other = results[0], results[-1]
        print(
            f"\nbatch {base.batch_size} vs batch {other.batch_size}: wall {other.wall_s / base.wall_s:.1f}x shorter, "
            f"{other.runs / max(base.runs, 1):.0f}x fewer runs, "
            f"{other.run_seconds / max(base.run_seconds, 1e-9):.1f}x fewer run-seconds."
        )
    stray = sum(r.cancelled_stray for r in results)
    if stray:
        print(
            f"\n({stray} backfill(s) submitted by the monthly_reports sensor on the fresh instances were cancelled before measuring.)"
        )
    return 0 if all(r.failed == 0 and r.materialized == r.partitions for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
