"""A real S3 endpoint for tests: moto in server mode, in its own process, on loopback.

A separate process (not ``ThreadedMotoServer``) so big multipart uploads are
served by another core instead of competing with the test for the GIL.
Import the fixtures into a conftest: ``from tests.services.s3 import s3_endpoint, s3_client, s3_bucket``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            httpx.get(f"{url}/moto-api/", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start in time")


def start_moto(port: int, timeout: float = 30) -> subprocess.Popen[bytes]:
    """A moto S3 server process on ``port`` (loopback), ready to answer; the caller stops it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process, time.monotonic() + timeout)
    except RuntimeError:
        stop_moto(process)
        raise
    return process


def stop_moto(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server; fake AWS credentials are put in the environment for the session."""
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    port = free_port()
    process = start_moto(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_moto(process)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """A fresh, empty bucket per test."""
    name = f"reports-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name
