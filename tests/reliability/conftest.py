"""The reliability suite's shared stack: one real `lxp-reports up` (Dagster webserver +
daemon + API, tests/e2e/stack.py) over a copy of the tiny warehouse, delivering to a
webhook receiver and an SMTP server that the fault tests can take down and bring back
on the same port. Started once for the directory; every scenario asks for its own
report periods so they never share a cache entry.

The request ledger lives on a PostgreSQL server of the suite's own (as in production), which
``test_ledger_blip.py`` restarts under load; without PostgreSQL binaries it falls back to SQLite
(and that scenario skips).

Long soak variants are marked ``soak`` (deselected by default, see docs/reliability.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from orchestration.produce import HOLD_FILE_ENV
from tests.e2e.conftest import people  # noqa: F401 - fixture
from tests.e2e.stack import Stack, free_port, new_home
from tests.reliability.report import LINES
from tests.services import postgres
from tests.services.http_receiver import HttpReceiver, RecordedRequest
from tests.services.smtp import ReceivedMail, SmtpRecorder


class Platform:
    """The webhook receiver, restartable on its port; keeps every request of every incarnation."""

    def __init__(self) -> None:
        self.port = free_port()
        self.current: HttpReceiver | None = None
        self.past: list[RecordedRequest] = []
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notifications"

    def up(self) -> HttpReceiver:
        assert self.current is None
        self.current = HttpReceiver(self.port).start()
        return self.current

    def down(self) -> None:
        if self.current is not None:
            self.past.extend(self.current.requests)
            self.current.stop()
            self.current = None

    @property
    def receiver(self) -> HttpReceiver:
        assert self.current is not None, "the receiver is down"
        return self.current

    def calls(self) -> list[RecordedRequest]:
        return self.past + (list(self.current.requests) if self.current else [])


class Mailer:
    """An aiosmtpd server on a fixed port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.recorder = SmtpRecorder()
        self.recorder.url = f"smtp://127.0.0.1:{self.port}"
        self.controller: Controller | None = None
        self.up()

    @property
    def url(self) -> str:
        return self.recorder.url

    def up(self) -> None:
        assert self.controller is None
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def messages(self) -> list[ReceivedMail]:
        return list(self.recorder.messages)


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    server = Platform()
    try:
        yield server
    finally:
        server.down()


@pytest.fixture(scope="session")
def mailer() -> Iterator[Mailer]:
    server = Mailer()
    try:
        yield server
    finally:
        server.down()


@pytest.fixture(scope="session")
def rel_home(tmp_path_factory: pytest.TempPathFactory, tiny_warehouse_path: Path) -> Path:
    return new_home(tmp_path_factory.mktemp("reliability"), tiny_warehouse_path)


@pytest.fixture(scope="session")
def ledger_url(rel_home: Path) -> Iterator[str]:
    """The stack's request ledger: a database on a private PostgreSQL server (restartable by the
    tests), or the default SQLite file when this machine has no PostgreSQL binaries."""
    if postgres.find_bindir() is None or os.environ.get("LXP_TEST_POSTGRES_URL"):
        yield f"sqlite:///{rel_home / 'outbox.sqlite'}"
        return
    with postgres.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def stack(rel_home: Path, platform: Platform, mailer: Mailer, ledger_url: str) -> Iterator[Stack]:
    running = Stack(
        rel_home,
        {
            "LXP_LEDGER_URL": ledger_url,
            "LXP_NOTIFY_URL": platform.url,
            "LXP_SMTP_URL": mailer.url,
            "LXP_OUTBOX_BACKOFF_SECONDS": "1",
            "LXP_RATE_LIMIT": "100000/minute",
            "LXP_MAX_RUNS_PER_INSTITUTION": "4",
            # test_faults: runs wait while this file exists (so a worker can be killed mid-run), and run
            # monitoring notices a dead worker within seconds instead of the default 30.
            HOLD_FILE_ENV: str(rel_home / "hold-runs"),
            "LXP_RUN_MONITORING_SECONDS": "3",
        },
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LINES:
        terminalreporter.section("reliability figures")
        for line in LINES:
            terminalreporter.write_line(line)
