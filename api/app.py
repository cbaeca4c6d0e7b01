"""The FastAPI application: a thin shim between the platform and Dagster.

``create_app(settings)`` wires routers, auth, Encore errors, the rate limiter
and the backends from the one settings object it is given; ``app`` is the
module-level instance uvicorn serves (``uvicorn api.app:app``), built on first
access: the only place the API reads its settings from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from api import errors, metrics
from api.dagster_client import DagsterError, DagsterUnavailable
from api.limits import RequestLimitsMiddleware
from api.ratelimit import COUNTING, RateLimiter, RateLimitMiddleware, is_limited
from api.routers import async_reports, downloads, health, jobs, library, sync_reports
from api.services import Services
from orchestration.ledger.retry import is_unavailable
from orchestration.logs import configure_logging
from orchestration.redact import install_log_redaction
from orchestration.settings import Settings, exit_if_unsafe

log = logging.getLogger("api")

#: ``Retry-After`` of a 503 for a ledger outage: a database restart or failover takes about a second.
LEDGER_RETRY_AFTER_SECONDS = 2

DESCRIPTION = """
Institution-scoped usage reports for the LXP.

* **Auth**: `Authorization: Bearer <JWT>` (HS256/RS256 per configuration) with the claims
  `institutionId`, `userId` (or `userID`), `subdomain` and, for the library, `privilegio_id`.
* **Errors**: every non-2xx body is `{"code", "message", "details": null}` with Encore codes:
  `invalid_argument` (400; also 406 for an unsupported `Accept`), `failed_precondition` (400),
  `unauthenticated` (401), `permission_denied` (403), `not_found` (404), `resource_exhausted` (429,
  with `Retry-After`), `internal` (500, with `X-Request-Id`), `unavailable` (503).
* **Rate limit**: 60 requests/minute per institution on the report endpoints (`/reports/...`,
  `/institution/reports/...`). {COUNTING}
* **Async reports** return `{"results": {"id"}}` (poll `/institution/reports/jobs/{id}`) or
  `{"results": {"cached": true}}`; the download link is delivered to the requester.
""".replace("{COUNTING}", COUNTING)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """OpenAPI without FastAPI's 422 (clients never see it; they get 400 invalid_argument)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for template, path in schema.get("paths", {}).items():
        for operation in path.values():
            if is_limited(template):  # what counts toward the limit, on every route it applies to
                operation["description"] = f"{operation.get('description', '')}\n\n**Rate limit**: {COUNTING}".strip()
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {
                    "description": "Invalid parameter (`invalid_argument`).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """Build the API from ``settings``. ``services`` lets tests inject backends (e.g. a fake Dagster
    transport); they must have been built from the same settings object."""
    if services is not None and services.settings is not settings:
        raise ValueError("create_app: services were built from other settings")
    exit_if_unsafe(settings, "lxp-reports API")  # LXP_ENV=production: no published or weak secrets
    install_log_redaction()  # download links are credentials: never whole in the access log
    if insecure := settings.secret_problems():  # development: the same rule, as a warning
        log.warning("SECURITY: LXP_ENV=production would refuse to start: %s", "; ".join(insecure))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.services.close()

    app = FastAPI(
        title="LXP Reports API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = services or Services.from_settings(settings)

    errors.install(app)

    @app.exception_handler(DagsterUnavailable)
    async def dagster_unavailable(request: Request, exc: DagsterUnavailable) -> JSONResponse:
        log.warning("dagster unavailable: %s", exc)
        if request.url.path.startswith("/institution/reports/jobs"):
            what = "the job's status is unknown for now" if request.method == "GET" else "nothing was changed"
        else:
            what = "nothing was queued"
        return errors.error_response(
            "unavailable", f"The report scheduler (Dagster) is unavailable; {what}. Try again later"
        )

    @app.exception_handler(sa_exc.DBAPIError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def ledger_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The ledger operation was already retried once on a fresh connection (orchestration.ledger.retry).
        if not is_unavailable(exc):
            raise exc  # a bug, not an outage: the catch-all answers 500 internal with the request id
        log.warning("ledger unavailable %s %s: %s", request.method, request.url.path, str(exc).splitlines()[0])
        return errors.error_response(
            "unavailable",
            "The request database is unavailable for a moment; try again in a few seconds "
            "(a repeated request joins any report already queued)",
            headers={"Retry-After": str(LEDGER_RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(DagsterError)
    async def dagster_error(request: Request, exc: DagsterError) -> JSONResponse:
        rid = errors.request_id(request)
        log.error("dagster error request_id=%s: %s", rid, exc)
        return errors.error_response("internal", f"The report scheduler refused the request (request id {rid})")

    for module in (health, async_reports, jobs, sync_reports, library, downloads):
        app.include_router(module.router)

    app.state.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_limit_storage)
    app.add_middleware(RateLimitMiddleware, limiter=app.state.rate_limiter, settings=settings)
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(errors.RequestIdMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    metrics.install(app)  # GET /metrics (no auth, no rate limit) + per-route request metrics, outermost
    return app


def __getattr__(name: str) -> Any:
    # ``api.app:app`` is built on first access, so importing this module (tests,
    # tooling) does not open databases or read the environment.
    if name == "app":
        settings = Settings()  # the process's settings, from the environment: the API's one entry point
        configure_logging(settings.log_format)  # uvicorn's own loggers included
        globals()["app"] = built = create_app(settings)
        return built
    raise AttributeError(name)
