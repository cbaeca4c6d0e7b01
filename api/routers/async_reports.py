"""Seeds 000 and 001: asynchronous xlsx reports launched as Dagster runs."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from api.dependencies import CurrentPrincipal
from api.errors import ApiError, responses
from api.institutions import check_school_ids
from api.models import AsyncReportResponse
from api.services import InstitutionsDep, LauncherDep, WarehouseDep
from api.validation import positive_ids
from assets.registry import by_slug
from assets.request import RequestedReport

router = APIRouter(prefix="/institution/reports", tags=["async reports"])

# Same span as seed 000's year (1900-2100): keeps every derived instant representable.
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(2100, 12, 31)
#: What the catalog's dates accept, as the OpenAPI states it: YYYY-MM-DD with a year in
#: 1900-2100 (calendar validity is checked on parse). Anything else is 400 invalid_argument.
DATE_PATTERN = r"^(19[0-9]{2}|20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_DATE_ACCEPTED = f"Must be an ISO date (YYYY-MM-DD) between {MIN_DATE} and {MAX_DATE}"


def _iso_date_text(value: object) -> object:
    """Only ``YYYY-MM-DD`` (pydantic alone also takes ``2026-01-01T00:00:00Z``, which the schema does not allow)."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("must be an ISO date (YYYY-MM-DD)")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]

_ERRORS = responses("invalid_argument", "unauthenticated", "not_found", "resource_exhausted", "internal", "unavailable")


def _results(outcome: dict[str, Any]) -> dict[str, Any]:
    return {"results": outcome}


@router.get(
    "/storyboard-usage",
    response_model=AsyncReportResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    summary="Storyboard Usage report (async, xlsx)",
    description=(
        "Queues the Storyboard Usage report of the token's institution for one month. Returns the job id at once, "
        "or `cached: true` when a recent file exists (the download link is then resent to the requester). "
        "The file link is delivered only to the requesting user."
    ),
)
def storyboard_usage(
    principal: CurrentPrincipal,
    institutions: InstitutionsDep,
    launcher: LauncherDep,
    month: Annotated[int, Query(ge=1, le=12, description="Reporting month (1–12).")],
    year: Annotated[int, Query(ge=1900, le=2100, description="Reporting year (1900–2100).")],
) -> dict[str, Any]:
    institution = institutions.of(principal)
    request = RequestedReport.for_month(by_slug("storyboard-usage"), institution, date(year, month, 1), "xlsx")
    return _results(launcher.request(principal, request))


def parse_school_ids(raw: str | None) -> list[int]:
    """``"10,20"`` -> ``[10, 20]`` (sorted, unique); 400 for anything but positive integers."""
    if raw is None or raw.strip() == "":
        return []
    return positive_ids(raw.split(","), "Invalid school_ids. Must be comma-separated positive integers (e.g. 10,20)")


@router.get(
    "/catalog",
    response_model=AsyncReportResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
    summary="Course Catalog report (async, xlsx)",
    description=(
        "Queues the Course Catalog report of the token's institution for an inclusive date range "
        "(evaluated in the institution's timezone), optionally filtered to courses linked to `school_ids`. "
        "A whole calendar month without a school filter is served from the monthly partition cache."
    ),
)
def catalog(
    principal: CurrentPrincipal,
    institutions: InstitutionsDep,
    launcher: LauncherDep,
    warehouse: WarehouseDep,
    start_date: Annotated[
        IsoDate,
        Query(
            description="Start of the period (ISO date, e.g. 2026-01-01, 1900-01-01 to 2100-12-31), inclusive.",
            json_schema_extra={"pattern": DATE_PATTERN},
        ),
    ],
    end_date: Annotated[
        IsoDate,
        Query(
            description="End of the period (ISO date, e.g. 2026-06-02, 1900-01-01 to 2100-12-31), inclusive; "
            "must be ≥ start_date (400 otherwise).",
            json_schema_extra={"pattern": DATE_PATTERN},
        ),
    ],
    school_ids: Annotated[
        str | None,
        Query(
            description="Optional comma-separated school ids (positive integers), e.g. `10,20`.",
            pattern=r"^[0-9, ]*$",
            json_schema_extra={"accepted": "Must be comma-separated positive integers (e.g. 10,20)"},
        ),
    ] = None,
) -> dict[str, Any]:
    for name, value in (("start_date", start_date), ("end_date", end_date)):
        if not MIN_DATE <= value <= MAX_DATE:
            raise ApiError("invalid_argument", f"Invalid {name}. {_DATE_ACCEPTED}")
    if start_date > end_date:
        raise ApiError("invalid_argument", "start_date must be before or equal to end_date")
    ids = parse_school_ids(school_ids)
    institution = institutions.of(principal)
    check_school_ids(warehouse, institution.id, ids)
    filters: dict[str, Any] = {"school_ids": ids} if ids else {}
    request = RequestedReport.for_dates(by_slug("catalog"), institution, start_date, end_date, "xlsx", filters)
    return _results(launcher.request(principal, request))
