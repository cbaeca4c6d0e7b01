"""Per-institution rate limit on report endpoints, in memory and on a real Redis."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.ratelimit import COUNTING, FailOpenLog, is_limited
from tests.api.conftest import auth, build_client
from tests.api.test_metrics import scrape, value
from tests.e2e.stack import free_port, wait_until
from tests.services.redis import (
    _ping,
    redis_url,  # noqa: F401  (fixture)
)

STORYBOARD = "/institution/reports/storyboard-usage"


def _limited_client(settings, fake_dagster, limit: str = "3/minute", storage: str = "memory://") -> TestClient:
    return build_client(settings.model_copy(update={"rate_limit": limit, "rate_limit_storage": storage}), fake_dagster)


def _exhaust_and_check(client: TestClient) -> None:
    # Every request counts, valid or not: two bad ones and one good one use up the budget.
    assert client.get(f"{STORYBOARD}?month=13&year=2026", headers=auth()).status_code == 400
    assert (
        client.post(
            "/reports/questions", content=b"{broken", headers={**auth(), "Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).status_code == 200
    blocked = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"userId": 12}))
    assert blocked.status_code == 429
    body = blocked.json()
    assert body["code"] == "resource_exhausted" and body["details"] is None and "3/minute" in body["message"]
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    # Another institution has its own budget.
    assert (
        client.get(
            f"{STORYBOARD}?month=3&year=2026", headers=auth({"institutionId": 2, "userId": 20, "subdomain": "beta"})
        ).status_code
        == 200
    )
    # Outside the report budget: library, jobs, health docs.
    assert client.get("/institution/library/contents", headers=auth()).status_code == 200
    assert client.get("/institution/reports/jobs", headers=auth()).status_code == 200


def test_memory_rate_limit(settings, fake_dagster) -> None:
    with _limited_client(settings, fake_dagster) as client:
        _exhaust_and_check(client)


def test_unauthenticated_requests_count_per_client_ip_not_per_claimed_institution(settings, fake_dagster) -> None:
    with _limited_client(settings, fake_dagster, "2/minute") as client:
        for _ in range(2):
            assert client.get(f"{STORYBOARD}?month=3&year=2026").status_code == 401
        assert (
            client.get(f"{STORYBOARD}?month=3&year=2026", headers={"Authorization": "Bearer forged"}).status_code == 429
        )
        # The institution's own budget is untouched by anonymous traffic.
        assert client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).status_code == 200


@pytest.mark.services
def test_redis_rate_limit_is_shared_between_replicas(settings, fake_dagster, redis_url: str) -> None:  # noqa: F811
    storage = redis_url
    inst = 1
    with (
        _limited_client(settings, fake_dagster, "3/minute", storage) as a,
        _limited_client(settings, fake_dagster, "3/minute", storage) as b,
    ):
        a.app.state.rate_limiter.reset()  # counters of earlier runs on this server
        assert a.get(f"{STORYBOARD}?month=13&year=2026", headers=auth({"institutionId": inst})).status_code == 400
        assert b.get(f"{STORYBOARD}?month=13&year=2026", headers=auth({"institutionId": inst})).status_code == 400
        assert a.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"institutionId": inst})).status_code == 200
        blocked = b.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"institutionId": inst, "userId": 12}))
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    import redis

    keys = redis.Redis.from_url(redis_url).keys("*")
    assert any(b"inst:1" in k for k in keys), keys


def test_redis_down_fails_open(settings, fake_dagster) -> None:
    with _limited_client(settings, fake_dagster, "1/minute", "redis://127.0.0.1:1/0") as client:
        for _ in range(3):
            assert (
                client.get(
                    "/institution/reports/catalog?start_date=2026-01-01&end_date=2026-01-02", headers=auth()
                ).status_code
                == 200
            )


def test_the_token_is_verified_once_per_request(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate limiter and the auth dependency share one verification (kept on request.state),
    with the same answers as before: a good token, a forged one, a claim error, no header."""
    import jwt

    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)  # every verification, whoever imports what
    # A rate-limited report path: the middleware verifies, the route reuses it.
    assert client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).status_code == 200
    assert len(calls) == 1
    # A path outside the budget: only the dependency verifies.
    assert client.get("/institution/reports/jobs", headers=auth()).status_code == 200
    assert len(calls) == 2
    # Errors are remembered too, and answered exactly as before.
    forged = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth(secret="x" * 40))
    assert forged.status_code == 401 and forged.json()["message"] == "Invalid token: bad signature"
    assert len(calls) == 3
    bad_claim = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"userId": "abc"}))
    assert bad_claim.status_code == 400
    assert bad_claim.json()["message"] == "Invalid JWT claims: userId must be a positive integer below 10^18"
    assert len(calls) == 4
    missing = client.get(f"{STORYBOARD}?month=3&year=2026")
    assert missing.status_code == 401 and missing.json()["message"] == "Missing Authorization header"
    assert len(calls) == 4  # no token, nothing decoded


def _redis_server(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: _ping(port) or None, 10, "redis-server", interval=0.05)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


@pytest.mark.services
def test_redis_down_warns_once_a_minute_and_counts_every_fail_open(
    settings, fake_dagster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real redis-server stopped under traffic: 20 requests pass (fail open) with one WARNING line,
    not 20, and /metrics counts all 20; when Redis is back, one INFO line says how many failed open."""
    port = free_port()
    redis = _redis_server(port, tmp_path)
    url = f"{STORYBOARD}?month=3&year=2026"
    try:
        with _limited_client(settings, fake_dagster, "1000/minute", f"redis://127.0.0.1:{port}/0") as client:
            assert client.get(url, headers=auth()).status_code == 200
            before = value(scrape(client), "lxp_api_rate_limit_fail_open_total")
            _stop(redis)
            caplog.set_level(logging.INFO, logger="api.ratelimit")
            for _ in range(20):
                assert client.get(url, headers=auth()).status_code == 200
            warnings = [r for r in caplog.records if r.name == "api.ratelimit" and r.levelno == logging.WARNING]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]
            assert "failing open" in warnings[0].getMessage() and "1 request(s)" in warnings[0].getMessage()
            assert value(scrape(client), "lxp_api_rate_limit_fail_open_total") - before == 20

            redis = _redis_server(port, tmp_path)
            caplog.clear()
            assert client.get(url, headers=auth()).status_code == 200
            (back,) = [r.getMessage() for r in caplog.records if r.name == "api.ratelimit"]
            assert back == "rate limit storage answers again; 20 request(s) failed open while it did not"
            assert value(scrape(client), "lxp_api_rate_limit_fail_open_total") - before == 20
    finally:
        _stop(redis)


def test_fail_open_warnings_carry_the_count_since_the_last_one(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    fail_open = FailOpenLog(interval=60, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="api.ratelimit")
    for t in (0, 10, 20, 59.9, 61, 62):
        now[0] = t
        fail_open.failed(ConnectionError("refused"))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "ConnectionError: refused (1 request(s)" in messages[0]
    assert "(4 request(s) let through unlimited since the last warning" in messages[1]  # 10, 20, 59.9, 61
    fail_open.answered()
    fail_open.answered()  # once per recovery
    assert caplog.records[-1].getMessage().endswith("6 request(s) failed open while it did not")
    assert len(caplog.records) == 3


def test_the_openapi_says_what_counts_toward_the_limit(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    description = schema["info"]["description"]
    for words in ("60 requests/minute per institution", "invalid parameters (400)", "failed authentication"):
        assert words in description, words
    assert "Polling `/institution/reports/jobs` does not count" in description
    for template, path in schema["paths"].items():
        for method, operation in path.items():
            counted = "**Rate limit**: " + COUNTING in operation.get("description", "")
            assert counted == is_limited(template), (method, template)
    assert is_limited("/institution/reports/catalog") and not is_limited("/institution/reports/jobs/{job_id}")
