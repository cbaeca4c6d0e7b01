"""Seed 002: synchronous reports (questions, bookings, workload, groups usage).

They are computed in the request (FastAPI runs these sync routes in its worker
thread pool) with the very builders the Dagster assets use, so a file and a
sync answer never disagree. A request that is exactly one cached month with no
filter is answered from the month partition's file when its format matches.

Time range: ``start_date`` and ``end_date`` are milliseconds since the epoch,
both inclusive; the builders get ``[start, end + 1 ms)``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from api.dagster_client import DagsterError, DagsterUnavailable
from api.dependencies import CurrentPrincipal, Principal
from api.errors import ApiError, responses
from api.institutions import warehouse_error
from api.negotiation import negotiate
from api.routers.async_reports import check_school_ids
from api.services import WAREHOUSE_ERRORS, Services, ServicesDep
from api.validation import positive_ids
from assets.contract import ProducedFile
from assets.registry import by_slug
from assets.request import RequestedReport
from assets.spec import Institution
from assets.writers.formats import MEDIA_TYPES, answer_content_type
from assets.writers.render import render_file
from orchestration.delivery.storage import STORAGE_ERRORS
from orchestration.produce import compute

log = logging.getLogger("api.sync")
router = APIRouter(prefix="/reports", tags=["sync reports"])

MAX_MS = 4_102_444_799_999  # 2099-12-31T23:59:59.999Z: every derived local instant stays representable
MAX_IDS = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_ERRORS = responses(
    "invalid_argument",
    "unauthenticated",
    "not_found",
    "not_acceptable",
    "resource_exhausted",
    "internal",
    "unavailable",
)

EpochMs = Annotated[StrictInt, Field(ge=0, le=MAX_MS, description="Milliseconds since the UNIX epoch (inclusive).")]
IdList = Annotated[list[StrictInt | str] | None, Field(max_length=MAX_IDS)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class QuestionsBody(_Body):
    start_date: EpochMs
    end_date: EpochMs
    group_ids: IdList = Field(default=None, description="Group ids; all groups of the institution when absent.")


class BookingsBody(_Body):
    start_date: EpochMs = Field(
        description="Milliseconds since the epoch; bookings are selected by their scheduled date."
    )
    end_date: EpochMs = Field(description="Milliseconds since the epoch (inclusive).")
    school_ids: IdList = Field(default=None, description="School ids; all schools of the institution when absent.")


class WorkloadBody(_Body):
    school_ids: IdList = Field(default=None, description="School ids; all schools of the institution when absent.")


class GroupsUsageBody(_Body):
    start_date: EpochMs
    end_date: EpochMs
    group_ids: Annotated[
        list[StrictInt | str], Field(min_length=1, max_length=MAX_IDS, description="Groups to report on.")
    ]
    name: Annotated[str | None, Field(max_length=200, description="Name of the report (xlsx title).")] = None
    show_disciplines: StrictBool = False
    show_teachers: StrictBool = False


def _period(start_ms: int, end_ms: int) -> tuple[datetime, datetime]:
    if start_ms > end_ms:
        raise ApiError("invalid_argument", "start_date must be before or equal to end_date")
    # Integer arithmetic: float seconds could turn .999 into .998999 and break the exact-month match.
    start = EPOCH + timedelta(milliseconds=start_ms)
    end = EPOCH + timedelta(milliseconds=end_ms + 1)
    return start, end


def _group_ids(services: Services, institution_id: int, raw: Sequence[Any] | None) -> list[str]:
    if not raw:
        return []
    ids = sorted({str(v).strip() for v in raw})
    if any(not v or len(v) > 64 for v in ids):
        raise ApiError("invalid_argument", "Invalid group_ids. Must be a list of group id strings")
    placeholders = ", ".join(f":g{i}" for i in range(len(ids)))
    params: dict[str, Any] = {f"g{i}": v for i, v in enumerate(ids)}
    params["institution_id"] = institution_id
    try:
        found = services.warehouse.query(
            f"SELECT id FROM groups WHERE institution_id = :institution_id AND id IN ({placeholders})", params
        )
    except Exception as exc:
        raise warehouse_error(exc) from exc
    unknown = sorted(set(ids) - {str(v) for v in found["id"].to_list()})
    if unknown:
        raise ApiError("invalid_argument", f"Invalid group_ids. Not groups of this institution: {', '.join(unknown)}")
    return ids


def _school_ids(services: Services, institution_id: int, raw: Sequence[Any] | None) -> list[int]:
    if not raw:
        return []
    result = positive_ids(raw, "Invalid school_ids. Must be a list of positive integer ids")
    check_school_ids(services.warehouse, institution_id, result)
    return result


def _file_response(content: bytes, fmt: str, filename: str | None) -> Response:
    media = answer_content_type(fmt)
    headers = {"Cache-Control": "no-store"}
    if fmt != "json" and filename:
        from orchestration.delivery.storage import content_disposition

        headers["Content-Disposition"] = content_disposition(filename)
    return Response(content=content, media_type=media, headers=headers)


#: The partition lookup is an optimisation: a hung Dagster must not hold a synchronous report
#: (computed here without Dagster) for the client's full 10 s timeout.
CACHE_LOOKUP_SECONDS = 2.0


def _cached_month_file(services: Services, request: RequestedReport) -> bytes | None:
    """Bytes of the month partition's file when the request is exactly that month and it is fresh."""
    partition = request.partition_key(services.settings.first_partition_month)
    if partition is None:
        return None
    try:
        event = services.dagster.latest_materialization(request.spec.name, partition, timeout=CACHE_LOOKUP_SECONDS)
    except (DagsterUnavailable, DagsterError) as exc:
        log.warning("sync %s: cache lookup skipped (%s)", request.spec.slug, exc)
        return None
    produced = None if event is None else ProducedFile.from_metadata(event.metadata)
    if event is None or produced is None or produced.fmt != request.fmt:
        return None
    if not services.launcher.is_fresh(request, event.timestamp, datetime.now(UTC)):
        return None
    try:
        with services.storage.open(produced.storage_key) as fh:
            return fh.read()
    except STORAGE_ERRORS:
        log.warning("sync %s: cached file %s unreadable", request.spec.slug, produced.storage_key, exc_info=True)
        return None


def _run(
    services: Services,
    principal: Principal,
    slug: str,
    accept: str | None,
    start: datetime | None,
    end: datetime | None,
    filters: dict[str, Any],
    *,
    validate_ids: Any = None,
) -> Response:
    spec = by_slug(slug)
    fmt = negotiate(accept, spec.formats)
    institution = services.institution(principal)
    if validate_ids is not None:
        validate_ids(institution)
    request = (
        RequestedReport.snapshot(spec, institution, fmt, filters)
        if start is None or end is None
        else RequestedReport.for_range(spec, institution, start, end, fmt, filters)
    )
    filename = request.answer_file_name(datetime.now(UTC))
    cached = _cached_month_file(services, request)
    if cached is not None:
        return _file_response(cached, fmt, filename)
    inputs = request.inputs(services.settings.report_options())
    try:
        computed = compute(spec, inputs, services.warehouse)
    except WAREHOUSE_ERRORS as exc:
        raise warehouse_error(exc) from exc
    with tempfile.TemporaryDirectory(prefix="lxp-sync-") as tmp:
        path = Path(tmp) / filename
        render_file(spec, computed, inputs, fmt, path)
        return _file_response(path.read_bytes(), fmt, filename)


_ACCEPT_DOC = (
    "application/json (default) or text/csv (Portuguese column names). No header, `*/*`, `application/*` and "
    "`text/*` are accepted and q-values honoured; any other media type (e.g. `application/xml`) is 406."
)
_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report: a JSON array of rows (default) or CSV.",
        "content": {"application/json": {}, "text/csv": {}},
    }
}


@router.post(
    "/questions",
    responses={**_FILE_RESPONSES, **_ERRORS},
    summary="Questions report (sync, json/csv)",
    description="Questions created in the period in the token's institution (optionally only `group_ids`). "
    + _ACCEPT_DOC,
)
def questions(
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: Annotated[QuestionsBody, Body()],
    accept: Annotated[str | None, Header(description=_ACCEPT_DOC)] = None,
) -> Response:
    start, end = _period(body.start_date, body.end_date)
    filters: dict[str, Any] = {}

    def ids(institution: Institution) -> None:
        if body.group_ids:
            filters["group_ids"] = _group_ids(services, institution.id, body.group_ids)

    return _run(services, principal, "questions", accept, start, end, filters, validate_ids=ids)


@router.post(
    "/bookings",
    responses={**_FILE_RESPONSES, **_ERRORS},
    summary="Bookings report (sync, json/csv)",
    description="Bookings scheduled in the period (optionally only `school_ids`), with the derived status. "
    + _ACCEPT_DOC,
)
def bookings(
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: Annotated[BookingsBody, Body()],
    accept: Annotated[str | None, Header(description=_ACCEPT_DOC)] = None,
) -> Response:
    start, end = _period(body.start_date, body.end_date)
    filters: dict[str, Any] = {}

    def ids(institution: Institution) -> None:
        if body.school_ids:
            filters["school_ids"] = _school_ids(services, institution.id, body.school_ids)

    return _run(services, principal, "bookings", accept, start, end, filters, validate_ids=ids)


@router.post(
    "/bookings-workload",
    responses={**_FILE_RESPONSES, **_ERRORS},
    summary="Bookings workload report (sync, json/csv)",
    description="Weekly minutes of each teacher's current booking schedule per discipline. " + _ACCEPT_DOC,
)
def bookings_workload(
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: Annotated[WorkloadBody | None, Body()] = None,
    accept: Annotated[str | None, Header(description=_ACCEPT_DOC)] = None,
) -> Response:
    filters: dict[str, Any] = {}

    def ids(institution: Institution) -> None:
        if body is not None and body.school_ids:
            filters["school_ids"] = _school_ids(services, institution.id, body.school_ids)

    return _run(services, principal, "bookings-workload", accept, None, None, filters, validate_ids=ids)


@router.post(
    "/groups-usage",
    responses={
        200: {
            "description": "The summary object (json), the students list (csv) or a workbook with a summary sheet "
            "and one sheet per list (xlsx).",
            "content": {"application/json": {}, "text/csv": {}, MEDIA_TYPES["xlsx"]: {}},
        },
        **_ERRORS,
    },
    summary="Groups usage report (sync, json/csv/xlsx)",
    description="Usage summary of `group_ids` in the period. Accept: application/json (default), text/csv or "
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.",
)
def groups_usage(
    principal: CurrentPrincipal,
    services: ServicesDep,
    body: Annotated[GroupsUsageBody, Body()],
    accept: Annotated[
        str | None,
        Header(
            description="application/json (default), text/csv or the xlsx media type. No header, `*/*`, "
            "`application/*` and `text/*` are accepted and q-values honoured; any other media type is 406."
        ),
    ] = None,
) -> Response:
    start, end = _period(body.start_date, body.end_date)
    filters: dict[str, Any] = {"show_disciplines": body.show_disciplines, "show_teachers": body.show_teachers}
    if body.name:
        filters["name"] = body.name

    def ids(institution: Institution) -> None:
        filters["group_ids"] = _group_ids(services, institution.id, body.group_ids)

    return _run(services, principal, "groups-usage", accept, start, end, filters, validate_ids=ids)
