"""Probes: liveness (``/livez``), readiness (``/readyz``) and the overall health report (``/healthz``).

* ``/livez`` checks nothing but that the process answers: restarting a replica
  cures neither a warehouse nor a Dagster outage, and restarting every replica
  at once makes any outage worse.
* ``/readyz`` checks what this replica needs to serve its requests — the request
  ledger, the report storage and the warehouse — each within
  :data:`api.probes.PROBE_DEADLINE_SECONDS`. Dagster is reported, not required:
  the synchronous reports, the library and the job history of cache hits work
  without it, and the async routes answer 503 ``unavailable`` by themselves
  while it is down (taking every replica out of the load balancer would only
  turn those 503s into connection errors and take the rest down too).
* ``/healthz`` is for dashboards and people: every backend, Dagster included,
  with the same deadlines; not meant for Kubernetes probes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from api.dagster_client import DagsterClient
from api.errors import ApiError, responses
from api.models import Health, Liveness, Readiness
from api.probes import OK, PROBE_DEADLINE_SECONDS, Prober
from api.services import (
    DagsterDep,
    LedgerDep,
    ProberDep,
    StorageDep,
    WarehouseDep,
)
from orchestration.delivery.storage import ReportStorage
from orchestration.ledger import Ledger
from orchestration.warehouse.client import Warehouse

router = APIRouter(tags=["health"])


def _probe_all(
    prober: Prober, ledger: Ledger, storage: ReportStorage, warehouse: Warehouse, dagster: DagsterClient
) -> dict[str, str]:
    """Every backend's status, probed concurrently within the deadline (``api.probes``)."""
    checks: dict[str, Callable[[], Any]] = {
        "ledger": ledger.ping,
        "storage": storage.ping,
        "warehouse": warehouse.ping,
        "dagster": dagster.ping,
    }
    return prober.run(checks)


def _listing(components: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in components.items())


@router.get(
    "/livez",
    response_model=Liveness,
    summary="Liveness: the process answers",
    description='Always 200 `{"status": "ok"}` while the process serves HTTP; no backend is checked '
    "(a backend outage is not cured by restarting the API). For the Kubernetes liveness probe.",
)
def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=responses("unavailable"),
    summary="Readiness: this replica can serve",
    description=f"200 when the request ledger (`SELECT 1`), the report storage (directory writable / S3 "
    f"`head_bucket`) and the warehouse (`SELECT 1`) answer, each within {PROBE_DEADLINE_SECONDS:g} s "
    "(checked concurrently, so the probe answers within that time whatever hangs); otherwise 503 "
    "`unavailable` whose message lists each component. Dagster's status is in `info`, not a condition: "
    "the synchronous reports and the library work without it and the asynchronous routes answer 503 "
    "`unavailable` by themselves while it is down. For the Kubernetes readiness probe.",
)
def readyz(
    prober: ProberDep, ledger: LedgerDep, storage: StorageDep, warehouse: WarehouseDep, dagster: DagsterDep
) -> dict[str, Any]:
    results = _probe_all(prober, ledger, storage, warehouse, dagster)
    info = {"dagster": results.pop("dagster")}
    if any(v != OK for v in results.values()):
        raise ApiError("unavailable", f"Not ready: {_listing(results)}; info: {_listing(info)}")
    return {"status": "ok", "components": results, "info": info}


@router.get(
    "/healthz",
    response_model=Health,
    responses=responses("unavailable"),
    summary="Health of the API and all its backends (Dagster included)",
    description=f"200 when the request ledger, the warehouse, the Dagster webserver and the report storage all "
    f"answer, each within {PROBE_DEADLINE_SECONDS:g} s; otherwise 503 `unavailable` whose message lists each "
    "component's status. An overview for dashboards and people: Kubernetes probes use `/livez` and `/readyz` "
    "(a Dagster outage makes `/healthz` 503 but leaves replicas ready).",
)
def healthz(
    prober: ProberDep, ledger: LedgerDep, warehouse: WarehouseDep, dagster: DagsterDep, storage: StorageDep
) -> dict[str, Any]:
    components = _probe_all(prober, ledger, storage, warehouse, dagster)
    if any(v != OK for v in components.values()):
        raise ApiError("unavailable", f"Unhealthy: {_listing(components)}")
    return {"status": "ok", "components": components}
