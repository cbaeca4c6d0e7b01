"""Institution lookups shared by assets, sensors and the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assets.spec import Institution
from orchestration.warehouse.client import Warehouse

_SQL = "SELECT id, name, subdomain, timezone FROM institutions"


class UnknownInstitution(LookupError):
    pass


class InvalidInstitution(ValueError):
    """The warehouse row cannot be reported on (e.g. an unknown timezone name):
    a data fault to surface clearly, never to paper over with a default zone."""


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _institution(row: Mapping[str, Any]) -> Institution:
    return Institution(id=int(row["id"]), name=row["name"], subdomain=row["subdomain"], timezone=row["timezone"])


def load_institution(warehouse: Warehouse, institution_id: int) -> Institution:
    frame = warehouse.query(_SQL + " WHERE id = :institution_id", {"institution_id": institution_id})
    if frame.height == 0:
        raise UnknownInstitution(f"institution {institution_id} is not in the warehouse")
    institution = _institution(frame.row(0, named=True))
    if not valid_timezone(institution.timezone):
        raise InvalidInstitution(
            f"institution {institution_id} has an unknown timezone {institution.timezone!r} in the warehouse"
        )
    return institution


def list_institutions(warehouse: Warehouse) -> list[Institution]:
    """Every institution, including ones with bad data (callers that need the
    timezone check ``valid_timezone`` and report the rest)."""
    frame = warehouse.query(_SQL + " ORDER BY id")
    return [_institution(r) for r in frame.iter_rows(named=True)]
