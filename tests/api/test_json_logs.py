"""LXP_LOG_FORMAT=json on a real uvicorn process (``uvicorn api.app:app``, the command of the
image and the Kubernetes Deployment): every line uvicorn and our code write is one JSON object,
request lines carry the request id (the one the client sent, echoed in X-Request-Id) and, once
the caller is authenticated, the institution; that process's /metrics counts what it served.
The text format keeps the same fields inline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import SECRET, auth
from tests.e2e.stack import free_port
from tests.services.api_process import api_process


def _serve(tmp_path: Path, warehouse_url: str, fmt: str) -> Iterator[tuple[str, Path]]:
    settings = {
        "LXP_HOME": str(tmp_path / "home"),
        "LXP_WAREHOUSE_URL": warehouse_url,
        "LXP_JWT_SECRET": SECRET,
        "LXP_DAGSTER_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: /healthz says 503
        "LXP_LOG_FORMAT": fmt,
    }
    with api_process(settings, tmp_path / f"uvicorn-{fmt}.log") as api:
        yield api.base, api.log


@pytest.fixture
def json_server(tmp_path: Path, warehouse_url: str) -> Iterator[tuple[str, Path]]:
    yield from _serve(tmp_path, warehouse_url, "json")


def _lines(path: Path) -> list[str]:
    time.sleep(0.3)  # let the access log line of the last response be flushed
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


def test_uvicorn_lines_are_json_with_request_id_and_institution(json_server: tuple[str, Path]) -> None:
    base, log_path = json_server
    with httpx.Client(base_url=base, timeout=30) as http:  # one keep-alive connection for both requests
        library = http.get("/institution/library/contents", headers={**auth(), "X-Request-Id": "lib-0002"})
        assert library.status_code == 200 and library.headers["x-request-id"] == "lib-0002"
        health = http.get("/healthz", headers={"X-Request-Id": "probe-0001"})
        assert health.status_code == 503 and health.headers["x-request-id"] == "probe-0001"
        scraped = http.get("/metrics").text  # the same process exposes what it served
        assert 'lxp_api_requests_total{method="GET",route="/institution/library/contents",status="200"} 1.0' in scraped
        assert "lxp_outbox_up 1.0" in scraped

    records: list[dict[str, Any]] = [json.loads(line) for line in _lines(log_path)]  # every line parses
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"] == "uvicorn.error" for r in records)  # uvicorn's own startup lines too
    probe = [r for r in records if r.get("request_id") == "probe-0001"]
    assert {r["logger"] for r in probe} >= {"api.health", "uvicorn.access"}  # our warning + the access line
    access = [r for r in records if r.get("request_id") == "lib-0002" and r["logger"] == "uvicorn.access"]
    assert len(access) == 1 and "/institution/library/contents" in access[0]["message"]
    assert access[0]["institution"] == 1  # bound by the auth dependency, seen by the access log line
    assert all("institution" not in r for r in probe)  # the previous request's fields do not leak


def test_text_format_keeps_the_fields_inline(tmp_path: Path, warehouse_url: str) -> None:
    for base, log_path in _serve(tmp_path, warehouse_url, "text"):
        httpx.get(f"{base}/institution/library/contents", headers={**auth(), "X-Request-Id": "txt-0003"}, timeout=30)
        lines = [line for line in _lines(log_path) if "txt-0003" in line]
        assert lines and all(not line.startswith("{") for line in lines)
        assert any("request_id=txt-0003 institution=1" in line for line in lines), lines
