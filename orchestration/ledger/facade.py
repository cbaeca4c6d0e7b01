"""The one way into the request ledger: a :class:`Ledger` over one engine, one part per concern."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orchestration.ledger import migrate
from orchestration.ledger.claims import Claims
from orchestration.ledger.deliveries import Deliveries
from orchestration.ledger.engine import create_engine, engine_url
from orchestration.ledger.files import Files
from orchestration.ledger.requests import Requests


class Ledger:
    """Requests and recipients, in-flight claims, known files and deliveries, on one database.

    ``ledger.requests`` records who asked for which job and how it ended,
    ``ledger.claims`` the in-flight claim of a cache key, ``ledger.files`` the
    newest known file per cache key, ``ledger.deliveries`` the notifications'
    leases and delivery state. Every API replica, the Dagster delivery sensor,
    the run-end hook and the CLI share the database (``Settings.ledger``).
    """

    def __init__(
        self, url: str, *, engine: Engine | None = None, max_attempts: int = 8, backoff_seconds: float = 5.0
    ) -> None:
        self.url = engine_url(url)
        self._own_engine = engine is None
        self.engine = engine if engine is not None else create_engine(self.url)
        self.requests = Requests(self.engine)
        self.claims = Claims(self.engine)
        self.files = Files(self.engine)
        self.deliveries = Deliveries(self.engine, max_attempts=max_attempts, backoff_seconds=backoff_seconds)

    @classmethod
    def from_settings(cls, settings: Any, *, engine: Engine | None = None) -> Ledger:
        return cls(
            settings.ledger,
            engine=engine,
            max_attempts=settings.outbox_max_attempts,
            backoff_seconds=settings.outbox_backoff_seconds,
        )

    def migrate(self) -> bool:
        """Bring the database to the current schema (idempotent and locked: safe from every process at start-up)."""
        return migrate.upgrade(self.engine)

    def ping(self) -> None:
        """``SELECT 1``: is the ledger's database reachable?"""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        if self._own_engine:
            self.engine.dispose()
