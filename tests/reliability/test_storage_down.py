"""Storage down while a run writes its file: a stack on S3 storage (its own moto server,
so the session's S3 endpoint is not touched) loses the object store the moment the run
starts. The run fails and its requester is told once (webhook + e-mail, status failed, no
link); with the store back, the same request runs again and succeeds, notified once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.stack import Person, Stack, free_port, months_ago, new_home, wait_until
from tests.reliability.conftest import Mailer, Platform
from tests.reliability.deliveries import Key, wait_delivered
from tests.reliability.report import summary
from tests.services.s3 import CREDENTIALS, start_moto, stop_moto

pytestmark = pytest.mark.e2e

BUCKET = "reliability-reports"
NOTIFY_TIMEOUT = 240


class Moto:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        self.process = start_moto(self.port)
        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=BUCKET)  # moto keeps nothing across restarts

    def down(self) -> None:
        if self.process is not None:
            stop_moto(self.process)
            self.process = None


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    server = Moto()
    server.up()
    try:
        yield server
    finally:
        server.down()


@pytest.fixture(scope="module")
def s3_stack(
    tmp_path_factory: pytest.TempPathFactory, tiny_warehouse_path: Path, moto: Moto, platform: Platform, mailer: Mailer
) -> Iterator[Stack]:
    home = new_home(tmp_path_factory.mktemp("reliability_s3"), tiny_warehouse_path)
    running = Stack(
        home,
        {
            "LXP_STORAGE": f"s3://{BUCKET}/lxp",
            "LXP_S3_ENDPOINT_URL": moto.url,
            **CREDENTIALS,
            "LXP_NOTIFY_URL": platform.url,
            "LXP_SMTP_URL": mailer.url,
            "LXP_OUTBOX_BACKOFF_SECONDS": "1",
        },
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_storage_down_during_the_write_fails_the_run_once_and_recovers(
    s3_stack: Stack, moto: Moto, people: dict[int, list[Person]], platform: Platform, mailer: Mailer
) -> None:
    person = people[1][9]
    year, month = months_ago(6)
    path = "/institution/reports/storyboard-usage"
    first = s3_stack.request(path, person.bearer, month=month, year=year)
    assert first.status_code == 200, first.text
    failed_job = first.json()["results"]["id"]
    wait_until(lambda: s3_stack.run_status(failed_job) != "QUEUED", 180, "the run to start", 0.05)
    moto.down()
    try:
        outcome = s3_stack.wait_job(failed_job, person.bearer)["status"]
    finally:
        moto.up()
    keys: list[Key] = [(failed_job, person.user)]
    again = s3_stack.request(path, person.bearer, month=month, year=year)
    assert again.status_code == 200, again.text
    retry = again.json()["results"].get("id")
    if outcome == "failed":
        assert retry and retry != failed_job
        assert s3_stack.wait_job(retry, person.bearer)["status"] == "succeeded"
        keys.append((retry, person.user))
    delivered = wait_delivered(platform, mailer, keys, NOTIFY_TIMEOUT)
    failed_calls = [c for c in platform.calls() if c.json().get("jobId") == failed_job and 200 <= c.status < 300]
    if outcome == "failed":
        assert failed_calls[0].json()["status"] == "failed" and failed_calls[0].json()["url"] is None
    assert delivered.duplicated(keys) == []
    summary(
        "storage-down",
        first_run=outcome,
        retried_run="succeeded" if outcome == "failed" else "n/a (wrote before the store went down)",
        notifications=len(keys),
        lost=len(delivered.lost(keys)),
        duplicated=len(delivered.duplicated(keys)),
    )
