"""Prometheus metrics of the API, served on ``GET /metrics``.

Why these: they answer the operator's questions without reading logs — is the API slow or
failing on some route, how many asynchronous requests are cache hits vs new runs vs joins of
a run in flight, how often institutions hit the rate limit, and whether notifications are
piling up (backlog) or dying in the outbox.

* Request count and latency are labelled by the route *template* (``/institution/reports/
  jobs/{job_id}``), never the raw path, so a client cannot blow up the label set; paths that
  match no route share ``<unmatched>``.
* Counters live in this process (one uvicorn worker per pod; Prometheus sums the replicas).
* Outbox gauges are computed on scrape with one ``GROUP BY state`` query, cached for a few
  seconds so several scrapers do not multiply it.
* ``/metrics`` is outside the rate limit and the JWT auth. Keep it off the public ingress;
  ``LXP_METRICS_TOKEN`` additionally requires ``Authorization: Bearer <token>`` on it.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError

log = logging.getLogger("api.metrics")

METRICS_PATH = "/metrics"
UNMATCHED = "<unmatched>"

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double the output and nobody graphs them
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

REQUESTS = Counter(
    "lxp_api_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "lxp_api_request_duration_seconds",
    "Time to answer a request (until the response has been sent), by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "lxp_api_rate_limited",
    "Requests refused with 429 resource_exhausted by the per-institution rate limit, by route template.",
    ["route"],
    registry=REGISTRY,
)
RATE_LIMIT_FAIL_OPEN = Counter(
    "lxp_api_rate_limit_fail_open",
    "Requests let through unlimited because the rate-limit storage (Redis) did not answer "
    "(the limiter fails open; its WARNING is logged at most once a minute, with this count).",
    registry=REGISTRY,
)
REPORT_REQUESTS = Counter(
    "lxp_api_report_requests",
    "Asynchronous report requests by outcome: cache_hit (file resent), launched (new Dagster run), "
    "joined (an identical run in flight).",
    ["report", "outcome"],
    registry=REGISTRY,
)


def report_outcome(report: str, outcome: str) -> None:
    """Count one asynchronous request's outcome (called by the launcher; never fails the request)."""
    try:
        REPORT_REQUESTS.labels(report, outcome).inc()
    except Exception:
        log.exception("metrics: could not count outcome %s of %s", outcome, report)


def compile_template(template: str) -> re.Pattern[str]:
    """``/jobs/{job_id}`` -> a regex matching the concrete paths of that template."""
    pattern, position = "^", 0
    for param in re.finditer(r"\{[^}]+\}", template):
        pattern += re.escape(template[position : param.start()]) + ("[^/]+" if ":path" not in param.group() else ".+")
        position = param.end()
    return re.compile(pattern + re.escape(template[position:]) + "$")


def route_template(scope: Scope, templates: list[tuple[re.Pattern[str], str]]) -> str:
    """The template of the route that served (or would have served) this request."""
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return str(route.path)
    # Answered before routing (rate limit) or by no route: match the documented templates.
    path = str(scope.get("path", ""))
    for regex, template in templates:
        if regex.match(path):
            return template
    return UNMATCHED


class MetricsMiddleware:
    """Counts every HTTP request (except scrapes of /metrics) with its latency and status."""

    def __init__(self, app: ASGIApp, fastapi_app: Any) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def templates(self) -> list[tuple[re.Pattern[str], str]]:
        """Route templates of the OpenAPI document (built once, after every router is included)."""
        if self._templates is None:
            paths = self.fastapi_app.openapi().get("paths", {})
            self._templates = [(compile_template(template), template) for template in paths]
        return self._templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            route = route_template(scope, self.templates())
            method = str(scope.get("method", ""))
            REQUESTS.labels(route, method, str(status)).inc()
            LATENCY.labels(route, method).observe(time.perf_counter() - started)
            if status == 429:
                RATE_LIMITED.labels(route).inc()


class OutboxCollector:
    """Notification counts per outbox state, read on scrape (cached ``ttl`` seconds)."""

    def __init__(self, outbox: Any, ttl: float = 5.0) -> None:
        self.outbox = outbox
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, int]] | None = None

    def counts(self) -> dict[str, int] | None:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.ttl:
                return self._cached[1]
            try:
                counts: dict[str, int] = dict(self.outbox.counts())
            except Exception as exc:  # a scrape reports what it can, it never fails the endpoint
                log.warning("metrics: outbox unreachable: %s: %s", type(exc).__name__, exc)
                return None
            self._cached = (now, counts)
            return counts

    def collect(self) -> Iterator[Metric]:
        counts = self.counts()
        up = GaugeMetricFamily("lxp_outbox_up", "1 when the outbox database answered the last scrape.")
        up.add_metric([], 0 if counts is None else 1)
        yield up
        if counts is None:
            return
        states = GaugeMetricFamily(
            "lxp_outbox_notifications",
            "Notifications in the outbox by state: waiting (run in flight), pending/sending (backlog), "
            "dead (gave up; `lxp-reports outbox retry ID`), sent.",
            labels=["state"],
        )
        for state, count in sorted(counts.items()):
            states.add_metric([state], count)
        yield states
        backlog = GaugeMetricFamily("lxp_outbox_backlog", "Notifications due or being delivered (pending + sending).")
        backlog.add_metric([], counts.get("pending", 0) + counts.get("sending", 0))
        yield backlog
        dead = GaugeMetricFamily("lxp_outbox_dead", "Notifications that exhausted their delivery attempts.")
        dead.add_metric([], counts.get("dead", 0))
        yield dead


router = APIRouter(include_in_schema=False)


@router.get(METRICS_PATH)
def metrics(request: Request) -> Response:
    settings = request.app.state.settings
    if settings.metrics_token:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), settings.metrics_token):
            raise ApiError("unauthenticated", "Metrics require 'Authorization: Bearer <LXP_METRICS_TOKEN>'")
    per_app = CollectorRegistry()
    per_app.register(request.app.state.outbox_collector)
    body = generate_latest(REGISTRY) + generate_latest(per_app)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install(app: Any) -> None:
    """The /metrics route, the outbox collector and the request middleware (outermost)."""
    app.state.outbox_collector = OutboxCollector(app.state.services.ledger.deliveries)
    app.include_router(router)
    app.add_middleware(MetricsMiddleware, fastapi_app=app)
