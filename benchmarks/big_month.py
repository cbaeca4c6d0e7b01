"""Benchmark: the big institution's month, the report's own work, phase by phase (issue 15).

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/big_month.py --warehouse /tmp/lat/large.duckdb
    PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/big_month.py --warehouse /tmp/lat/large.duckdb \\
        --reps 5 --report storyboard_usage --institution 50 --month 2026-11 --format xlsx

Why this shape: inside a run the big month's step is ``orchestration.produce.compute`` (extract),
the report's build (``Computed.frame``) and ``orchestration.produce.write_and_store`` (write the
file, hand it to storage); this does exactly those calls in one plain process, on the embedded path
(the DuckDB warehouse opened read-only, ``LocalReportStorage`` in a temp dir), ``--reps`` times
after one untimed warm-up, so the numbers are the report's and not Dagster's (the run's own start
and end are ``benchmarks/request_latency.py --breakdown``).

Per phase it prints wall seconds and the process's CPU seconds (``time.process_time``: user +
system of every thread, so DuckDB's, Polars' and the deflate threads count); on 2 cores CPU > wall
means both were busy. *write+store* is split into *write* and *store* (the time inside the
storage's ``put_file``). Every repetition prints the stored file's sha256 and size (read back from
storage, not taken from the code under test), and the script fails when they differ between
repetitions. To compare two versions of the code, run the same script on both trees (e.g. a
``git archive`` of the older commit) and compare the sha256 columns. Output is Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from assets.registry import REPORTS  # noqa: E402
from assets.request import RequestedReport  # noqa: E402
from orchestration.delivery.storage import LocalReportStorage  # noqa: E402
from orchestration.institutions import list_institutions  # noqa: E402
from orchestration.produce import compute, write_and_store  # noqa: E402
from orchestration.settings import Settings  # noqa: E402
from orchestration.warehouse.client import Warehouse  # noqa: E402

PHASES = ("extract", "build", "write", "store", "total")


class _Clock:
    """Wall and process-CPU seconds of named phases."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def add(self, phase: str, wall: float, cpu: float) -> None:
        self.wall[phase] = self.wall.get(phase, 0.0) + wall
        self.cpu[phase] = self.cpu.get(phase, 0.0) + cpu

    def timed(self, phase: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.add(phase, time.perf_counter() - w, time.process_time() - c)


class _TimedStorage(LocalReportStorage):
    """The real local storage; the time inside ``put_file`` is the *store* phase."""

    clock: _Clock

    def put_file(self, *args: Any, **kwargs: Any) -> Any:
        return self.clock.timed("store", super().put_file, *args, **kwargs)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest(), path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--warehouse", required=True, help="a DuckDB warehouse file (opened read-only)")
    parser.add_argument("--institution", type=int, default=50, help="institution id (50: the large scale's big one)")
    parser.add_argument("--month", default="2026-11", help="YYYY-MM")
    parser.add_argument("--report", default="storyboard_usage", help="report name (assets.registry.REPORTS)")
    parser.add_argument("--format", default=None, help="file format (default: the report's default)")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions after one warm-up")
    args = parser.parse_args()

    warehouse = Warehouse(f"duckdb:///{args.warehouse}")
    spec = REPORTS[args.report]
    institution = next(i for i in list_institutions(warehouse) if i.id == args.institution)
    year, month = (int(p) for p in args.month.split("-"))
    requested = RequestedReport.for_month(spec, institution, date(year, month, 1), args.format)
    as_of = datetime(2026, 12, 6, tzinfo=UTC)
    inputs = requested.inputs(Settings().report_options(), as_of)
    filename = requested.file_name(as_of)
    key = f"{spec.slug}/institution={institution.id}/{args.month}/{filename}"

    print(f"### {spec.name} {args.month}, institution {institution.id}, {requested.fmt} ({args.warehouse})\n")
    print("| rep | " + " | ".join(f"{p} wall / CPU s" for p in PHASES) + " | rows | bytes | sha256 |")
    print("|---|" + "---:|" * len(PHASES) + "---:|---:|---|")
    clocks: list[_Clock] = []
    files: set[tuple[str, int]] = set()
    with tempfile.TemporaryDirectory(prefix="big-month-") as tmp:
        for rep in range(args.reps + 1):
            clock = _Clock()
            storage = _TimedStorage(Path(tmp) / f"store{rep}", "http://bench", "k")
            storage.clock = clock
            w, c = time.perf_counter(), time.process_time()
            computed = clock.timed("extract", compute, spec, inputs, warehouse)
            frame = clock.timed("build", getattr, computed, "frame")  # Computed.frame builds on first use
            produced = clock.timed(
                "write", write_and_store, spec, computed, inputs, requested.fmt, storage, key, filename
            )
            clock.add("total", time.perf_counter() - w, time.process_time() - c)
            # "write" timed write + store; the store's own share is in "store".
            clock.add("write", -clock.wall["store"], -clock.cpu["store"])
            sha, size = _sha256(storage.path(key))
            if (sha, size) != (produced.sha256, produced.bytes):
                raise SystemExit(f"stored file {sha} / {size} B, produce says {produced.sha256} / {produced.bytes} B")
            files.add((sha, size))
            cells = " | ".join(f"{clock.wall[p]:.2f} / {clock.cpu[p]:.2f}" for p in PHASES)
            label = "warm-up" if rep == 0 else str(rep)
            print(f"| {label} | {cells} | {frame.height:,} | {size:,} | `{sha[:16]}…` |", flush=True)
            if rep:
                clocks.append(clock)
            del computed, frame
            storage.delete(key)
    if len(files) != 1:
        raise SystemExit(f"the file differs between repetitions: {sorted(files)}")
    cells = " | ".join(
        f"{statistics.median(k.wall[p] for k in clocks):.2f} / {statistics.median(k.cpu[p] for k in clocks):.2f}"
        for p in PHASES
    )
    print(f"| **median** | {cells} | | | |")
    sha, size = files.pop()
    print(f"\nfile: sha256 {sha}, {size:,} bytes")


if __name__ == "__main__":
    main()
