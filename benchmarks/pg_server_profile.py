"""Where a PostgreSQL server's CPU goes while a benchmark uses it for Dagster's storage.

    PYTHONPATH=. .venv/bin/python benchmarks/pg_server_profile.py --url postgresql://postgres@127.0.0.1:55461/postgres &
    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/monthly_backfill.py ... --dagster-storage postgres \\
        --dagster-pg-url postgresql://postgres@127.0.0.1:55461/postgres
    kill -INT %1          # prints the report

Why this shape: ``monthly_backfill.py`` reads the server's CPU only as a whole (an upper bound that includes
the instance migration and the status queries), so nobody knew which statements or which of the stack's
processes that time is. This runs beside it against the same server (run as root: it reads the backends'
``/proc`` and ``ss -tnp``) and

* resets ``pg_stat_statements`` (the server needs ``shared_preload_libraries = pg_stat_statements`` and
  ``pg_stat_statements.track = all``) and snapshots it every ``--every`` seconds, so the statements can be
  split into *before the backfill* (migration, partition registration, stack start-up, the sensor's tick)
  and *the backfill window* (first backfill created -> last run ended, read from the benchmark's Dagster
  database at the end);
* once a second, maps every client backend to the process on the other end of its TCP connection (``ss``)
  and classifies it as ``monthly_backfill.py`` does (daemon, run workers, webserver, code servers, ...),
  reading the backend's CPU from ``/proc``; a backend's last sample is its CPU (sampled, so up to one second
  of a short-lived backend's CPU is missed; the postmaster's reaped-children total is printed beside it).

Output is Markdown on stdout.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.monthly_backfill import _classify  # noqa: E402  (the benchmark's own process classifier)

TICK = os.sysconf("SC_CLK_TCK")
SS_PID = re.compile(r"pid=(\d+)")


def _cpu(pid: int, children: bool = False) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / TICK


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _client_pids(port: int) -> dict[int, int]:
    """Client port -> client pid, for the TCP connections to the server's port."""
    out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True, text=True).stdout
    found: dict[int, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        local, peer = parts[2], parts[3]
        if peer.endswith(f":{port}") and (m := SS_PID.search(line)):
            found[int(local.rsplit(":", 1)[1])] = int(m.group(1))
    return found


class Profiler:
    def __init__(self, url: str, every: float) -> None:
        self.url = url
        self.every = every
        self.port = int(re.search(r":(\d+)/", url).group(1))  # type: ignore[union-attr]
        self.con = psycopg2.connect(url)
        self.con.autocommit = True
        with self.con.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            self.own = cur.fetchone()[0]
        self.postmaster = int(Path(self._data_dir(), "postmaster.pid").read_text().split()[0])
        self.kind: dict[int, str] = {}
        self.backend_cpu: dict[int, float] = {}
        self.backend_type: dict[int, str] = {}
        self.snapshots: list[tuple[float, dict[tuple[int, int], tuple[str, int, float, int]]]] = []
        self.server_start = self._server_cpu()
        self.sessions_start = self._sessions()
        with self.con.cursor() as cur:
            cur.execute("SELECT pg_stat_statements_reset()")
        self.started = time.time()

    def _sessions(self) -> int:
        """Sessions (connections) the server has had, all databases (``pg_stat_database``, PostgreSQL 14+)."""
        with self.con.cursor() as cur:
            cur.execute("SELECT sum(sessions) FROM pg_stat_database")
            return int(cur.fetchone()[0] or 0)

    def _data_dir(self) -> str:
        with self.con.cursor() as cur:
            cur.execute("SHOW data_directory")
            return str(cur.fetchone()[0])

    def _server_cpu(self) -> float:
        """Postmaster + reaped children + live children (the whole server)."""
        total = _cpu(self.postmaster, children=True) or 0.0
        for child in Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children").read_text().split():
            total += _cpu(int(child)) or 0.0
        return total

    def sample_backends(self) -> None:
        clients = _client_pids(self.port)
        with self.con.cursor() as cur:
            cur.execute(
                "SELECT pid, backend_type, client_port, application_name FROM pg_stat_activity WHERE pid <> %s",
                (self.own,),
            )
            rows = cur.fetchall()
        for pid, backend_type, client_port, app in rows:
            cpu = _cpu(pid)
            if cpu is None:
                continue
            self.backend_cpu[pid] = cpu
            self.backend_type[pid] = backend_type
            if pid not in self.kind or self.kind[pid] == "unknown client":
                if backend_type != "client backend":
                    self.kind[pid] = f"server: {backend_type}"
                elif app and app.startswith("lxp-"):  # set by orchestration.pg_storage
                    self.kind[pid] = app
                elif client_port and client_port in clients:
                    self.kind[pid] = _classify(_cmdline(clients[client_port]))
                else:
                    self.kind[pid] = "unknown client"

    def snapshot(self) -> None:
        with self.con.cursor() as cur:
            cur.execute(
                "SELECT dbid, queryid, query, calls, total_exec_time, rows FROM pg_stat_statements"
                " WHERE queryid IS NOT NULL"
            )
            rows = {(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in cur.fetchall()}
        self.snapshots.append((time.time(), rows))

    def loop(self, stop: list[bool]) -> None:
        last = 0.0
        while not stop[0]:
            self.sample_backends()
            if time.time() - last >= self.every:
                self.snapshot()
                last = time.time()
            time.sleep(1.0)
        self.sample_backends()
        self.snapshot()

    def window(self) -> tuple[float, float] | None:
        """(first backfill created, last run ended) from the newest ``lxp_bench_*`` database."""
        with self.con.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'lxp_bench_%%' ORDER BY oid DESC LIMIT 1")
            row = cur.fetchone()
        if not row:
            return None
        con = psycopg2.connect(self.url.rsplit("/", 1)[0] + "/" + row[0])
        try:
            with con.cursor() as cur:
                cur.execute("SELECT extract(epoch FROM min(timestamp)) FROM bulk_actions")  # naive UTC
                start = cur.fetchone()[0]
                cur.execute("SELECT max(end_time) FROM runs")  # epoch seconds
                end = cur.fetchone()[0]
        finally:
            con.close()
        if start is None or end is None:
            return None
        return float(start), float(end)


def _at(snapshots: list[Any], when: float) -> dict[Any, Any]:
    """The last snapshot taken at or before ``when`` (empty before the first)."""
    best: dict[Any, Any] = {}
    for taken, rows in snapshots:
        if taken <= when:
            best = rows
    return best


def _diff(after: dict[Any, Any], before: dict[Any, Any]) -> dict[Any, tuple[str, int, float, int]]:
    out = {}
    for key, (query, calls, total, rows) in after.items():
        b = before.get(key, (query, 0, 0.0, 0))
        if calls - b[1] > 0:
            out[key] = (query, calls - b[1], total - b[2], rows - b[3])
    return out


def _short(query: str, width: int) -> str:
    text = " ".join(query.split())
    return (text[: width - 1] + "…") if len(text) > width else text


def _table(title: str, stats: dict[Any, tuple[str, int, float, int]], partitions: int, top: int, width: int) -> None:
    total_ms = sum(s[2] for s in stats.values())
    calls = sum(s[1] for s in stats.values())
    print(f"\n#### {title}: {calls} calls, {total_ms / 1000:.1f} s execution time in all\n")
    print("| statement | calls | calls / partition | total ms | ms / call | rows | share |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for query, n, ms, rows in sorted(stats.values(), key=lambda s: -s[2])[:top]:
        per = f"{n / partitions:.2f}" if partitions else "–"
        share = ms / total_ms if total_ms else 0
        query_cell = _short(query, width).replace("|", "\\|")
        print(f"| `{query_cell}` | {n} | {per} | {ms:.0f} | {ms / n:.3f} | {rows} | {share:.0%} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="postgresql://user@host:port/db (with pg_stat_statements)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between pg_stat_statements snapshots")
    parser.add_argument("--partitions", type=int, default=5000, help="partitions of the backfill (per-partition rates)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--width", type=int, default=140, help="characters of each statement shown")
    args = parser.parse_args()

    prof = Profiler(args.url, args.every)
    stop = [False]

    def _stop(*_: Any) -> None:
        stop[0] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    prof.loop(stop)
    server = prof._server_cpu() - prof.server_start
    ended = time.time()

    print(f"\n### PostgreSQL server profile ({ended - prof.started:.0f} s sampled)\n")
    sessions = prof._sessions() - prof.sessions_start
    print(f"- server CPU (postmaster, reaped and live children) while sampled: {server:.1f} s")
    print(f"- sessions (connections) opened: {sessions} ({sessions / args.partitions:.2f} per partition)")
    by_kind: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for pid, cpu in prof.backend_cpu.items():
        by_kind[prof.kind.get(pid, "unknown client")] += cpu
        count[prof.kind.get(pid, "unknown client")] += 1
    print("\n| backends of (client process) | backends | CPU s (sampled) | share |\n|---|---:|---:|---:|")
    total = sum(by_kind.values())
    for kind, cpu in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {count[kind]} | {cpu:.1f} | {cpu / total if total else 0:.0%} |")
    print(f"| **all backends seen** | {sum(count.values())} | {total:.1f} | |")

    window = prof.window()
    final = prof.snapshots[-1][1]
    if window:
        start, end = window
        before = _at(prof.snapshots, start)
        during = _diff(_at(prof.snapshots, end + args.every), before)
        print(f"\nbackfill window: {end - start:.0f} s (snapshots every {args.every:.0f} s, so ±{args.every:.0f} s)")
        _table("Before the backfill (migration, registration, start-up, sensor)", _diff(before, {}), 0, 10, args.width)
        _table("The backfill window", during, args.partitions, args.top, args.width)
        _table(
            "After the backfill (status queries, shutdown)",
            _diff(final, _at(prof.snapshots, end + args.every)),
            0,
            8,
            args.width,
        )
    else:
        _table("Everything sampled", _diff(final, {}), args.partitions, args.top, args.width)
    prof.con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
