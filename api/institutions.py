"""The caller's institution (name, subdomain, timezone) for the API, cached per process.

Every report request needs it and it changes rarely, so one warehouse read per
institution per minute is enough. Unknown is 404, bad warehouse data 500 with
the reason, an unreachable warehouse 503.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from api.dependencies import Principal
from api.errors import ApiError
from assets.spec import Institution
from orchestration.institutions import InvalidInstitution, UnknownInstitution, load_institution
from orchestration.warehouse.client import Warehouse

log = logging.getLogger("api")


def warehouse_error(exc: Exception) -> ApiError:
    log.error("warehouse error: %s: %s", type(exc).__name__, exc)
    return ApiError("unavailable", "The warehouse is unavailable; try again later")


def _unknown_ids(warehouse: Warehouse, table: str, institution_id: int, ids: Sequence[Any]) -> list[str]:
    """The ``ids`` that are not rows of ``table`` (``schools`` / ``groups``) of the institution, as text;
    503 when the warehouse cannot tell. The one tenant check of caller-supplied ids."""
    placeholders = ", ".join(f":v{i}" for i in range(len(ids)))
    params: dict[str, Any] = {f"v{i}": v for i, v in enumerate(ids)}
    params["institution_id"] = institution_id
    try:
        found = warehouse.query(
            f"SELECT id FROM {table} WHERE institution_id = :institution_id AND id IN ({placeholders})", params
        )
    except Exception as exc:
        raise warehouse_error(exc) from exc
    known = {str(v) for v in found["id"].to_list()}
    return [str(v) for v in ids if str(v) not in known]


def check_school_ids(warehouse: Warehouse, institution_id: int, school_ids: list[int]) -> None:
    """Refuse ids that are not schools of the caller's institution (never answer with another tenant's data)."""
    if not school_ids:
        return
    unknown = sorted({int(v) for v in _unknown_ids(warehouse, "schools", institution_id, school_ids)})
    if unknown:
        raise ApiError(
            "invalid_argument",
            f"Invalid school_ids. Not schools of this institution: {', '.join(map(str, unknown))}",
        )


def check_group_ids(warehouse: Warehouse, institution_id: int, raw: Sequence[Any]) -> list[str]:
    """Sorted unique group ids, all groups of the caller's institution (400 otherwise, 503 when
    the warehouse cannot tell)."""
    ids = sorted({str(v).strip() for v in raw})
    if any(not v or len(v) > 64 for v in ids):
        raise ApiError("invalid_argument", "Invalid group_ids. Must be a list of group id strings")
    if unknown := sorted(_unknown_ids(warehouse, "groups", institution_id, ids)):
        raise ApiError("invalid_argument", f"Invalid group_ids. Not groups of this institution: {', '.join(unknown)}")
    return ids


class InstitutionDirectory:
    def __init__(self, warehouse: Warehouse, ttl_seconds: float = 60.0) -> None:
        self.warehouse = warehouse
        self.ttl_seconds = ttl_seconds
        self._cache: dict[int, tuple[float, Institution]] = {}
        self._lock = threading.Lock()

    def of(self, principal: Principal) -> Institution:
        """The caller's institution from the warehouse (404 when unknown, 503 when unreachable)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(principal.institution_id)
        if hit is not None and now - hit[0] < self.ttl_seconds:
            return hit[1]
        try:
            institution = load_institution(self.warehouse, principal.institution_id)
            with self._lock:
                self._cache[principal.institution_id] = (now, institution)
            return institution
        except UnknownInstitution:
            raise ApiError("not_found", f"Institution {principal.institution_id} not found") from None
        except InvalidInstitution as exc:
            # Bad warehouse data, not bad input and not an outage: say exactly what is wrong.
            log.error("%s", exc)
            raise ApiError("internal", f"Institution {principal.institution_id} is misconfigured: {exc}") from None
        except Exception as exc:
            raise warehouse_error(exc) from exc
