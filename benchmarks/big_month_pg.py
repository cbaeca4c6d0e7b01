"""Benchmark: the big institution's month on the production topology's stores, phase by phase, in a plain process.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/big_month_pg.py [--large /tmp/lat/large.duckdb]
        [--data /tmp/bigpg] [--reps 3] [--institution 50] [--month 2026-11] [--fmt xlsx]
        [--per-query] [--explain] [--pgoptions "-c work_mem=64MB"] [--server-options "-c shared_buffers=1GB"]
        [--users-query report|institution]

Why: inside a run on the production topology (PostgreSQL warehouse read through ADBC, reports stored in
S3) the big month's step took 8.7 s against 5.2-5.5 s on the embedded stack (DuckDB, local files). This
does what the step does — ``orchestration.produce.compute`` (the report's five queries, side by side on
pooled ADBC connections), the build, ``render_file`` and ``S3ReportStorage.put_file`` — in one process
against the same kind of servers, and says for each phase its wall time, this process's CPU, the
PostgreSQL server's CPU and the S3 server's CPU (``/proc``: utime + stime of the postmaster and its
children, plus what it reaped from exited ones, e.g. parallel workers).

The stores: a PostgreSQL 15 cluster under ``--data`` (initdb'd and loaded with the ``large`` DuckDB
warehouse once, by the generator's own loader as ``request_latency.py --profile production`` does;
kept between runs, started on a free port with the settings of ``tests/services/postgres.py``), and a
moto S3 server (``tests/services/s3.py``). Every repetition starts with no pooled ADBC connection but
one opened by the institution look-up, as a fresh run worker does, so connection set-up is counted.

``--per-query`` adds, per query on one connection in sequence: the server's time without the transfer
(``SELECT count(*) FROM (query)``), the ADBC fetch (COPY binary -> Arrow, server time included) and
Arrow -> Polars. ``--explain`` prints ``EXPLAIN (ANALYZE, BUFFERS)`` of each query once.
``--pgoptions`` is put in ``PGOPTIONS`` (libpq: server settings for this process's sessions);
``--server-options`` adds ``-c`` settings to the server's start (``tests/services/postgres.py``'s
servers keep PostgreSQL's defaults, e.g. ``shared_buffers`` 128 MB and ``work_mem`` 4 MB).
The written file's size and sha256 are printed each repetition (the report must not change).

For a same-load comparison each repetition also runs the embedded stack's two differing phases on the
same inputs: the extraction from the DuckDB file (``extract (duckdb)``, whose frames must equal
PostgreSQL's) and ``LocalReportStorage.put_file`` of the same file (``store (local)``); and the S3
upload again with the digest handed in (``store (digest given)``: ``put_file(..., sha256=)`` skips
hashing the file again). They are not part of ``step``.

``--users-query institution`` measures a candidate change of the report's queries (``assets/``, not
made here): every user of the institution instead of the semi-join with the month's events (the
builder's inner join keeps only users with interactions, so the file must not change).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.services.postgres import _free_port, _run, _runner, create_database, find_bindir  # noqa: E402
from tests.services.s3 import CREDENTIALS, free_port, start_moto, stop_moto  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
DATABASE = "warehouse"
BUCKET = "bigpg-reports"


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its live children, plus what ``root`` reaped from exited children."""
    fields = _stat(root)
    if fields is None:
        return 0.0
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        child = _stat(int(entry))
        if child is not None and int(child[1]) == root:  # fields[1] = ppid (after the state field)
            ticks += int(child[11]) + int(child[12])
    return ticks / TICK


@dataclass(frozen=True)
class Cluster:
    url: str  # the server's postgres database
    postmaster: int


@contextmanager
def kept_cluster(data_root: Path, large: Path, extra_options: str = "") -> Iterator[Cluster]:
    """A PostgreSQL 15 cluster under ``data_root`` holding the ``large`` warehouse in database ``warehouse``:
    initdb'd and loaded the first time, started (free port) for this run and stopped after it.
    ``extra_options``: more ``-c name=value`` server settings (e.g. ``shared_buffers``)."""
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("initdb/pg_ctl not found")
    prefix, uid, gid = _runner()
    data, log, loaded = data_root / "data", data_root / "server.log", data_root / "loaded"
    data_root.mkdir(parents=True, exist_ok=True)
    if uid is not None:
        os.chown(data_root, uid, gid or -1)
    if not (data / "PG_VERSION").exists():
        _run(
            prefix,
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
            + ["--locale=C.UTF-8", "--no-sync"],
            data_root,
        )
    port = _free_port()
    options = (  # as tests/services/postgres.py starts its servers
        f"-p {port} -k {data_root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
    ) + (f" {extra_options}" if extra_options else "")
    _run(prefix, [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"], data_root)
    try:
        server = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        url = server.rsplit("/", 1)[0] + f"/{DATABASE}"
        if not loaded.exists():
            from benchmarks.request_latency import _copy_to_postgres

            try:
                create_database(server, DATABASE)
            except Exception:
                pass  # left by an interrupted load: the loader drops and recreates the tables
            started = time.monotonic()
            _copy_to_postgres(large, url)
            loaded.write_text(f"{large} loaded in {time.monotonic() - started:.1f} s\n")
            print(f"loaded {large} into PostgreSQL in {time.monotonic() - started:.1f} s", flush=True)
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        yield Cluster(url, postmaster)
    finally:
        _run(prefix, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], data_root)


@dataclass
class Sample:
    wall: float
    cpu: float  # this process
    pg: float  # the PostgreSQL server
    s3: float  # the moto server


class Meter:
    def __init__(self, postmaster: int, moto: int) -> None:
        self.postmaster, self.moto = postmaster, moto

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Sample, Any]:
        pg0, s30, cpu0, t0 = tree_cpu(self.postmaster), tree_cpu(self.moto), time.process_time(), time.perf_counter()
        out = fn(*args, **kwargs)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        return Sample(wall, cpu, tree_cpu(self.postmaster) - pg0, tree_cpu(self.moto) - s30), out


def per_query(url: str, queries: dict[str, str], params: dict[str, Any], meter: Meter) -> dict[str, dict[str, Sample]]:
    """Each query alone on one (pooled) connection: server time, ADBC fetch, Arrow -> Polars."""
    import polars as pl

    from orchestration.warehouse.client import _adbc_connection, inline

    out: dict[str, dict[str, Sample]] = {}
    with _adbc_connection(url) as con:
        for name, sql in queries.items():
            text = inline(sql, {k: v for k, v in params.items() if f":{k}" in sql})

            def count(text: str = text) -> None:
                with con.cursor() as cur:
                    cur.execute(f"SELECT count(*) FROM ({text}) AS q")
                    cur.fetchall()

            def fetch(text: str = text) -> Any:
                with con.cursor() as cur:
                    cur.execute(text)
                    return cur.fetch_arrow_table()

            server, _ = meter(count)
            fetched, table = meter(fetch)
            polars, _ = meter(pl.from_arrow, table, rechunk=False)
            out[name] = {"server": server, "fetch": fetched, "to polars": polars}
            out[name]["rows"] = Sample(table.num_rows, table.nbytes / 1e6, 0, 0)  # (rows, Arrow MB), for the table
            del table
    return out


def explain(url: str, queries: dict[str, str], params: dict[str, Any]) -> None:
    import psycopg2

    from orchestration.warehouse.client import inline, libpq_url

    with psycopg2.connect(libpq_url(url)) as con, con.cursor() as cur:
        for name, sql in queries.items():
            cur.execute(
                "EXPLAIN (ANALYZE, BUFFERS) " + inline(sql, {k: v for k, v in params.items() if f":{k}" in sql})
            )
            print(f"\n-- {name}\n" + "\n".join(r[0] for r in cur.fetchall()), flush=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", type=Path, default=Path("/tmp/lat/large.duckdb"))
    parser.add_argument("--data", type=Path, default=Path("/tmp/bigpg"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--institution", type=int, default=50)
    parser.add_argument("--month", default="2026-11")
    parser.add_argument("--fmt", default="xlsx")
    parser.add_argument("--per-query", action="store_true")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--pgoptions", default="", help="PGOPTIONS for this process's sessions")
    parser.add_argument("--server-options", default="", help="more -c settings for the server, e.g. shared_buffers")
    parser.add_argument("--users-query", choices=("report", "institution"), default="report")
    args = parser.parse_args()
    if args.pgoptions:
        os.environ["PGOPTIONS"] = args.pgoptions
    os.environ.update(CREDENTIALS)

    from assets.registry import REPORTS
    from assets.request import RequestedReport
    from assets.writers.formats import CONTENT_TYPES
    from assets.writers.render import Computed, render_file
    from orchestration.delivery.storage import LocalReportStorage, S3ReportStorage
    from orchestration.institutions import load_institution
    from orchestration.settings import Settings
    from orchestration.warehouse.client import Warehouse, close_idle_connections

    spec = REPORTS["storyboard_usage"]
    if args.users_query == "institution":
        users = "SELECT id, institution_id, name, email, cpf, cnpj FROM users WHERE institution_id = :institution_id"
        spec = replace(spec, queries={**spec.queries, "users": users})
    embedded = Warehouse(f"duckdb:///{args.large.resolve()}")
    with kept_cluster(args.data.resolve(), args.large.resolve(), args.server_options) as cluster:
        port = free_port()
        moto = start_moto(port)
        try:
            endpoint = f"http://127.0.0.1:{port}"
            storage = S3ReportStorage(BUCKET, "lxp/reports", endpoint_url=endpoint)
            storage.client.create_bucket(Bucket=BUCKET)
            meter = Meter(cluster.postmaster, moto.pid)
            phases: dict[str, list[Sample]] = {}
            queries: dict[str, dict[str, list[Sample]]] = {}
            first = datetime.strptime(args.month, "%Y-%m").date().replace(day=1)
            for rep in range(args.reps):
                close_idle_connections()  # a run worker starts with no pooled connection
                gc.collect()
                warehouse = Warehouse(cluster.url)
                inst = load_institution(warehouse, args.institution)  # the asset's look-up: one connection
                request = RequestedReport.for_month(spec, inst, date(first.year, first.month, 1), fmt=args.fmt)
                inputs = request.inputs(Settings().report_options(), as_of=datetime.now(UTC))
                got: dict[str, Sample] = {}
                reference: dict[str, Sample] = {}
                got["extract"], frames = meter(warehouse.query_many, spec.queries, inputs.query_params())
                computed = Computed(spec=spec, request=inputs, frames=frames)
                got["build"], frame = meter(getattr, computed, "frame")
                with tempfile.TemporaryDirectory(prefix="bigpg-") as tmp:
                    path = Path(tmp) / f"big.{args.fmt}"
                    got["render"], _ = meter(render_file, spec, computed, inputs, args.fmt, path)
                    key = f"storyboard-usage/institution={inst.id}/{args.month}/big.{args.fmt}"
                    got["store"], stored = meter(storage.put_file, path, key, CONTENT_TYPES[args.fmt])
                    digest = _sha256(path)
                    assert stored.sha256 == digest
                    reference["store (digest given)"], _ = meter(
                        storage.put_file, path, key, CONTENT_TYPES[args.fmt], sha256=digest
                    )
                    local = LocalReportStorage(Path(tmp) / "store", "http://localhost", "secret")
                    reference["store (local)"], _ = meter(local.put_file, path, key, CONTENT_TYPES[args.fmt])
                got["step"] = Sample(*(sum(getattr(s, f) for s in got.values()) for f in ("wall", "cpu", "pg", "s3")))
                reference["extract (duckdb)"], duck = meter(embedded.query_many, spec.queries, inputs.query_params())
                for name, table in duck.items():
                    if not table.sort(table.columns).equals(frames[name].sort(table.columns)):
                        raise AssertionError(f"{name}: DuckDB and PostgreSQL extracted different frames")
                del duck
                got.update(reference)
                for name, sample in got.items():
                    phases.setdefault(name, []).append(sample)
                print(
                    f"rep {rep + 1}: rows {frame.height:,}, {stored.bytes:,} bytes, sha256 {stored.sha256[:16]}…, "
                    + ", ".join(f"{n} {s.wall:.2f}" for n, s in got.items())
                    + f" s; load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
                del computed, frame, frames
                if args.per_query:
                    for name, parts in per_query(cluster.url, spec.queries, inputs.query_params(), meter).items():
                        for part, sample in parts.items():
                            queries.setdefault(name, {}).setdefault(part, []).append(sample)
                if args.explain and rep == 0:
                    explain(cluster.url, spec.queries, inputs.query_params())
            print(f"\nmedians of {args.reps} (s): wall / this process's CPU / PostgreSQL CPU / S3 server CPU")
            print("| phase | wall | CPU | PostgreSQL CPU | S3 CPU |\n|---|---:|---:|---:|---:|")
            for name, samples in phases.items():
                m = [statistics.median(getattr(s, f) for s in samples) for f in ("wall", "cpu", "pg", "s3")]
                print(f"| {name} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} |")
            if queries:
                print("\nper query, alone on one connection, medians (s; wall / CPU / PostgreSQL CPU):")
                print("| query | rows | MB (Arrow) | server (count) | fetch (COPY -> Arrow) | Arrow -> Polars |")
                print("|---|---:|---:|---|---|---|")
                for name, parts in queries.items():
                    cells = []
                    for part in ("server", "fetch", "to polars"):
                        m = [statistics.median(getattr(s, f) for s in parts[part]) for f in ("wall", "cpu", "pg")]
                        cells.append(f"{m[0]:.2f} / {m[1]:.2f} / {m[2]:.2f}")
                    rows = parts["rows"][0]
                    print(f"| {name} | {int(rows.wall):,} | {rows.cpu:.0f} | " + " | ".join(cells) + " |")
            print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            close_idle_connections()
            stop_moto(moto)


if __name__ == "__main__":
    main()
