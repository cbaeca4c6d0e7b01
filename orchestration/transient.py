"""Which failures are worth retrying: the warehouse or the object store being
briefly unreachable, overloaded or locked — not a bad report, a bad parameter
or a missing institution, which fail the same way every time.

Dagster-free; the report runs' ``RetryPolicy`` applies only to errors this
says are transient (everything else fails with ``allow_retries=False``).
"""

from __future__ import annotations

from collections.abc import Iterator

#: S3 error codes that mean "not now".
_TRANSIENT_S3_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError", "ServiceUnavailable"}
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _one_is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__
    name = type(exc).__name__
    if module.startswith("botocore"):
        from botocore.exceptions import ClientError, ReadTimeoutError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        if isinstance(exc, (BotoConnectionError, ReadTimeoutError)):
            return True
        if isinstance(exc, ClientError):
            meta = exc.response.get("ResponseMetadata", {})
            code = exc.response.get("Error", {}).get("Code", "")
            return int(meta.get("HTTPStatusCode") or 0) >= 500 or code in _TRANSIENT_S3_CODES
        return False
    if module.startswith("sqlalchemy"):
        from sqlalchemy.exc import DisconnectionError, OperationalError

        return isinstance(exc, (OperationalError, DisconnectionError))
    if module.startswith("psycopg2"):
        return name in ("OperationalError", "InterfaceError")
    if module.startswith("duckdb") or module == "_duckdb":
        return name in ("IOException", "ConnectionException")  # file locked / unreadable for a moment
    return False


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is a passing infrastructure failure."""
    return any(_one_is_transient(e) for e in _chain(exc))
