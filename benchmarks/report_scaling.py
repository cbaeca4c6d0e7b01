"""Benchmark: a small institution's report time vs warehouse size (SPEC §3).

    PYTHONPATH=. .venv/bin/python benchmarks/report_scaling.py            # small, medium, large (~19M rows)
    PYTHONPATH=. .venv/bin/python benchmarks/report_scaling.py --quick    # smaller "large", fewer repetitions
    PYTHONPATH=. .venv/bin/python benchmarks/report_scaling.py --quick --postgres   # + the same on PostgreSQL

SPEC §3: "A report for a small institution must cost about the same in a
warehouse of 50M rows as in one of 1M rows". Warehouses of increasing size are
generated into a temp dir (deleted at the end) from ``small``'s per-institution
sizes with more institutions (the largest one also gets the big institution),
so institution 1 holds *the same rows* in every warehouse (the generator keys
each institution's draws by its own id, and institution 1 comes first); the
script checks that its reports are identical everywhere.

For storyboard usage and course catalog of institution 1, last full month, it
times, interleaved (every repetition runs every cell once, in a shuffled order),
median of ``--reps``:

* ours        — ``compute(spec, RequestedReport.for_month(...).inputs(...), Warehouse(url))``: the
                spec's queries with institution + period pushed down;
* alternative — the obvious approach: the same columns of every table the spec
                reads, whole (no WHERE), handed to the same Polars builder,
                which filters institution and period itself.

Both include opening the connection, as a report run does. The outputs must be
equal (checked). ``--postgres`` loads every warehouse into PostgreSQL too (a
private throwaway server, or the server at a URL) and times both engines in
the same round-robin: there the alternative pays for shipping whole tables over
the socket, as it would against the production warehouse. Finally, for information, the big institution's storyboard
usage report (> 1M rows) on the largest warehouse: compute + ``write_xlsx``.
Output is Markdown.

``--big-warehouse URL`` (repeatable) measures instead the big institution of an
existing warehouse on each engine, e.g. the ``large`` data loaded by
``lxp-reports generate --scale large`` into DuckDB and into PostgreSQL: its
busiest month (most story views) of storyboard usage, extraction and whole
compute (extract + build) timed in a fresh spawned process per engine and
repetition, with that process's peak RSS, and the ratio to DuckDB side by side.
Pass the PostgreSQL URL once as ``postgresql://`` (ADBC) and once as
``redshift://`` to time the Redshift path (server-side cursor) on the same data.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from assets.periods import previous_month  # noqa: E402
from assets.registry import REPORTS  # noqa: E402
from assets.request import RequestedReport  # noqa: E402
from assets.spec import ReportRequest, ReportSpec  # noqa: E402
from orchestration.institutions import load_institution  # noqa: E402
from orchestration.produce import compute  # noqa: E402
from orchestration.settings import Settings  # noqa: E402
from orchestration.warehouse.client import Warehouse, close_idle_connections  # noqa: E402
from orchestration.warehouse.generate import with_big_institution  # noqa: E402
from orchestration.warehouse.scales import SCALES, Scale  # noqa: E402

REPORT_NAMES = ("storyboard_usage", "course_catalog")
SMALL_INSTITUTION = 1
_FIRST_SELECT = re.compile(r"^\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+(?P<table>\w+)", re.IGNORECASE | re.DOTALL)


def warehouse_scales(quick: bool) -> list[Scale]:
    """Same per-institution sizes as ``small`` (so institution 1 is identical), more institutions."""
    base = SCALES["small"]
    medium = replace(base, name="medium", institutions=60)
    if quick:
        large = with_big_institution(replace(base, name="large-quick", institutions=120), 12_000, 30)
    else:
        large = with_big_institution(replace(base, name="large", institutions=300), 60_000, 40)
    return [base, medium, large]


def unpushed_queries(spec: ReportSpec) -> dict[str, str]:
    """Each query's leading ``SELECT <cols> FROM <table>`` without any WHERE: whole tables."""
    out: dict[str, str] = {}
    for name, sql in spec.queries.items():
        m = _FIRST_SELECT.match(sql)
        if m is None:
            raise ValueError(f"{spec.name}.{name}: cannot find the leading SELECT ... FROM table")
        out[name] = f"SELECT {m.group('cols')} FROM {m.group('table')}"
    return out


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


@dataclass
class Measurement:
    warehouse: str
    warehouse_rows: int
    report: str
    out_rows: int
    extracted_ours: int
    extracted_alt: int
    ours_s: float
    alt_s: float
    ours_min_s: float
    alt_min_s: float
    frame_hash: int


def _request(url: str, institution_id: int, now: datetime) -> ReportRequest:
    inst = load_institution(Warehouse(url), institution_id)
    month = previous_month(now.astimezone(inst.tz).date())
    return RequestedReport.for_month(REPORTS["storyboard_usage"], inst, month).inputs(
        Settings().report_options(), as_of=now
    )


def _check_and_hash(name: str, url: str, request: ReportRequest) -> dict[str, tuple[int, int, int, int]]:
    """Per report: (report rows, rows extracted ours, rows extracted alternative, report hash);
    fails if the whole-table alternative builds a different report."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for report in REPORT_NAMES:
        spec = REPORTS[report]
        ours = compute(spec, request, Warehouse(url))
        alt = compute(replace(spec, queries=unpushed_queries(spec)), request, Warehouse(url))
        if not ours.frame.equals(alt.frame):
            raise AssertionError(f"{report} on {name}: the whole-table alternative built a different report")
        out[report] = (
            ours.frame.height,
            sum(f.height for f in ours.frames.values()),
            sum(f.height for f in alt.frames.values()),
            int(ours.frame.hash_rows(seed=0).sum()),
        )
    return out


def measure(warehouses: list[tuple[str, str, int]], now: datetime, reps: int) -> list[Measurement]:
    """Every repetition runs every cell (warehouse x report x ours/alternative) once, in a
    shuffled order, so load changes on the (shared) machine hit every cell alike; medians per cell."""
    requests = {name: _request(url, SMALL_INSTITUTION, now) for name, url, _ in warehouses}
    checks = {name: _check_and_hash(name, url, requests[name]) for name, url, _ in warehouses}  # also the warm-up
    specs = {r: (REPORTS[r], replace(REPORTS[r], queries=unpushed_queries(REPORTS[r]))) for r in REPORT_NAMES}
    cells = [
        (name, url, report, variant, spec)
        for name, url, _rows in warehouses
        for report, pair in specs.items()
        for variant, spec in enumerate(pair)
    ]
    times: dict[tuple[str, str, int], list[float]] = {}
    order = random.Random(0)
    for _ in range(reps):
        order.shuffle(cells)  # no cell always runs right after the heaviest one (its server/GC aftermath)
        for name, url, report, variant, spec in cells:
            elapsed = timed(lambda spec=spec, name=name, url=url: compute(spec, requests[name], Warehouse(url)).frame)[
                0
            ]  # .frame: extract + build
            times.setdefault((name, report, variant), []).append(elapsed)
            gc.collect()  # the previous cell's garbage (millions of rows) must not be the next cell's cost
    out: list[Measurement] = []
    for name, _url, rows in warehouses:
        for report in REPORT_NAMES:
            out_rows, ext_ours, ext_alt, digest = checks[name][report]
            out.append(
                Measurement(
                    warehouse=name,
                    warehouse_rows=rows,
                    report=report,
                    out_rows=out_rows,
                    extracted_ours=ext_ours,
                    extracted_alt=ext_alt,
                    ours_s=statistics.median(times[(name, report, 0)]),
                    alt_s=statistics.median(times[(name, report, 1)]),
                    ours_min_s=min(times[(name, report, 0)]),
                    alt_min_s=min(times[(name, report, 1)]),
                    frame_hash=digest,
                )
            )
    return out


def big_institution_report(url: str, institution_id: int, now: datetime, tmp: Path, reps: int = 3) -> dict[str, float]:
    """The > 1M-row storyboard usage report: compute, then write the xlsx (medians of ``reps``)."""
    from assets.writers.xlsx import write_xlsx

    spec = REPORTS["storyboard_usage"]
    request = _request(url, institution_id, now)
    path = tmp / "big.xlsx"
    compute_t: list[float] = []
    write_t: list[float] = []
    rows = 0
    for _ in range(reps):
        elapsed, frame = timed(lambda: compute(spec, request, Warehouse(url)).frame)  # extract + build
        compute_t.append(elapsed)
        rows = frame.height
        write_t.append(timed(lambda frame=frame: write_xlsx(frame, spec.columns, path, sheet_name=spec.sheet_name))[0])
        del frame
    return {
        "rows": rows,
        "compute_s": statistics.median(compute_t),
        "write_s": statistics.median(write_t),
        "mb": path.stat().st_size / 1e6,
    }


@dataclass
class BigRun:
    engine: str
    rows: int
    extract_s: float
    compute_s: float
    peak_rss_mb: float
    frame_hash: int


def _busiest_month(url: str, institution_id: int) -> str:
    """The institution's month (UTC month of the timestamps; good enough to pick it) with most story views."""
    frame = Warehouse(url).query(
        "SELECT CAST(EXTRACT(YEAR FROM viewed_at) AS BIGINT) AS y, CAST(EXTRACT(MONTH FROM viewed_at) AS BIGINT) AS m,"
        " COUNT(*) AS n FROM story_views WHERE institution_id = :institution_id GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
        {"institution_id": institution_id},
    )
    return f"{frame['y'][0]:04d}-{frame['m'][0]:02d}"


def _big_child(url: str, institution_id: int, month: str) -> tuple[int, float, float, float, int]:
    """Child-process body: one whole compute of the big report; (rows, extract s, compute s, peak RSS MB, hash)."""
    import resource

    spec = REPORTS["storyboard_usage"]
    inst = load_institution(Warehouse(url), institution_id)
    first = datetime.strptime(month, "%Y-%m").date()
    request = RequestedReport.for_month(spec, inst, first).inputs(Settings().report_options(), as_of=datetime.now(UTC))
    started = time.perf_counter()
    computed = compute(spec, request, Warehouse(url))  # extraction happens here
    extracted = time.perf_counter()
    frame = computed.frame  # the build
    done = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return frame.height, extracted - started, done - started, peak_mb, int(frame.hash_rows(seed=0).sum())


def big_institution_engines(urls: list[str], institution_id: int, month: str, reps: int) -> list[BigRun]:
    """Every repetition runs every engine once, each in a fresh spawned process (so the peak RSS is
    that engine's alone and no allocator state carries over); medians of time, max of peak RSS."""
    ctx = multiprocessing.get_context("spawn")
    samples: dict[str, list[tuple[int, float, float, float, int]]] = {u: [] for u in urls}
    for _ in range(reps):
        for url in urls:
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                samples[url].append(pool.submit(_big_child, url, institution_id, month).result())
    out = []
    for url in urls:
        got = samples[url]
        out.append(
            BigRun(
                engine=url.split("://", 1)[0]
                .replace("postgresql", "postgres (ADBC)")
                .replace("redshift", "redshift path (cursor, on PostgreSQL)"),
                rows=got[0][0],
                extract_s=statistics.median(g[1] for g in got),
                compute_s=statistics.median(g[2] for g in got),
                peak_rss_mb=max(g[3] for g in got),
                frame_hash=got[0][4],
            )
        )
    return out


def print_big_engines(runs: list[BigRun], institution_id: int, month: str, reps: int) -> None:
    base = runs[0]
    print(
        f"\nBig institution {institution_id}, storyboard usage {month}; whole compute = extract + build, "
        f"median of {reps} fresh processes per engine; peak RSS = max over them.\n"
    )
    print("| engine | report rows | extract s | whole compute s | vs first | peak RSS MB | same cells |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for run in runs:
        same = "yes" if (run.rows, run.frame_hash) == (base.rows, base.frame_hash) else "NO"
        print(
            f"| {run.engine} | {run.rows:,} | {run.extract_s:.2f} | {run.compute_s:.2f} "
            f"| {run.compute_s / base.compute_s:.2f}x | {run.peak_rss_mb:,.0f} | {same} |"
        )


def _generate_into(scale: Scale, seed: int, outs: list[str], now: datetime) -> int:
    """Child-process body: generate once, load into every target; returns the row count."""
    import os

    os.dup2(2, 1)  # DuckDB's progress bar goes to stdout; keep the parent's Markdown clean
    from orchestration.warehouse.generate import generate
    from orchestration.warehouse.load import load

    frames = generate(scale, seed, now)
    for out in outs:
        load(frames, out)
    return sum(f.height for f in frames.values())


def _generate(scale: Scale, seed: int, outs: list[str], now: datetime) -> tuple[int, float]:
    """Generate in a spawned child, so the ~4 GB of frames of the largest warehouse never
    live in (or fragment the allocator of) the process that takes the timings."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        started = time.perf_counter()
        rows = pool.submit(_generate_into, scale, seed, outs, now).result()
        return rows, time.perf_counter() - started


@contextmanager
def _postgres(option: str) -> Iterator[str | None]:
    """No PostgreSQL (""), a private throwaway server ("auto"), or the server at a URL."""
    if not option:
        yield None
    elif option == "auto":
        from tests.services.postgres import postgres_server

        with postgres_server() as url:
            yield url
    else:
        yield option


def _create_database(server_url: str, name: str) -> str:
    import psycopg2

    con = psycopg2.connect(server_url)
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def _drop_database(server_url: str, name: str) -> None:
    import psycopg2

    con = psycopg2.connect(server_url)
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a ~5M-row largest warehouse and 5 repetitions")
    parser.add_argument("--reps", type=int, default=0, help="timed repetitions per cell (default 15, --quick 5)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-big", action="store_true", help="skip the big institution's xlsx")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="auto",
        default="",
        help="also load every warehouse into PostgreSQL and time it there: a server URL (databases "
        "lxp_bench_* are created and dropped) or 'auto' (a private throwaway server; needs the "
        "postgresql apt package). Use with --quick: whole tables over a socket are slow.",
    )
    parser.add_argument(
        "--big-warehouse",
        action="append",
        default=[],
        metavar="URL",
        help="measure only the big institution on these existing warehouses (first = the reference), e.g. "
        "duckdb:///var/large.duckdb postgresql://... redshift://... (the same data)",
    )
    parser.add_argument("--big-institution", type=int, default=50, help="with --big-warehouse (large: 50)")
    parser.add_argument("--big-month", default="", help="YYYY-MM; default: the institution's busiest month")
    args = parser.parse_args()
    reps = args.reps or (5 if args.quick else 15)
    if args.big_warehouse:
        reps = args.reps or 3
        month = args.big_month or _busiest_month(args.big_warehouse[0], args.big_institution)
        runs = big_institution_engines(args.big_warehouse, args.big_institution, month, reps)
        print_big_engines(runs, args.big_institution, month, reps)
        return 0
    now = datetime.now(UTC).replace(microsecond=0)  # one 'now' for every warehouse: same months, same rows
    started = time.perf_counter()
    big: dict[str, float] | None = None
    scales = warehouse_scales(args.quick)
    with tempfile.TemporaryDirectory(prefix="lxp-scaling-") as tmp_name, _postgres(args.postgres) as pg_server:
        tmp = Path(tmp_name)
        warehouses: list[tuple[str, str, int]] = []
        databases: list[str] = []
        try:
            for scale in scales:
                path = tmp / f"{scale.name}.duckdb"
                outs = [str(path)]
                if pg_server:
                    databases.append(f"lxp_bench_{scale.name.replace('-', '_')}")
                    outs.append(_create_database(pg_server, databases[-1]))
                rows, gen_s = _generate(scale, args.seed, outs, now)
                print(
                    f"generated {scale.name}: {scale.institutions} institutions, {rows:,} rows, "
                    f"{path.stat().st_size / 1e6:.0f} MB (DuckDB) in {gen_s:.1f}s",
                    file=sys.stderr,
                )
                warehouses.append((f"{scale.name} duckdb", f"duckdb:///{path}", rows))
                if pg_server:
                    warehouses.append((f"{scale.name} postgres", outs[1], rows))
            results = measure(warehouses, now, reps)
            largest_scale = scales[-1]
            if largest_scale.big_institution_users and not args.skip_big:
                big = big_institution_report(
                    f"duckdb:///{tmp / largest_scale.name}.duckdb", largest_scale.institutions, now, tmp
                )
        finally:
            close_idle_connections()  # pooled ADBC connections would block DROP DATABASE
            for name in databases if pg_server and args.postgres != "auto" else []:
                _drop_database(pg_server, name)
    elapsed = time.perf_counter() - started

    print(
        f"\nInstitution {SMALL_INSTITUTION}, last full month; ms, median (min) of {reps} shuffled round-robin repetitions.\n"
    )
    print(
        "| warehouse | warehouse rows | report | report rows | rows extracted ours / alt | ours ms | alternative ms | alt / ours |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for m in results:
        print(
            f"| {m.warehouse} | {m.warehouse_rows:,} | {m.report} | {m.out_rows:,} | {m.extracted_ours:,} / {m.extracted_alt:,} "
            f"| {m.ours_s * 1000:.1f} ({m.ours_min_s * 1000:.1f}) | {m.alt_s * 1000:.1f} ({m.alt_min_s * 1000:.1f}) "
            f"| {m.alt_s / m.ours_s:.1f}x |"
        )
    engines = [e for e in ("duckdb", "postgres") if any(m.warehouse.endswith(e) for m in results)]
    smallest, largest = scales[0].name, scales[-1].name
    print(
        f"\nGrowth from {smallest} to {largest} ({results[-1].warehouse_rows / results[0].warehouse_rows:.0f}x the rows):\n"
    )
    print("| engine | report | ours large/small | alternative large/small | identical report in every warehouse |")
    print("|---|---|---:|---:|---|")
    for engine in engines:
        for report in REPORT_NAMES:
            rows = [m for m in results if m.report == report]
            lo = next(m for m in rows if m.warehouse == f"{smallest} {engine}")
            hi = next(m for m in rows if m.warehouse == f"{largest} {engine}")
            same = "yes" if len({m.frame_hash for m in rows}) == 1 and len({m.out_rows for m in rows}) == 1 else "NO"
            print(f"| {engine} | {report} | {hi.ours_s / lo.ours_s:.2f} | {hi.alt_s / lo.alt_s:.2f} | {same} |")
    if big is not None:
        print(
            f"\nBig institution (id {scales[-1].institutions}) on {largest} (DuckDB), storyboard usage, median of 3: "
            f"{big['rows']:,.0f} rows; compute {big['compute_s']:.1f}s, write_xlsx {big['write_s']:.1f}s "
            f"({big['mb']:.0f} MB)."
        )
    print(f"\nTotal benchmark time {elapsed:.0f}s (including generation).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
