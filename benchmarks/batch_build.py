"""Benchmark: the report work of a ranged run, outside Dagster, batched vs one institution at a time.

    PYTHONPATH=. .venv/bin/python benchmarks/batch_build.py --warehouse /tmp/hb/w1000.duckdb --institutions 50

Why this shape: a backfill run's step is ``orchestration.batch.compute_many`` (extract once per chunk
and, with batch builders, build once per chunk) followed by one ``write_and_store`` per partition;
Dagster's own per-partition cost (the materialization event) is measured by
``benchmarks/monthly_backfill.py``. This times the report half alone, for the first N institutions
in registration order (what one run of ``LXP_BACKFILL_BATCH_SIZE`` holds), every monthly report, and
for comparison the single-partition path (the API's sync path: ``compute`` + render per institution).

CPU is the process's (``time.process_time``: DuckDB's and Polars' threads included), after one warm-up
pass; the files of both paths are compared byte for byte. Output is Markdown on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from assets.periods import previous_month  # noqa: E402
from assets.registry import REPORTS  # noqa: E402
from assets.request import RequestedReport  # noqa: E402
from orchestration.batch import compute_many  # noqa: E402
from orchestration.delivery.storage import LocalReportStorage  # noqa: E402
from orchestration.institutions import list_institutions, registration_order  # noqa: E402
from orchestration.produce import compute, write_and_store  # noqa: E402
from orchestration.settings import Settings  # noqa: E402
from orchestration.warehouse.client import Warehouse  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", required=True, help="a generated DuckDB warehouse file")
    parser.add_argument("--institutions", type=int, default=50, help="first N in registration order")
    parser.add_argument("--reps", type=int, default=2, help="timed passes after the warm-up (best is kept)")
    args = parser.parse_args()

    warehouse = Warehouse(f"duckdb:///{args.warehouse}")
    as_of = datetime.now(UTC)
    month = previous_month(as_of.date())
    institutions = registration_order(list_institutions(warehouse), as_of)[: args.institutions]
    options = Settings().report_options()
    root = Path(tempfile.mkdtemp(prefix="batch-build-"))
    n = len(institutions)

    def run(spec_name: str, batched: bool, out: Path) -> float:
        spec = REPORTS[spec_name]
        store = LocalReportStorage(out, "http://bench", "k")
        requests = [RequestedReport.for_month(spec, i, month) for i in institutions]
        inputs = [r.inputs(options, as_of) for r in requests]
        start = time.process_time()
        if batched:
            results = compute_many(spec, inputs, warehouse, Settings().batch_memory_mb)
        else:
            results = ((pos, compute(spec, inputs[pos], warehouse)) for pos in range(n))
        for pos, computed in results:
            if isinstance(computed, Exception):
                raise computed
            key = f"{spec.slug}/{requests[pos].file_name(as_of)}"
            write_and_store(spec, computed, inputs[pos], requests[pos].fmt, store, key, requests[pos].file_name(as_of))
        return time.process_time() - start

    print(f"### Report work of one ranged run: {n} institutions x each monthly report ({args.warehouse})\n")
    print("| report | batched CPU ms / partition | one at a time CPU ms / partition | files identical |")
    print("|---|---:|---:|---|")
    totals = [0.0, 0.0]
    for name, spec in REPORTS.items():
        if not spec.monthly:
            continue
        best = []
        for batched in (True, False):
            out = root / ("batched" if batched else "single")
            run(name, batched, out)  # warm-up
            best.append(min(run(name, batched, out) for _ in range(args.reps)))
        same = _digest(root / "batched" / spec.slug) == _digest(root / "single" / spec.slug)
        totals = [totals[0] + best[0], totals[1] + best[1]]
        print(f"| {name} | {1000 * best[0] / n:.1f} | {1000 * best[1] / n:.1f} | {'yes' if same else '**NO**'} |")
    reports = sum(1 for s in REPORTS.values() if s.monthly)
    print(f"| **all {reports}, per partition** | {1000 * totals[0] / (n * reports):.1f} | ", end="")
    print(f"{1000 * totals[1] / (n * reports):.1f} | |")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.*")}


if __name__ == "__main__":
    main()
