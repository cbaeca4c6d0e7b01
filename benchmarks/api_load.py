"""Benchmark: API latency (p50/p95/p99) per request kind against the real stack.

    PYTHONPATH=. .venv/bin/python benchmarks/api_load.py [--scale tiny] [--requests 200] [--concurrency 8]
    PYTHONPATH=. .venv/bin/python benchmarks/api_load.py --base-url http://127.0.0.1:8000 --jwt-secret ...

Without ``--base-url`` it generates a warehouse in a temp ``LXP_HOME``, starts
``lxp-reports up`` (Dagster webserver + daemon + API under uvicorn), primes the
cache by materializing last month's storyboard-usage partition through the API,
and then measures, side by side in one table:

* cache hit       — the async endpoint answering ``{"cached": true}`` (GraphQL
                    materialization lookup + storage check + outbox insert);
* launch          — a new ad-hoc catalog range per request (cache miss, in-flight
                    claim, ``launchRun`` through GraphQL);
* join            — identical requests while the run is queued (in-flight hit);
* job status      — ``GET /institution/reports/jobs/{id}`` polling;
* library         — ``GET /institution/library/contents`` with a search;
* sync workload   — ``POST /reports/bookings-workload`` computed from the warehouse.

Requests go through real HTTP (httpx, keep-alive) with ``--concurrency``
client threads; the rate limit is raised for the run. Output is Markdown.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _token(secret: str, institution: int, user: int) -> str:
    claims = {"institutionId": institution, "userId": user, "subdomain": "bench", "privilegio_id": 2, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


def _last_full_month() -> tuple[int, int]:
    now = datetime.now(UTC)
    return (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)


class Stack:
    """``lxp-reports up`` in a temp home; stopped by process group on exit."""

    def __init__(self, scale: str, secret: str) -> None:
        from orchestration.warehouse.generate import generate_warehouse

        self.tmp = tempfile.TemporaryDirectory(prefix="lxp-bench-", ignore_cleanup_errors=True)
        home = Path(self.tmp.name)
        generate_warehouse(scale, 42, str(home / "warehouse.duckdb"))
        api_port, dagster_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "LXP_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster"),
            "LXP_JWT_SECRET": secret,
            "LXP_RATE_LIMIT": "100000/minute",
            "LXP_DAGSTER_URL": f"http://127.0.0.1:{dagster_port}",
            "LXP_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "PYTHONPATH": str(ROOT),
        }
        self.log = open(home / "stack.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", "up", "--port", str(api_port), "--dagster-port", str(dagster_port)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.base_url = f"http://127.0.0.1:{api_port}"
        self.warehouse = home / "warehouse.duckdb"
        deadline = time.monotonic() + 240
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError((home / "stack.log").read_text(errors="replace")[-3000:])
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("stack did not become healthy")
            time.sleep(1)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        self.tmp.cleanup()


def _library_user(stack: Stack, institution: int) -> int:
    """The library answers only users linked to the institution: pick a real admin."""
    import duckdb

    with duckdb.connect(str(stack.warehouse), read_only=True) as con:
        row = con.execute(
            "SELECT id FROM users WHERE institution_id = ? AND privilege_id <> 4 AND deleted_at IS NULL ORDER BY id LIMIT 1",
            [institution],
        ).fetchone()
    return int(row[0])


def measure(name: str, n: int, concurrency: int, call: Callable[[httpx.Client, int], int]) -> dict[str, object]:
    """Run ``call(client, i)`` n times over ``concurrency`` threads; latency in ms."""
    clients = [httpx.Client(timeout=60) for _ in range(concurrency)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def one(i: int) -> None:
        client = clients[i % concurrency]
        start = time.perf_counter()
        status = call(client, i)
        latencies.append((time.perf_counter() - start) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - started
    for c in clients:
        c.close()
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {
        "kind": name, "n": n, "p50": q[49], "p95": q[94], "p99": q[98], "max": max(latencies),
        "rps": n / elapsed, "statuses": ",".join(f"{k}x{v}" for k, v in sorted(statuses.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="", help="benchmark an already running API instead of starting the stack")
    parser.add_argument("--jwt-secret", default="bench-secret-0123456789-0123456789-0123456789")
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--institution", type=int, default=1)
    parser.add_argument("--library-user", type=int, default=1, help="with --base-url: a user id linked to the institution")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--launches", type=int, default=30, help="ad-hoc runs to launch (each becomes a real Dagster run)")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    stack = None if args.base_url else Stack(args.scale, args.jwt_secret)
    base = args.base_url or (stack.base_url if stack else "")
    inst = args.institution
    auth = lambda user: {"Authorization": f"Bearer {_token(args.jwt_secret, inst, user)}"}  # noqa: E731
    try:
        year, month = _last_full_month()
        storyboard = f"{base}/institution/reports/storyboard-usage?month={month}&year={year}"
        first = httpx.get(storyboard, headers=auth(1), timeout=60).json()["results"]
        if "id" in first:  # prime the cache: wait for the partition run
            deadline = time.monotonic() + 300
            while httpx.get(f"{base}/institution/reports/jobs/{first['id']}", headers=auth(1), timeout=30).json()["status"] not in (
                "succeeded", "failed", "canceled"
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("priming run did not finish")
                time.sleep(1)
            poll_id = first["id"]
        else:
            poll_id = None

        rows = [measure("cache hit (async)", args.requests, args.concurrency,
                        lambda c, i: c.get(storyboard, headers=auth(10_000 + i)).status_code)]

        epoch = date(2024, 1, 1)

        def launch(c: httpx.Client, i: int) -> int:
            start = epoch + timedelta(days=i)
            end = start + timedelta(days=3)
            return c.get(f"{base}/institution/reports/catalog?start_date={start}&end_date={end}", headers=auth(20_000 + i)).status_code

        rows.append(measure("launch (ad-hoc run)", args.launches, min(args.concurrency, 4), launch))
        joined = httpx.get(f"{base}/institution/reports/catalog?start_date=2025-02-01&end_date=2025-02-03", headers=auth(2), timeout=60).json()
        join_url = f"{base}/institution/reports/catalog?start_date=2025-02-01&end_date=2025-02-03"
        rows.append(measure("join (in-flight)", args.requests, args.concurrency,
                            lambda c, i: c.get(join_url, headers=auth(30_000 + i)).status_code))
        job_id = poll_id or joined["results"].get("id")
        if job_id:
            rows.append(measure("job status", args.requests, args.concurrency,
                                lambda c, i: c.get(f"{base}/institution/reports/jobs/{job_id}", headers=auth(1 if poll_id else 2)).status_code))
        library_user = _library_user(stack, inst) if stack else args.library_user
        rows.append(measure("library (search)", args.requests, args.concurrency,
                            lambda c, i: c.get(f"{base}/institution/library/contents?search=a&limit=20", headers=auth(library_user)).status_code))
        rows.append(measure("sync workload", max(20, args.requests // 4), args.concurrency,
                            lambda c, i: c.post(f"{base}/reports/bookings-workload", headers=auth(4)).status_code))
    finally:
        if stack is not None:
            stack.close()

    print(f"\nAPI latency, scale={args.scale if not args.base_url else 'external'}, concurrency={args.concurrency}, {os.cpu_count()} CPUs\n")
    print("| request | n | p50 ms | p95 ms | p99 ms | max ms | req/s | statuses |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['n']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['rps']:.0f} | {r['statuses']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
