"""Structured logs for every LXP process: JSON lines in production, readable text locally.

Why one module: the API (request id, institution of the caller) and the Dagster runs (run id,
institution of the partition being built) log through the same formatter, so a log collector
can follow one report from the HTTP request to the run that built it by ``institution`` and
``run_id``. ``LXP_LOG_FORMAT=json`` (the Kubernetes manifests) gives one JSON object per line;
``text`` (the default, for local development) gives the same fields inline.

Context travels in a ``ContextVar`` holding a *mutable* dict: the request-id middleware opens
a fresh dict per request, and code running later in a worker thread (FastAPI runs sync
dependencies and endpoints in a copied context) adds fields to that same dict with
:func:`bind`, so the access log line written after the response still sees them. Runs use
:func:`run_logger`, whose fields ride on each record.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("request_id", "run_id", "institution")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# Libraries that log every outgoing call at INFO (one line per Dagster GraphQL request): warnings only.
QUIET_LOGGERS = ("httpx", "httpcore")

_context: ContextVar[dict[str, Any] | None] = ContextVar("lxp_log_context", default=None)
# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "context", "color_message"}


def new_context(**fields: Any) -> None:
    """Start a fresh context (one per request) in the current task."""
    _context.set({key: value for key, value in fields.items() if value is not None})


def bind(**fields: Any) -> None:
    """Add fields to the current context, in place, so every copy of the context sees them."""
    current = _context.get()
    if current is None:
        new_context(**fields)
    else:
        current.update({key: value for key, value in fields.items() if value is not None})


def current() -> dict[str, Any]:
    return dict(_context.get() or {})


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Fields for the duration of a block (restores the previous context after it)."""
    token = _context.set({**current(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the context fields onto each record (fields passed with ``extra=`` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        parts = [f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if getattr(record, key, None) is not None]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: context fields and ``extra=`` values."""
    return {key: value for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(record_fields(record))
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"


def make_handler(fmt: str, stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(fmt: str = "text", level: int | str = logging.INFO) -> None:
    """Route the root logger (and uvicorn's, which have their own handlers) through one handler."""
    root = logging.getLogger()
    root.handlers = [make_handler(fmt)]
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Dagster's CLI (code server, run workers) gives its loggers their own handler (JSON with
    # `--log-format json`): keep them off ours, or every Dagster line is written twice.
    dagster = logging.getLogger("dagster")
    if dagster.handlers:
        dagster.propagate = False


class RunLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose records carry fixed fields (run id, institution) plus the caller's ``extra``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def run_logger(name: str, **fields: Any) -> RunLogger:
    fixed: Mapping[str, Any] = {key: value for key, value in fields.items() if value is not None}
    return RunLogger(logging.getLogger(name), fixed)
