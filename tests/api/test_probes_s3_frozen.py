"""A frozen object store (the moto S3 server SIGSTOPped: connections are accepted, nothing answers).

Before the bounded timeouts, /healthz and a cached request each hung for the whole freeze
(botocore waits 60 s per read, 5 attempts), which would take every replica out of the load
balancer at once. Now /readyz answers 503 within its deadline, a cached request answers 503
``unavailable`` within the API's S3 timeouts, /livez is untouched, and after SIGCONT all is well.
The test has its own moto server so the session's S3 endpoint is never frozen under other tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config

from api.probes import PROBE_DEADLINE_SECONDS
from assets.cache_key import cache_key
from orchestration.delivery.storage import S3_REQUEST_TIMEOUTS
from orchestration.ledger import KnownFile
from tests.api.conftest import auth, build_client
from tests.services.s3 import CREDENTIALS, free_port, start_moto, stop_moto

BUCKET = "frozen-reports"
KEY = "storyboard-usage/institution=1/2026-05/storyboard-usage_1_2026-05.xlsx"
URL = "/institution/reports/storyboard-usage?month=5&year=2026"
#: Worst case of a request-path S3 call: every attempt times out, plus botocore's backoff (< 1 s).
REQUEST_BOUND = S3_REQUEST_TIMEOUTS.attempts * max(S3_REQUEST_TIMEOUTS.connect, S3_REQUEST_TIMEOUTS.read) + 1.5


@pytest.fixture(scope="module")
def moto() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = start_moto(port)
    url = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key=f"p/{KEY}", Body=b"PK-fake-xlsx")
    try:
        yield url, process
    finally:
        os.kill(process.pid, signal.SIGCONT)
        stop_moto(process)


def _timed(call):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_frozen_s3_fails_fast_and_recovers(moto, settings, fake_dagster, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url, process = moto
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    s3_settings = settings.model_copy(update={"storage": f"s3://{BUCKET}/p", "s3_endpoint_url": url})
    with build_client(s3_settings, fake_dagster) as client:
        key = cache_key("storyboard-usage", 1, {"month": "2026-05"})
        produced = datetime.now(UTC) - timedelta(minutes=1)
        client.app.state.services.ledger.files.remember_file(KnownFile(key, KEY, "f.xlsx", 3, produced, "run-earlier"))
        assert client.get("/readyz").status_code == 200
        assert client.get(URL, headers=auth()).json() == {"results": {"cached": True}}

        os.kill(process.pid, signal.SIGSTOP)
        try:
            live, took_live = _timed(lambda: client.get("/livez"))
            assert live.status_code == 200 and took_live < 0.5
            ready, took_ready = _timed(lambda: client.get("/readyz"))
            assert ready.status_code == 503, ready.text
            assert ready.json()["code"] == "unavailable" and ready.json()["details"] is None
            assert "storage=unreachable" in ready.json()["message"] and "ledger=ok" in ready.json()["message"]
            assert took_ready < PROBE_DEADLINE_SECONDS + 0.5, took_ready
            cached, took_cached = _timed(lambda: client.get(URL, headers=auth()))
            assert cached.status_code == 503, cached.text
            assert cached.json() == {
                "code": "unavailable",
                "message": "The report storage is unavailable; try again later",
                "details": None,
            }
            assert took_cached < REQUEST_BOUND, took_cached
            assert fake_dagster.launches() == []  # a store that cannot answer is not a cache miss
        finally:
            os.kill(process.pid, signal.SIGCONT)
        print(f"frozen S3: /readyz {took_ready:.2f}s, cached request {took_cached:.2f}s")

        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert client.get(URL, headers=auth()).json() == {"results": {"cached": True}}
