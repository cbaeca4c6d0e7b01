"""A throwaway real PostgreSQL server for the test session.

Uses the Debian ``postgresql`` package's binaries (``/usr/lib/postgresql/<v>/bin``,
or ``pg_ctl`` on PATH, or ``$LXP_PG_BINDIR``). initdb refuses to run as root,
so as root the cluster lives in a temp dir owned by the ``postgres`` OS user
and the server commands run through ``runuser``. Loopback only, random free
port, trust auth, the unix socket inside the temp dir, durability off (it is
thrown away). ``$LXP_TEST_POSTGRES_URL`` points the fixtures at an existing
server instead (e.g. a CI service container).

Missing binaries skip the tests that need them, except under ``CI=true`` where
that is a broken CI image and fails loudly.

Import into a conftest: ``from tests.services.postgres import postgres_url, postgres_db``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

DATABASE = "lxp"


@dataclass(frozen=True)
class _Server:
    prefix: list[str]
    bindir: Path
    data: Path
    log: Path
    root: Path
    options: str


#: Servers this process started, by port: what :func:`restart`, :func:`stop` and :func:`start` act on.
_SERVERS: dict[int, _Server] = {}


def find_bindir() -> Path | None:
    """Directory holding initdb and pg_ctl, newest major version first."""
    candidates = [os.environ.get("LXP_PG_BINDIR", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(
            f"PostgreSQL test server unavailable in CI: {reason} (apt-get install -y postgresql)", pytrace=False
        )
    pytest.skip(f"PostgreSQL test server unavailable: {reason} (apt-get install -y postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _runner() -> tuple[list[str], int | None, int | None]:
    """Command prefix and (uid, gid) to chown the cluster dir to, when running as root."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("running as root and there is no 'postgres' OS user to own the cluster")
        raise
    runuser = shutil.which("runuser")
    if runuser is None:
        _unavailable("running as root and runuser (util-linux) is missing")
    return [str(runuser), "-u", "postgres", "--"], pw.pw_uid, pw.pw_gid


def _run(prefix: list[str], args: list[str], cwd: Path) -> None:
    proc = subprocess.run(prefix + args, cwd=cwd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def create_database(server_url: str, name: str | None = None) -> str:
    """Create an empty database on the server of `server_url`; returns its URL."""
    import psycopg2

    name = name or f"t_{uuid.uuid4().hex[:12]}"
    con = psycopg2.connect(server_url)
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a private PostgreSQL server; yields ``postgresql://postgres@127.0.0.1:<port>/lxp``."""
    external = os.environ.get("LXP_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    bindir = find_bindir()
    if bindir is None:
        _unavailable("initdb/pg_ctl not found (looked in $LXP_PG_BINDIR, /usr/lib/postgresql/*/bin, PATH)")
    assert bindir is not None
    prefix, uid, gid = _runner()
    root = Path(tempfile.mkdtemp(prefix="lxp-pg-"))
    data, log = root / "data", root / "server.log"
    if uid is not None:
        os.chown(root, uid, gid or -1)
    port = _free_port()
    started = False
    try:
        try:
            _run(
                prefix,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ],
                root,
            )
            options = (
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
            )
            _run(
                prefix,
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
                root,
            )
        except RuntimeError as exc:
            detail = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{exc}\n{detail}") from None
        started = True
        _SERVERS[port] = _Server(prefix, bindir, data, log, root, options)
        yield create_database(f"postgresql://postgres@127.0.0.1:{port}/postgres", DATABASE)
    finally:
        _SERVERS.pop(port, None)
        if started:
            try:
                _run(prefix, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], root)
            except Exception:
                pass
        shutil.rmtree(root, ignore_errors=True)


def _server(url: str) -> _Server:
    port = urlsplit(url).port
    if port is None or port not in _SERVERS:
        pytest.skip("this PostgreSQL server was not started by the tests (LXP_TEST_POSTGRES_URL): cannot restart it")
    return _SERVERS[port]


def _pg_ctl(url: str, *args: str) -> float:
    """``pg_ctl <args>`` on the server of ``url`` (waiting for it); returns the seconds it took."""
    server = _server(url)
    started = time.monotonic()
    _run(
        server.prefix,
        [str(server.bindir / "pg_ctl"), "-D", str(server.data), "-l", str(server.log), "-w", *args],
        server.root,
    )
    return time.monotonic() - started


def restart(url: str, mode: str = "fast") -> float:
    """``pg_ctl restart -m fast``: every session is cut, new connections are refused until the
    server is back (a failover or a restart in production). Returns the seconds it took."""
    return _pg_ctl(url, "-m", mode, "-o", _server(url).options, "restart")


def stop(url: str, mode: str = "fast") -> float:
    """Stop the server of ``url`` (``start`` brings it back on the same port and data)."""
    return _pg_ctl(url, "-m", mode, "stop")


def start(url: str) -> float:
    return _pg_ctl(url, "-o", _server(url).options, "start")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a session-wide PostgreSQL database (shared: use `postgres_db` for a private one)."""
    with postgres_server() as url:
        yield url


@pytest.fixture()
def postgres_db(postgres_url: str) -> str:
    """A fresh, empty database on the session server (one per test)."""
    return create_database(postgres_url)
