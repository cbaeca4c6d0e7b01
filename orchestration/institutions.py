"""Institution lookups shared by assets, sensors and the API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
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


def registration_order(institutions: Iterable[Institution], at: datetime) -> list[Institution]:
    """The order new institutions join the dynamic ``institution`` partition: by UTC
    offset at ``at``, then zone, then id.

    Dagster batches a backfill only over *contiguous* keys of that dimension
    (``BackfillPolicy.multi_run`` chunks each contiguous range), and the monthly
    sensor requests together exactly the institutions whose local day 1 has come,
    i.e. one zone group. Registered by id, a zone group is scattered (ids are not
    grouped by zone) and a 1,000-institution month became one run per fragment;
    registered by zone, each group is one range, cut in runs of
    ``LXP_BACKFILL_BATCH_SIZE``. Unknown zones go last."""

    def key(inst: Institution) -> tuple[float, str, int]:
        if not valid_timezone(inst.timezone):
            return (float("inf"), inst.timezone, inst.id)
        offset = at.astimezone(ZoneInfo(inst.timezone)).utcoffset()
        return (offset.total_seconds() if offset is not None else 0.0, inst.timezone, inst.id)

    return sorted(institutions, key=key)


def unregistered(institutions: Iterable[Institution], known: Iterable[str], at: datetime) -> list[str]:
    """Partition keys of the institutions not yet in ``known``, in :func:`registration_order`:
    what ``institution_sync`` adds, and what the monthly sensor adds itself when its tick
    comes first on a fresh instance."""
    registered = set(known)
    return [str(i.id) for i in registration_order((i for i in institutions if str(i.id) not in registered), at)]
