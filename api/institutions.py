"""The caller's institution (name, subdomain, timezone) for the API, cached per process.

Every report request needs it and it changes rarely, so one warehouse read per
institution per minute is enough. Unknown is 404, bad warehouse data 500 with
the reason, an unreachable warehouse 503.
"""

from __future__ import annotations

import logging
import threading
import time

from api.dependencies import Principal
from api.errors import ApiError
from assets.spec import Institution
from orchestration.institutions import InvalidInstitution, UnknownInstitution, load_institution
from orchestration.warehouse.client import Warehouse

log = logging.getLogger("api")


def warehouse_error(exc: Exception) -> ApiError:
    log.error("warehouse error: %s: %s", type(exc).__name__, exc)
    return ApiError("unavailable", "The warehouse is unavailable; try again later")


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
