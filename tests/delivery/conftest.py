"""Fixtures for the delivery tests: real S3 (moto), SMTP (aiosmtpd), an HTTP receiver, PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from orchestration.delivery.storage import LocalReportStorage
from orchestration.ledger import Ledger
from orchestration.ledger.engine import engine_url
from orchestration.settings import Settings
from tests.ledger_rows import enqueue, subscribe
from tests.services.http_receiver import http_receiver  # noqa: F401 - fixture
from tests.services.postgres import postgres_url  # noqa: F401 - fixture
from tests.services.s3 import s3_bucket, s3_client, s3_endpoint  # noqa: F401 - fixtures
from tests.services.smtp import _smtp_controller, smtp_server, smtp_tls_server  # noqa: F401 - fixtures

T0 = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
LINK_SECRET = "link-secret-for-tests"


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty outbox database: a SQLite file, or a private schema on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'outbox.sqlite'}"
        return
    base = request.getfixturevalue("postgres_url")
    schema = f"outbox_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(engine_url(base))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = make_url(engine_url(base)).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def make_outbox(url: str, *, max_attempts: int = 4, backoff_seconds: float = 10.0) -> Ledger:
    outbox = Ledger(url, max_attempts=max_attempts, backoff_seconds=backoff_seconds)
    outbox.migrate()
    return outbox


@pytest.fixture
def outbox(outbox_url: str) -> Iterator[Ledger]:
    box = make_outbox(outbox_url)
    yield box
    box.dispose()


@pytest.fixture
def sqlite_outbox(tmp_path: Path) -> Iterator[Ledger]:
    box = make_outbox(f"sqlite:///{tmp_path / 'outbox.sqlite'}")
    yield box
    box.dispose()


def storage_at(home: Path) -> LocalReportStorage:
    """The local report storage under ``home`` (a racing child process opens the same one)."""
    return LocalReportStorage(home / "reports", base_url="http://api.test", link_secret=LINK_SECRET)


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalReportStorage:
    return storage_at(tmp_path)


def race(script: str, argvs: Sequence[Sequence[str]], *, timeout: float = 120) -> list[Any]:
    """Run ``script`` in one Python process per ``argvs`` entry and start them at the same moment.

    Each process, once it has imported and connected, prints ``ready`` and reads the common start
    (epoch seconds) from stdin; it is sent when every process is ready, so slow imports on a loaded
    machine cannot turn the race into a relay. Each then prints one JSON value; returns them in
    ``argvs`` order. Any process failing fails the test with its stderr.
    """
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, *argv],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"PYTHONPATH": str(REPO), "PATH": ""},
        )
        for argv in argvs
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                worker.wait(timeout=timeout)
                raise AssertionError(f"a racer died before the start:\n{worker.stderr.read() if worker.stderr else ''}")
        start = f"{time.time() + 0.2}\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(start)
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=timeout)
            assert worker.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        home=tmp_path,
        notify_url="",
        notify_secret="notify-secret-for-tests",
        notify_timeout_seconds=2.0,
        smtp_url="",
        smtp_from="relatorios@lxp.test",
        link_secret=LINK_SECRET,
        link_ttl_seconds=7 * 24 * 3600,
        public_base_url="http://api.test",
        outbox_max_attempts=4,
        outbox_backoff_seconds=10.0,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def subscribe_requester(outbox: Ledger, job_id: str, user: int) -> None:
    """Subscribe ``user`` (``user<N>@acme.test``) to a June 2026 storyboard-usage job of institution 1."""
    assert subscribe(
        outbox,
        job_id=job_id,
        recipient_user_id=user,
        institution_id=1,
        subdomain="acme",
        report="storyboard-usage",
        period="06/2026",
        email=f"user{user}@acme.test",
        now=T0,
    )


def enqueue_row(outbox: Ledger, job_id: str = "run-1", user: int = 42, **overrides: Any) -> bool:
    """Enqueue a typical succeeded storyboard-usage notification (fields overridable)."""
    values: dict[str, Any] = dict(
        job_id=job_id,
        recipient_user_id=user,
        institution_id=1,
        subdomain="acme",
        report="storyboard-usage",
        status_of_job="succeeded",
        storage_key="storyboard-usage/institution=1/2026-06/storyboard-usage_1_2026-06.xlsx",
        filename="storyboard-usage_1_2026-06.xlsx",
        period="06/2026",  # RequestedReport.period_text of June 2026
        email="ana@acme.test",
        timezone="America/Sao_Paulo",
        now=T0,
    )
    values.update(overrides)
    return enqueue(outbox, **values)
