"""Dagster down under the real stack: the API stays ready and serves what does not need Dagster.

Against the reliability suite's shared `lxp-reports up` (the stack is whole again when the test
ends, as after test_faults' kills):

1. Webserver hung (SIGSTOP: connections are accepted, nothing answers): /readyz answers 200 within
   its deadline (Dagster is information, not a gate), a synchronous whole-month report (whose
   partition cache lookup asks Dagster) answers 200 without waiting out the Dagster client's
   timeout, and an async report is 503 ``unavailable`` once that timeout (10 s) expires.
2. Webserver and daemon stopped (the supervisor paused so it does not restart them, then both
   killed: connection refused): /livez and /readyz 200, sync report and library 200, an async
   report 503 ``unavailable`` at once, and a poll of a job that succeeded before the outage 200.
3. Both started again (the supervisor resumed): an async report is launched and succeeds.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from api.probes import PROBE_DEADLINE_SECONDS
from assets.periods import month_bounds
from tests.e2e.stack import Person, Stack, months_ago, wait_until
from tests.reliability.report import summary

pytestmark = pytest.mark.e2e

CATALOG = "/institution/reports/catalog"
UNAVAILABLE = {
    "code": "unavailable",
    "message": "The report scheduler (Dagster) is unavailable; nothing was queued. Try again later",
    "details": None,
}


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _catalog(stack: Stack, person: Person, last_day: int) -> httpx.Response:
    year, month = months_ago(7)
    period = f"{year}-{month:02d}"
    return stack.request(CATALOG, person.bearer, start_date=f"{period}-01", end_date=f"{period}-{last_day:02d}")


def _whole_month_questions(stack: Stack, person: Person, timezone: str) -> httpx.Response:
    """A synchronous report of exactly one local month: its partition cache is looked up in Dagster."""
    year, month = months_ago(1)
    start, end = month_bounds(date(year, month, 1), timezone)
    body = {"start_date": int(start.timestamp() * 1000), "end_date": int(end.timestamp() * 1000) - 1}
    return httpx.post(
        f"{stack.base}/reports/questions", json=body, headers={"Authorization": f"Bearer {person.bearer}"}, timeout=60
    )


def _get(stack: Stack, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(f"{stack.base}{path}", timeout=30, **kwargs)


@contextmanager
def _frozen(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_dagster_down_keeps_the_api_ready_and_async_routes_say_unavailable(
    stack: Stack, people: dict[int, list[Person]], tiny_warehouse_path: Path
) -> None:
    person = people[2][0]
    with duckdb.connect(str(tiny_warehouse_path), read_only=True) as con:
        (timezone,) = con.execute("SELECT timezone FROM institutions WHERE id = ?", [person.institution]).fetchone()
    before = _catalog(stack, person, 21)
    assert before.status_code == 200, before.text
    earlier_job = before.json()["results"]["id"]
    assert stack.wait_job(earlier_job, person.bearer)["status"] == "succeeded"  # polled: the ledger knows its file
    figures: dict[str, str] = {}

    # 1. A hung webserver.
    with _frozen(stack.child_pid("dagster-webserver") or 0):
        ready, took = _timed(lambda: _get(stack, "/readyz"))
        assert ready.status_code == 200, ready.text
        assert ready.json()["info"]["dagster"].startswith("unreachable (timeout"), ready.json()
        assert took < PROBE_DEADLINE_SECONDS + 1.5, took
        figures["hung_readyz"] = f"{took:.1f}s"
        sync, took = _timed(lambda: _whole_month_questions(stack, person, timezone))
        assert sync.status_code == 200, sync.text
        assert took < 8, took  # the cache lookup gives up after 2 s, not the client's 10 s
        figures["hung_sync"] = f"{took:.1f}s"
        hung, took = _timed(lambda: _catalog(stack, person, 22))
        assert hung.status_code == 503 and hung.json() == UNAVAILABLE, hung.text
        assert took < 15, took
        figures["hung_async_503"] = f"{took:.1f}s"

    # 2. Webserver and daemon stopped; the paused supervisor does not restart them yet.
    assert stack.proc is not None
    with _frozen(stack.proc.pid):
        webserver, daemon = stack.kill_child("dagster-webserver"), stack.kill_child("dagster_daemon")
        wait_until(lambda: stack.child_pid("dagster-webserver") is None, 30, "the webserver to die", 0.1)
        wait_until(lambda: stack.child_pid("dagster_daemon") is None, 30, "the daemon to die", 0.1)
        assert _get(stack, "/livez").json() == {"status": "ok"}
        ready, took = _timed(lambda: _get(stack, "/readyz"))
        assert ready.status_code == 200, ready.text
        assert ready.json()["components"] == {"ledger": "ok", "storage": "ok", "warehouse": "ok"}
        assert ready.json()["info"] == {"dagster": "unreachable (DagsterUnavailable)"}
        figures["stopped_readyz"] = f"{took:.1f}s"
        assert _get(stack, "/healthz").status_code == 503  # the overview still says Dagster is down
        assert _whole_month_questions(stack, person, timezone).status_code == 200
        library = _get(stack, "/institution/library/contents", headers={"Authorization": f"Bearer {person.bearer}"})
        assert library.status_code == 200, library.text
        refused, took = _timed(lambda: _catalog(stack, person, 22))
        assert refused.status_code == 503 and refused.json() == UNAVAILABLE, refused.text
        assert took < 3, took
        figures["stopped_async_503"] = f"{took:.1f}s"
        polled = stack.request(f"/institution/reports/jobs/{earlier_job}", person.bearer)
        assert polled.status_code == 200 and polled.json()["status"] == "succeeded", polled.text

    # 3. The supervisor restarts both; async reports work again.
    wait_until(
        lambda: stack.child_pid("dagster-webserver") not in (None, webserver), 60, "the webserver to restart", 0.2
    )
    wait_until(lambda: stack.child_pid("dagster_daemon") not in (None, daemon), 60, "the daemon to restart", 0.2)
    stack.wait_healthy()
    after = _catalog(stack, person, 22)
    assert after.status_code == 200, after.text
    assert stack.wait_job(after.json()["results"]["id"], person.bearer)["status"] == "succeeded"
    summary("dagster-down", **figures)
