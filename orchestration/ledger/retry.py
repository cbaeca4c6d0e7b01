"""Riding out a blip of the ledger's database: one retry on a fresh connection.

A PostgreSQL restart (failover, ``pg_ctl restart -m fast``: a fraction of a
second) breaks every pooled connection and refuses new ones for a moment
("the database system is shutting down"). SQLAlchemy invalidates the whole pool
on such a disconnect and ``pool_pre_ping`` checks every connection it hands
out, so the retry below runs on a fresh connection, after a short pause that
covers a fast restart. A second failure is raised as is; the API answers it
``503 unavailable`` with ``Retry-After`` (``api/app.py``).

Only whole ledger operations are retried, each one transaction written to be
idempotent: a transaction that failed was rolled back as a whole, and one whose
COMMIT reached the server but whose answer was lost finds its own rows on the
retry (get-or-create requests, insert-or-ignore recipients, claims and
take-overs that recognise their own id, updates to the same values).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import sqlalchemy.exc as sa_exc

log = logging.getLogger("orchestration.ledger")

P = ParamSpec("P")
T = TypeVar("T")

#: Pause before the one retry: a fast PostgreSQL restart refuses connections for ~0.3 s.
RETRY_DELAY_SECONDS = 0.5


def is_blip(exc: BaseException) -> bool:
    """Did the database (or the connection to it) fail, as opposed to our statement?

    OperationalError (server shutting down or starting, connection refused or
    reset, SQLite busy) and InterfaceError (connection already closed) are; so is
    any DBAPI error SQLAlchemy recognised as a disconnect. A constraint
    violation or a programming error is not.
    """
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def is_unavailable(exc: BaseException) -> bool:
    """The ledger could not be used at all: a blip, or no pooled connection free in time."""
    return is_blip(exc) or isinstance(exc, sa_exc.TimeoutError)


def retry_once(operation: Callable[P, T]) -> Callable[P, T]:
    """Run ``operation``; on a blip, once more after :data:`RETRY_DELAY_SECONDS`."""

    @functools.wraps(operation)
    def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return operation(*args, **kwargs)
        except Exception as exc:
            if not is_blip(exc):
                raise
            log.warning(
                "ledger: %s failed (%s: %s); retrying once on a fresh connection",
                getattr(operation, "__qualname__", operation),
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
        time.sleep(RETRY_DELAY_SECONDS)
        return operation(*args, **kwargs)

    return retrying
