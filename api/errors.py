"""Encore-style error bodies for every non-2xx response.

The customer's clients were written against Encore's error shape
``{"code", "message", "details": null}``; FastAPI's own shapes (``{"detail"}``
and the 422 validation list) must never reach them. ``ApiError`` is raised by
our code; the handlers below translate Starlette/FastAPI errors and unexpected
exceptions (500 ``internal``, no stack trace in the body, logged with the
request id that is also returned in ``X-Request-Id``).

Codes and statuses (Encore's mapping, plus 406 for ``Accept``):

================== ======
invalid_argument    400   (also used with 406 for an unsupported ``Accept``)
failed_precondition 400
unauthenticated     401
permission_denied   403
not_found           404
resource_exhausted  429
internal            500
unavailable         503
================== ======
"""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestration import logs

log = logging.getLogger("api")

STATUS_OF: dict[str, int] = {
    "invalid_argument": 400,
    "failed_precondition": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "resource_exhausted": 429,
    "internal": 500,
    "unavailable": 503,
}

_CODE_OF_STATUS: dict[int, str] = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "invalid_argument",
    406: "invalid_argument",
    409: "failed_precondition",
    413: "invalid_argument",
    415: "invalid_argument",
    429: "resource_exhausted",
    500: "internal",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    """The error body of every non-2xx response."""

    code: str = Field(examples=["invalid_argument"], description="Encore error code.")
    message: str = Field(examples=["Invalid month. Must be between 1 and 12"])
    details: None = Field(default=None, description="Always null.")


class ApiError(Exception):
    """An error with an Encore code; ``status`` defaults to the code's status."""

    def __init__(
        self, code: str, message: str, status: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_OF[code]
        self.headers = headers or {}


def error_response(
    code: str, message: str, status: int | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "details": None},
        status_code=status or STATUS_OF[code],
        headers=headers,
    )


def responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: documents the error model for each code."""
    described = {
        "invalid_argument": "Invalid parameter or JWT claims (`invalid_argument`).",
        "failed_precondition": "The job is not in a state that allows it (`failed_precondition`).",
        "unauthenticated": "Missing or invalid JWT (`unauthenticated`).",
        "permission_denied": "Not allowed for this user (`permission_denied`).",
        "not_found": "Not found for this user (`not_found`).",
        "resource_exhausted": "Rate limit exceeded; see `Retry-After` (`resource_exhausted`).",
        "internal": "Unexpected failure; the `X-Request-Id` header identifies it in the logs (`internal`).",
        "unavailable": "A backend (Dagster, warehouse, storage) is unreachable (`unavailable`).",
        "not_acceptable": "Unsupported `Accept` type (status 406, code `invalid_argument`).",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        status = 406 if code == "not_acceptable" else STATUS_OF[code]
        desc = described[code]
        if status in out:
            desc = out[status]["description"] + " / " + desc
        out[status] = {"model": ErrorBody, "description": desc}
    return out


# ---------------------------------------------------------------- validation messages


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            value = getattr(item, attr, None)
            if value is not None:
                found[attr] = value
    return found


def _range_text(kind: str, cons: dict[str, Any]) -> str:
    lo = cons.get("ge", cons["gt"] + 1 if "gt" in cons else None)
    hi = cons.get("le", cons["lt"] - 1 if "lt" in cons else None)
    if lo is not None and hi is not None:
        return f"Must be between {lo} and {hi}"
    if lo is not None:
        return f"Must be an {kind} greater than or equal to {lo}"
    if hi is not None:
        return f"Must be an {kind} less than or equal to {hi}"
    return f"Must be an {kind}"


def _describe_field(request: Request, loc_kind: str, name: str) -> str | None:
    """The accepted values of a route parameter, from its declaration."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    fields = {"query": dependant.query_params, "header": dependant.header_params, "path": dependant.path_params}.get(
        loc_kind, []
    )
    for field in fields:
        if field.alias == name or field.name == name:
            info = field.field_info
            desc = getattr(info, "json_schema_extra", None) or {}
            if isinstance(desc, dict) and "accepted" in desc:
                return str(desc["accepted"])
            ann = info.annotation
            cons = _constraints(list(info.metadata))
            if ann is int or ann == (int | None):
                return _range_text("integer", cons)
            if ann is date or ann == (date | None):
                return "Must be an ISO date (YYYY-MM-DD)"
            return None
    return None


def _describe_body_field(request: Request, name: str) -> str | None:
    """Accepted range of an integer field of the route's body model, e.g. the ms-epoch dates."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    for param in getattr(dependant, "body_params", None) or []:
        annotation = param.field_info.annotation
        for model in getattr(annotation, "__args__", None) or (annotation,):
            fields = getattr(model, "model_fields", None)
            if fields and name in fields:
                cons = _constraints(list(fields[name].metadata))
                if "ge" in cons and "le" in cons:
                    desc = fields[name].description or ""
                    unit = " (milliseconds since epoch)" if "millisecond" in desc.lower() else ""
                    return f"Must be an integer{unit} between {cons['ge']} and {cons['le']}"
    return None


def _validation_message(request: Request, exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "Invalid request"
    err = errors[0]
    loc = [str(p) for p in err.get("loc", ())]
    kind = loc[0] if loc else "body"
    etype = err.get("type", "")
    if kind == "body":
        name = ".".join(loc[1:])
        if etype == "json_invalid":
            return "Invalid request body. Must be a JSON object"
        if not name:
            if etype == "missing":
                return "Missing request body. Must be a JSON object"
            return "Invalid request body. Must be a JSON object"
        if etype == "missing":
            return f"Missing required field: {name}"
        if etype == "extra_forbidden":
            return f"Unknown field: {name}"
        ctx = err.get("ctx") or {}
        cons = {k: v for k, v in ctx.items() if k in ("ge", "gt", "le", "lt")}
        if etype.startswith("int") or etype in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            return f"Invalid {name}. {_describe_body_field(request, name) or _range_text('integer', cons)}"
        if etype.startswith("bool"):
            return f"Invalid {name}. Must be a boolean"
        if etype.startswith("list"):
            return f"Invalid {name}. Must be a list of strings"
        if etype.startswith("string"):
            return f"Invalid {name}. Must be a string"
        return f"Invalid {name}: {err.get('msg', 'invalid value')}"
    name = loc[-1] if len(loc) > 1 else kind
    accepted = _describe_field(request, kind, name)
    if etype == "missing":
        return f"Missing required parameter: {name}" + (f". {accepted}" if accepted else "")
    if accepted:
        return f"Invalid {name}. {accepted}"
    ctx = err.get("ctx") or {}
    cons = {k: v for k, v in ctx.items() if k in ("ge", "gt", "le", "lt")}
    if cons:
        return f"Invalid {name}. {_range_text('integer', cons)}"
    return f"Invalid {name}: {err.get('msg', 'invalid value')}"


# ---------------------------------------------------------------- request id + handlers


class RequestIdMiddleware:
    """Gives every request an id (kept from ``X-Request-Id`` if sane) and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = (
            incoming
            if 0 < len(incoming) <= 64 and incoming.isascii() and incoming.replace("-", "").isalnum()
            else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = rid
        logs.new_context(request_id=rid)  # every log line of this request (incl. the access log) carries it

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_id(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # Answered here rather than by ServerErrorMiddleware so the 500 also
            # carries X-Request-Id; the trace goes to the log, never the body.
            log.exception("unhandled error request_id=%s %s %s", rid, scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response("internal", f"Internal error (request id {rid})", 500)
            await response(scope, receive, send_with_id)


def allowed_methods(request: Request, also: str = "") -> list[str]:
    """Every method the OpenAPI document lists for the request's path, plus ``also`` (an
    ``Allow`` value), HEAD with GET, and OPTIONS; sorted."""
    methods = {"OPTIONS", *(m.strip().upper() for m in also.split(",") if m.strip())}
    for template, operations in request.app.openapi().get("paths", {}).items():
        regex, _, _ = compile_path(template)
        if regex.match(request.url.path):
            methods.update(m.upper() for m in operations)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or "-"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an Encore body."""

    @app.exception_handler(ApiError)
    async def api_error_handler(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.code, exc.message, exc.status, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("invalid_argument", _validation_message(request, exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_handler(request: Request, exc: StarletteHTTPException) -> Response:
        code = _CODE_OF_STATUS.get(exc.status_code, "internal" if exc.status_code >= 500 else "invalid_argument")
        if exc.status_code == 404:
            message = f"Not found: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            # Starlette's Allow names the first matching route's methods only (GET for
            # /jobs/{id}, which also has DELETE): answer with every route of the path.
            allow = ", ".join(allowed_methods(request, (exc.headers or {}).get("Allow", "")))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": allow})
            return error_response(
                "invalid_argument", f"Method {request.method} not allowed on {request.url.path}", 405, {"Allow": allow}
            )
        else:
            message = str(exc.detail)
        return error_response(code, message, exc.status_code, dict(exc.headers or {}))
