"""The backends one API process talks to, built once per app from settings.

Each backend is a FastAPI dependency (``LedgerDep``, ``DagsterDep``,
``StorageDep``, ``LauncherDep``, ``CacheDep``, ``UsersDep``, ...), so a route declares what
it needs (routers never take the whole container) and a test can swap one with ``app.dependency_overrides``. They are
all read from the :class:`Services` built at start-up; tests can also build
that object with a fake Dagster transport and pass it to ``create_app``.
The ledger is migrated at start-up (idempotent and locked, see
:mod:`orchestration.ledger.migrate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from api.dagster_client import DagsterClient
from api.dependencies import Principal
from api.duckdb_reader import SharedDuckDB
from api.institutions import InstitutionDirectory
from api.launch import ReportLauncher
from api.launch.cache import ReportCache
from api.probes import Prober
from api.users import UserDirectory
from assets.registry import REPORTS
from assets.spec import Institution
from orchestration.delivery.deliver import BackgroundDelivery
from orchestration.delivery.storage import S3_REQUEST_TIMEOUTS, ReportStorage, storage_from_settings
from orchestration.ledger import Ledger
from orchestration.settings import Settings
from orchestration.warehouse.client import Warehouse, duckdb_path

log = logging.getLogger("api")


@dataclass
class Services:
    settings: Settings
    dagster: DagsterClient
    ledger: Ledger
    storage: ReportStorage
    warehouse: Warehouse
    launcher: ReportLauncher
    users: UserDirectory
    institutions: InstitutionDirectory
    prober: Prober = field(default_factory=Prober)
    #: Sends cache hits' notifications right after the request (the delivery sensor is the safety net).
    delivery: BackgroundDelivery | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, dagster: DagsterClient | None = None) -> Services:
        dagster = dagster or DagsterClient(settings.dagster_url)
        ledger = Ledger.from_settings(settings)
        ledger.migrate()
        storage = storage_from_settings(settings, s3_timeouts=S3_REQUEST_TIMEOUTS)
        warehouse = shared_warehouse(settings.warehouse)
        users = UserDirectory(warehouse)
        titles = {spec.slug: spec.title for spec in REPORTS.values()}
        delivery = BackgroundDelivery(ledger, storage, settings, titles=titles)
        launcher = ReportLauncher(settings, dagster, ledger, storage, email_of=users.email, deliver=delivery.submit)
        institutions = InstitutionDirectory(warehouse)
        return cls(settings, dagster, ledger, storage, warehouse, launcher, users, institutions, delivery=delivery)

    def close(self) -> None:
        if self.delivery is not None:
            self.delivery.close()  # queued jobs stay pending for the sensor; sends under way finish
        reader = getattr(self.warehouse, "_duckdb_connect", None)
        if isinstance(reader, SharedDuckDB):
            reader.close()
        self.dagster.close()
        self.ledger.dispose()

    def warehouse_version(self) -> tuple[str, int, int, int] | None:
        return warehouse_version(self.warehouse)

    def institution(self, principal: Principal) -> Institution:
        return self.institutions.of(principal)


def warehouse_version(warehouse: Warehouse) -> tuple[str, int, int, int] | None:
    """A token that changes whenever the warehouse content can change, or None when any query may differ.

    The DuckDB file is only ever replaced whole (built aside, renamed over), so
    its identity is such a token; PostgreSQL changes under us, so it has none.
    """
    reader = getattr(warehouse, "_duckdb_connect", None)
    if isinstance(reader, SharedDuckDB):
        try:
            return reader.version()
        except OSError:
            return None
    return None


def shared_warehouse(url: str) -> Warehouse:
    """The API's warehouse client: DuckDB through one attached file and per-thread cursors."""
    if url.startswith("duckdb:"):
        return Warehouse(url, duckdb_connect=SharedDuckDB(duckdb_path(url)))
    return Warehouse(url)


def _warehouse_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean "the warehouse failed" (503), as opposed to a bug in a builder (500)."""
    import duckdb

    errors: list[type[Exception]] = [duckdb.Error, OSError]
    try:
        import psycopg2

        errors.append(psycopg2.Error)
    except ImportError:  # pragma: no cover - psycopg2 ships with the project
        pass
    return tuple(errors)


WAREHOUSE_ERRORS = _warehouse_errors()


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_app_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_ledger(services: ServicesDep) -> Ledger:
    return services.ledger


def get_dagster(services: ServicesDep) -> DagsterClient:
    return services.dagster


def get_storage(services: ServicesDep) -> ReportStorage:
    return services.storage


def get_launcher(services: ServicesDep) -> ReportLauncher:
    return services.launcher


def get_users(services: ServicesDep) -> UserDirectory:
    return services.users


def get_warehouse(services: ServicesDep) -> Warehouse:
    return services.warehouse


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
DagsterDep = Annotated[DagsterClient, Depends(get_dagster)]
StorageDep = Annotated[ReportStorage, Depends(get_storage)]
LauncherDep = Annotated[ReportLauncher, Depends(get_launcher)]
UsersDep = Annotated[UserDirectory, Depends(get_users)]
WarehouseDep = Annotated[Warehouse, Depends(get_warehouse)]


def get_institutions(services: ServicesDep) -> InstitutionDirectory:
    return services.institutions


InstitutionsDep = Annotated[InstitutionDirectory, Depends(get_institutions)]


def get_cache(services: ServicesDep) -> ReportCache:
    return services.launcher.cache


def get_prober(services: ServicesDep) -> Prober:
    return services.prober


CacheDep = Annotated[ReportCache, Depends(get_cache)]
ProberDep = Annotated[Prober, Depends(get_prober)]
