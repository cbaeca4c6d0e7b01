"""Liveness of the service and its three backends."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from api.errors import ApiError, responses
from api.models import Health
from api.services import DagsterDep, StorageDep, WarehouseDep, storage_ping

log = logging.getLogger("api.health")
router = APIRouter(tags=["health"])


def _check(name: str, probe: Callable[[], Any]) -> str:
    try:
        probe()
        return "ok"
    except Exception as exc:  # a health check reports, it never raises
        log.warning("healthz: %s unreachable: %s: %s", name, type(exc).__name__, exc)
        return f"unreachable ({type(exc).__name__})"


@router.get(
    "/healthz",
    response_model=Health,
    responses=responses("unavailable"),
    summary="Health of the API and its backends",
    description="200 when the warehouse, the Dagster webserver and the report storage are all reachable; "
    "otherwise 503 `unavailable` whose message lists each component's status.",
)
def healthz(warehouse: WarehouseDep, dagster: DagsterDep, storage: StorageDep) -> dict[str, Any]:
    components = {
        "warehouse": _check("warehouse", warehouse.ping),
        "dagster": _check("dagster", dagster.ping),
        "storage": _check("storage", lambda: storage_ping(storage)),
    }
    if any(v != "ok" for v in components.values()):
        raise ApiError("unavailable", "Unhealthy: " + ", ".join(f"{k}={v}" for k, v in components.items()))
    return {"status": "ok", "components": components}
