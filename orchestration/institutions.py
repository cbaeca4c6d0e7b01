"""Institution lookups shared by assets, sensors and the API."""
from __future__ import annotations

from assets.spec import Institution
from orchestration.warehouse.client import Warehouse

_SQL = "SELECT id, name, subdomain, timezone FROM institutions"


class UnknownInstitution(LookupError):
    pass


def load_institution(warehouse: Warehouse, institution_id: int) -> Institution:
    frame = warehouse.query(_SQL + " WHERE id = :institution_id", {"institution_id": institution_id})
    if frame.height == 0:
        raise UnknownInstitution(f"institution {institution_id} is not in the warehouse")
    row = frame.row(0, named=True)
    return Institution(id=int(row["id"]), name=row["name"], subdomain=row["subdomain"], timezone=row["timezone"])


def list_institutions(warehouse: Warehouse) -> list[Institution]:
    frame = warehouse.query(_SQL + " ORDER BY id")
    return [Institution(id=int(r["id"]), name=r["name"], subdomain=r["subdomain"], timezone=r["timezone"]) for r in frame.iter_rows(named=True)]
