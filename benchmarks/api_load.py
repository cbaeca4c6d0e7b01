"""Benchmark: API latency (p50/p99) and throughput per request kind against the real stack.

    PYTHONPATH=. .venv/bin/python benchmarks/api_load.py [--scale tiny] [--big-library 100000] [--requests 300]
    PYTHONPATH=. .venv/bin/python benchmarks/api_load.py --base-url http://127.0.0.1:8000 --jwt-secret ...

Without ``--base-url`` it generates a warehouse in a temp ``LXP_HOME`` (the
scale's last institution gets ``--big-library`` library contents), starts
``lxp-reports up`` (Dagster webserver + daemon + API under uvicorn, loopback
only), primes the cache by materializing last month's storyboard-usage
partition through the API, and then measures, side by side in one table:

* cache hit       — the async endpoint answering ``{"cached": true}``;
* validation err  — the same endpoint with ``month=13`` (400 ``invalid_argument``);
* library page    — ``GET /institution/library/contents`` (pages 1-50 in turn, 20
                    items) of the big-library institution;
* library search  — the same with ``search=a`` (accent-folded LIKE over every title);
* job status      — ``GET /institution/reports/jobs/{id}`` polling;
* sync workload   — ``POST /reports/bookings-workload`` computed from the warehouse;
* launch          — a new ad-hoc catalog range per request (cache miss, in-flight
                    claim, ``launchRun`` through GraphQL; each becomes a real run);
* join            — identical requests while that run is queued (in-flight hit).

Every kind is run twice: one request at a time (latency p50/p99: what one
caller sees) and from ``--concurrency`` client threads (throughput, and the
latency under that load). Launches and joins come last: the runs they start
execute in the background and would load the machine for the other kinds.
Requests go through real HTTP (httpx, keep-alive); the rate limit is raised
for the run. Output is Markdown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import jwt  # noqa: E402

from tests.e2e.stack import Stack  # noqa: E402


def _token(secret: str, institution: int, user: int) -> str:
    claims = {
        "institutionId": institution,
        "userId": user,
        "subdomain": "bench",
        "privilegio_id": 2,
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _last_full_month() -> tuple[int, int]:
    now = datetime.now(UTC)
    return (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)


class BenchStack:
    """The shared e2e ``Stack`` (``lxp-reports up``) over a temp home with a generated warehouse."""

    def __init__(self, scale: str, secret: str, big_library: int) -> None:
        from orchestration.warehouse.generate import generate_warehouse, with_big_institution
        from orchestration.warehouse.scales import SCALES

        self.tmp = tempfile.TemporaryDirectory(prefix="lxp-bench-", ignore_cleanup_errors=True)
        home = Path(self.tmp.name)
        base = SCALES[scale]
        sized = base
        if big_library and not base.big_institution_library_contents:
            sized = with_big_institution(
                base, base.users_per_institution, base.storyboards_per_institution, big_library
            )
        generate_warehouse(sized, 42, str(home / "warehouse.duckdb"))
        self.big_institution = sized.institutions if sized.big_institution_library_contents else 1
        self.warehouse = home / "warehouse.duckdb"
        self.stack = Stack(home, {"LXP_JWT_SECRET": secret, "LXP_RATE_LIMIT": "100000/minute"})
        try:
            self.stack.start(timeout=240)
        except BaseException:
            self.tmp.cleanup()
            raise
        self.base_url = self.stack.base

    def close(self) -> None:
        self.stack.stop(timeout=40)
        self.tmp.cleanup()


def _library_user(stack: BenchStack, institution: int) -> int:
    """The library answers only users linked to the institution: pick a real admin."""
    import duckdb

    with duckdb.connect(str(stack.warehouse), read_only=True) as con:
        row = con.execute(
            "SELECT id FROM users WHERE institution_id = ? AND privilege_id <> 4 AND deleted_at IS NULL ORDER BY id LIMIT 1",
            [institution],
        ).fetchone()
    return int(row[0])


def _quantiles(latencies: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return q[49], q[98]


def measure(
    name: str,
    n: int,
    concurrency: int,
    call: Callable[[httpx.Client, int], int],
    *,
    offset: int = 0,
    warmup: Callable[[httpx.Client, int], object] | None = None,
) -> dict[str, object]:
    """``call(client, i)`` n times one at a time (latency), then n times over
    ``concurrency`` threads (throughput and latency under load); ms."""
    statuses: dict[int, int] = {}

    def run(threads: int, start_index: int) -> tuple[list[float], float]:
        clients = [httpx.Client(timeout=60) for _ in range(threads)]
        latencies: list[float] = []

        def one(i: int) -> None:
            client = clients[i % threads]
            t0 = time.perf_counter()
            status = call(client, start_index + i)
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

        for k, client in enumerate(clients):
            if warmup is not None:  # open the keep-alive connection (and warm caches) outside the clock
                warmup(client, k)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, range(n)))
        elapsed = time.perf_counter() - started
        for c in clients:
            c.close()
        return latencies, elapsed

    sequential, _ = run(1, offset)
    loaded, elapsed = run(concurrency, offset + n)
    p50, p99 = _quantiles(sequential)
    lp50, lp99 = _quantiles(loaded)
    return {
        "kind": name,
        "n": n,
        "p50": p50,
        "p99": p99,
        "max": max(sequential),
        "c": concurrency,
        "rps": n / elapsed,
        "lp50": lp50,
        "lp99": lp99,
        "statuses": ",".join(f"{k}x{v}" for k, v in sorted(statuses.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="", help="benchmark an already running API instead of starting the stack")
    parser.add_argument("--jwt-secret", default="bench-secret-0123456789-0123456789-0123456789")
    parser.add_argument("--scale", default="tiny")
    parser.add_argument(
        "--big-library", type=int, default=100_000, help="library contents of the scale's last institution"
    )
    parser.add_argument("--institution", type=int, default=1, help="institution of the report requests")
    parser.add_argument(
        "--library-institution", type=int, default=0, help="with --base-url: institution of the library pages"
    )
    parser.add_argument(
        "--library-user", type=int, default=1, help="with --base-url: a user id linked to that institution"
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--launches", type=int, default=30, help="ad-hoc runs to launch (each becomes a real Dagster run)"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    stack = None if args.base_url else BenchStack(args.scale, args.jwt_secret, args.big_library)
    base = args.base_url or (stack.base_url if stack else "")
    n, c = args.requests, args.concurrency

    def auth(user: int, institution: int = args.institution) -> dict[str, str]:
        return {"Authorization": f"Bearer {_token(args.jwt_secret, institution, user)}"}

    load_before = os.getloadavg()
    try:
        year, month = _last_full_month()
        storyboard = f"{base}/institution/reports/storyboard-usage?month={month}&year={year}"
        first = httpx.get(storyboard, headers=auth(1), timeout=60).json()["results"]
        if "id" in first:  # prime the cache: wait for the partition run
            deadline = time.monotonic() + 300
            while httpx.get(f"{base}/institution/reports/jobs/{first['id']}", headers=auth(1), timeout=30).json()[
                "status"
            ] not in ("succeeded", "failed", "canceled"):
                if time.monotonic() > deadline:
                    raise RuntimeError("priming run did not finish")
                time.sleep(1)
        poll_id = first.get("id")

        rows = [
            measure(
                "cache hit (async)",
                n,
                c,
                lambda cl, i: cl.get(storyboard, headers=auth(10_000 + i)).status_code,
                warmup=lambda cl, k: cl.get(storyboard, headers=auth(9_000 + k)),
            )
        ]
        invalid = f"{base}/institution/reports/storyboard-usage?month=13&year={year}"
        rows.append(
            measure(
                "validation error (400)",
                n,
                c,
                lambda cl, i: cl.get(invalid, headers=auth(1)).status_code,
                warmup=lambda cl, k: cl.get(invalid, headers=auth(1)),
            )
        )
        lib_inst = args.library_institution or (stack.big_institution if stack else args.institution)
        lib_user = _library_user(stack, lib_inst) if stack else args.library_user
        total = httpx.get(
            f"{base}/institution/library/contents?limit=1", headers=auth(lib_user, lib_inst), timeout=60
        ).json()["total"]
        page = f"{base}/institution/library/contents?limit=20&page="  # pages 1-50 in turn: no two neighbours alike
        rows.append(
            measure(
                f"library page ({total:,} contents)",
                n,
                c,
                lambda cl, i: cl.get(f"{page}{1 + i % 50}", headers=auth(lib_user, lib_inst)).status_code,
                warmup=lambda cl, k: cl.get(f"{page}1", headers=auth(lib_user, lib_inst)),
            )
        )
        search = f"{base}/institution/library/contents?search=a&limit=20"
        rows.append(
            measure(
                "library search",
                max(20, n // 4),
                c,
                lambda cl, i: cl.get(search, headers=auth(lib_user, lib_inst)).status_code,
                warmup=lambda cl, k: cl.get(search, headers=auth(lib_user, lib_inst)),
            )
        )
        if poll_id:
            status_url = f"{base}/institution/reports/jobs/{poll_id}"
            rows.append(
                measure(
                    "job status",
                    n,
                    c,
                    lambda cl, i: cl.get(status_url, headers=auth(1)).status_code,
                    warmup=lambda cl, k: cl.get(status_url, headers=auth(1)),
                )
            )
        rows.append(
            measure(
                "sync workload",
                max(20, n // 4),
                c,
                lambda cl, i: cl.post(f"{base}/reports/bookings-workload", headers=auth(4)).status_code,
                warmup=lambda cl, k: cl.post(f"{base}/reports/bookings-workload", headers=auth(4)),
            )
        )

        epoch = date(2024, 1, 1)

        def launch(cl: httpx.Client, i: int) -> int:
            start = epoch + timedelta(days=i)
            end = start + timedelta(days=3)
            return cl.get(
                f"{base}/institution/reports/catalog?start_date={start}&end_date={end}", headers=auth(20_000 + i)
            ).status_code

        rows.append(measure("launch (ad-hoc run)", args.launches, min(c, 4), launch))
        join_url = f"{base}/institution/reports/catalog?start_date=2025-02-01&end_date=2025-02-03"
        httpx.get(join_url, headers=auth(2), timeout=60).raise_for_status()
        rows.append(
            measure(
                "join (in-flight)",
                n,
                c,
                lambda cl, i: cl.get(join_url, headers=auth(30_000 + i)).status_code,
                warmup=lambda cl, k: cl.get(join_url, headers=auth(29_000 + k)),
            )
        )
    finally:
        if stack is not None:
            stack.close()

    print(
        f"\nAPI latency, scale={args.scale if not args.base_url else 'external'}, {os.cpu_count()} CPUs, "
        f"load average before {load_before[0]:.2f} / after {os.getloadavg()[0]:.2f}\n"
    )
    print(
        f"| request | n | p50 ms | p99 ms | max ms | req/s at {c} clients | p50 ms at {c} | p99 ms at {c} | statuses |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['kind']} | {r['n']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['rps']:.0f} | "
            f"{r['lp50']:.1f} | {r['lp99']:.1f} | {r['statuses']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
