"""Fixtures of the delivery end-to-end tests: the people who ask for reports
(real users of the generated warehouse, with their e-mail addresses), a
webhook receiver and an SMTP server per module, and the moto S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Person
from tests.services.http_receiver import HttpReceiver
from tests.services.s3 import s3_client, s3_endpoint  # noqa: F401 - fixtures
from tests.services.smtp import SmtpRecorder, running_smtp


@pytest.fixture(scope="session")
def people(tiny_warehouse_path: Path) -> dict[int, list[Person]]:
    """Institution id -> its admins/teachers (ordered by id) in the tiny warehouse."""
    import duckdb

    with duckdb.connect(str(tiny_warehouse_path), read_only=True) as con:
        rows = con.execute(
            "SELECT u.institution_id, u.id, u.email, i.subdomain FROM users u JOIN institutions i ON i.id = u.institution_id "
            "WHERE u.privilege_id <> 4 AND u.deleted_at IS NULL AND u.email <> '' ORDER BY u.institution_id, u.id"
        ).fetchall()
    found: dict[int, list[Person]] = {}
    for institution, user, email, subdomain in rows:
        found.setdefault(int(institution), []).append(Person(int(institution), int(user), email, subdomain))
    return found


@pytest.fixture(scope="module")
def receiver() -> Iterator[HttpReceiver]:
    """The platform notification API stand-in, one per module (it outlives stack restarts)."""
    server = HttpReceiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpRecorder]:
    """An aiosmtpd server collecting the module's e-mails."""
    with running_smtp() as recorder:
        yield recorder
