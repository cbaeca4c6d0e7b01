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

from fastapi import APIRouter, Body, Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from api.dependencies import CurrentPrincipal, Principal
from api.errors import ApiError, responses
from api.institutions import InstitutionDirectory, check_group_ids, check_school_ids, warehouse_error
from api.launch.cache import ReportCache
from api.negotiation import negotiate
from api.services import (
    WAREHOUSE_ERRORS,
    CacheDep,
    InstitutionsDep,
    SettingsDep,
    StorageDep,
    WarehouseDep,
)
from api.validation import positive_ids
from assets.registry import by_slug
from assets.request import RequestedReport
from assets.spec import Institution, ReportSpec
from assets.writers.formats import MEDIA_TYPES, answer_content_type
from assets.writers.render import render_file
from orchestration.delivery.storage import STORAGE_ERRORS, ReportStorage
from orchestration.produce import compute
from orchestration.settings import Settings
from orchestration.warehouse.client import Warehouse

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


def _school_ids(warehouse: Warehouse, institution_id: int, raw: Sequence[Any]) -> list[int]:
    ids = positive_ids(raw, "Invalid school_ids. Must be a list of positive integer ids")
    check_school_ids(warehouse, institution_id, ids)
    return ids


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


class Answer:
    """Computes (or reads from the fresh month partition) one synchronous report: the backends it
    needs, each its own dependency."""

    def __init__(self, settings: Settings, warehouse: Warehouse, cache: ReportCache, storage: ReportStorage) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.cache = cache
        self.storage = storage

    def __call__(
        self,
        spec: ReportSpec,
        fmt: str,
        institution: Institution,
        start: datetime | None,
        end: datetime | None,
        filters: dict[str, Any],
    ) -> Response:
        """``filters`` hold ids already checked against ``institution``."""
        request = (
            RequestedReport.snapshot(spec, institution, fmt, filters)
            if start is None or end is None
            else RequestedReport.for_range(spec, institution, start, end, fmt, filters)
        )
        filename = request.answer_file_name(datetime.now(UTC))
        cached = self._cached(request)
        if cached is not None:
            return _file_response(cached, fmt, filename)
        inputs = request.inputs(self.settings.report_options())
        try:
            computed = compute(spec, inputs, self.warehouse)
        except WAREHOUSE_ERRORS as exc:
            raise warehouse_error(exc) from exc
        with tempfile.TemporaryDirectory(prefix="lxp-sync-") as tmp:
            path = Path(tmp) / filename
            render_file(spec, computed, inputs, fmt, path)
            return _file_response(path.read_bytes(), fmt, filename)

    def _cached(self, request: RequestedReport) -> bytes | None:
        """The fresh month partition's file (the cache's rule), or None: then the report is computed."""
        produced = self.cache.fresh_month_file(request, timeout=CACHE_LOOKUP_SECONDS)
        if produced is None:
            return None
        try:
            with self.storage.open(produced.storage_key) as fh:
                return fh.read()
        except STORAGE_ERRORS:
            log.warning("sync %s: cached file %s unreadable", request.spec.slug, produced.storage_key, exc_info=True)
            return None


def get_answer(settings: SettingsDep, warehouse: WarehouseDep, cache: CacheDep, storage: StorageDep) -> Answer:
    return Answer(settings, warehouse, cache, storage)


AnswerDep = Annotated[Answer, Depends(get_answer)]


def _report(
    slug: str, accept: str | None, institutions: InstitutionDirectory, principal: Principal
) -> tuple[ReportSpec, str, Institution]:
    """The report, the format the client accepts (406 otherwise) and the caller's institution."""
    spec = by_slug(slug)
    fmt = negotiate(accept, spec.formats)
    return spec, fmt, institutions.of(principal)


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
    institutions: InstitutionsDep,
    warehouse: WarehouseDep,
    answer: AnswerDep,
    body: Annotated[QuestionsBody, Body()],
    accept: Annotated[str | None, Header(description=_ACCEPT_DOC)] = None,
) -> Response:
    start, end = _period(body.start_date, body.end_date)
    spec, fmt, institution = _report("questions", accept, institutions, principal)
    filters: dict[str, Any] = {}
    if body.group_ids:
        filters["group_ids"] = check_group_ids(warehouse, institution.id, body.group_ids)
    return answer(spec, fmt, institution, start, end, filters)


@router.post(
    "/bookings",
    responses={**_FILE_RESPONSES, **_ERRORS},
    summary="Bookings report (sync, json/csv)",
    description="Bookings scheduled in the period (optionally only `school_ids`), with the derived status. "
    + _ACCEPT_DOC,
)
def bookings(
    principal: CurrentPrincipal,
    institutions: InstitutionsDep,
    warehouse: WarehouseDep,
    answer: AnswerDep,
    body: Annotated[BookingsBody, Body()],
    accept: Annotated[str | None, Header(description=_ACCEPT_DOC)] = None,
) -> Response:
    start, end = _period(body.start_date, body.end_date)
    spec, fmt, institution = _report("bookings", accept, institutions, principal)
    filters: dict[str, Any] = {}
    if body.school_ids:
        filters["school_ids"] = _school_ids(warehouse, institution.id, body.school_ids)
    return answer(spec, fmt, institution, start, end, filters)


@router.post(
    "/bookings-workload",
    responses={**_FILE_RESPONSES, **_ERRORS},
    summary="Bookings workload report (sync, json/csv)",
    description="Weekly minutes of each teacher's current booking schedule per discipline. " + _ACCEPT_DOC,
)
def bookings_workload(
    principal: CurrentPrincipal,
    institutions: InstitutionsDep,
    warehouse: WarehouseDep,
    answer: AnswerDep,
    body: Annotated[WorkloadBody | None, Body()] = None,
    accept: Annotated[str | None, Header(description=_ACCEPT_DOC)] = None,
) -> Response:
    spec, fmt, institution = _report("bookings-workload", accept, institutions, principal)
    filters: dict[str, Any] = {}
    if body is not None and body.school_ids:
        filters["school_ids"] = _school_ids(warehouse, institution.id, body.school_ids)
    return answer(spec, fmt, institution, None, None, filters)


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
    institutions: InstitutionsDep,
    warehouse: WarehouseDep,
    answer: AnswerDep,
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
    spec, fmt, institution = _report("groups-usage", accept, institutions, principal)
    filters: dict[str, Any] = {"show_disciplines": body.show_disciplines, "show_teachers": body.show_teachers}
    if body.name:
        filters["name"] = body.name
    filters["group_ids"] = check_group_ids(warehouse, institution.id, body.group_ids)
    return answer(spec, fmt, institution, start, end, filters)
