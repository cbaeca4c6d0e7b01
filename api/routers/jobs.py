"""Job status, history and cancel — scoped to the requester.

A job is visible only to users recorded as its requesters (same institution);
for everybody else it does not exist (404), so ids cannot be probed across
tenants. Polling here is not rate limited with the report budget.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api.dagster_client import (
    ACTIVE_STATUSES,
    DagsterClient,
    DagsterError,
    DagsterUnavailable,
    RunInfo,
    RunNotTerminable,
)
from api.dependencies import CurrentPrincipal, Principal
from api.errors import ApiError, responses
from api.models import Job, JobPage
from api.services import DagsterDep, LauncherDep, LedgerDep, SettingsDep, StorageDep
from assets.contract import ProducedFile
from orchestration.delivery.storage import ReportStorage
from orchestration.ledger import KnownFile, Ledger, RequestRow
from orchestration.settings import Settings

router = APIRouter(prefix="/institution/reports/jobs", tags=["jobs"])


def _link(storage: ReportStorage, settings: Settings, storage_key: str, filename: str) -> tuple[str, datetime]:
    expires_in = storage.link_expires_in(settings.link_ttl_seconds)
    now = datetime.now(UTC)
    url = storage.download_url(storage_key, filename, expires_in, now=now)
    return url, now + timedelta(seconds=expires_in)


def job_view(
    row: RequestRow,
    run: RunInfo | None,
    *,
    link: tuple[ReportStorage, Settings] | None = None,
    known: KnownFile | None = None,
) -> Job:
    """The job as its requester sees it; ``link`` (storage, settings) adds a fresh download url.
    ``known``: the file the ledger recorded for this run (the run succeeded), used while Dagster is down."""
    data: dict[str, Any] = {
        "id": row.job_id,
        "report": row.report,
        "cached": row.kind == "cache",
        "params": row.params,
        "requested_at": row.requested_at,
    }
    storage_key, filename, rows = row.storage_key, row.filename, row.rows
    if row.kind == "cache":
        data.update(status="succeeded", started_at=row.requested_at, finished_at=row.requested_at)
    elif known is not None:
        data.update(status="succeeded", finished_at=known.produced_at)
        storage_key, filename, rows = known.storage_key, known.filename, known.rows
    elif run is None:
        # Deleted from Dagster (or never became visible): nothing to report on.
        data.update(status="failed")
    else:
        data.update(status=run.job_status, started_at=run.started_at, finished_at=run.ended_at)
        produced = ProducedFile.from_run_tags(run.tags)
        storage_key = produced.storage_key if produced else None
        filename = produced.filename if produced else None
        rows = produced.rows if produced else None
    if data["status"] == "succeeded":
        data.update(rows=rows, filename=filename)
        if link is not None and storage_key and filename:
            data["url"], data["url_expires_at"] = _link(*link, storage_key, filename)
    return Job(**data)


def _my_request(ledger: Ledger, principal: Principal, job_id: str) -> RequestRow:
    """The caller's request for the job; 404 for anybody who is not one of its requesters."""
    row = ledger.requests.request_of(job_id, principal.user_id, principal.institution_id)
    if row is None:
        raise ApiError("not_found", f"Job {job_id} not found")
    return row


@router.get(
    "/{job_id}",
    response_model=Job,
    responses=responses("unauthenticated", "invalid_argument", "not_found", "unavailable"),
    summary="Status of one of my report jobs",
    description="Status (queued, running, succeeded, failed, canceled), timestamps, rows and — when succeeded — "
    "a fresh download link and its expiry. Only the job's requesters see it; anybody else gets 404. "
    "While Dagster is unreachable: 503 `unavailable`, except for jobs whose success the API already recorded.",
)
def get_job(
    principal: CurrentPrincipal,
    ledger: LedgerDep,
    dagster: DagsterDep,
    launcher: LauncherDep,
    storage: StorageDep,
    settings: SettingsDep,
    job_id: Annotated[str, Path(max_length=255, description="Job id returned by a report endpoint.")],
) -> Job:
    row = _my_request(ledger, principal, job_id)
    try:
        run = None if row.kind == "cache" else dagster.get_run(job_id)
    except DagsterUnavailable:
        # Without Dagster the status is unknown (503), unless the ledger already recorded this
        # run's file (a poll or an identical request saw it succeed): that answer needs no Dagster.
        known = ledger.files.known_file(row.cache_key)
        if known is None or known.run_id != job_id:
            raise
        return job_view(row, None, link=(storage, settings), known=known)
    if run is not None and not run.active:
        launcher.learn(run)  # the next identical request is a cache hit without asking Dagster
    return job_view(row, run, link=(storage, settings))


@router.get(
    "",
    response_model=JobPage,
    responses=responses("unauthenticated", "invalid_argument", "unavailable"),
    summary="My report jobs, newest first",
    description="The requester's job history in this institution, newest first, paged. "
    "Items carry no download link; fetch one job for that.",
)
def list_jobs(
    principal: CurrentPrincipal,
    ledger: LedgerDep,
    dagster: DagsterDep,
    page: Annotated[int, Query(ge=1, le=100000, description="Page number (≥ 1). Default 1.")] = 1,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1–100). Default 20.")] = 20,
) -> JobPage:
    rows, total = ledger.requests.history(
        principal.user_id, principal.institution_id, limit=limit, offset=(page - 1) * limit
    )
    run_ids = [r.job_id for r in rows if r.kind != "cache"]
    runs = {r.run_id: r for r in dagster.find_runs(run_ids=run_ids, limit=len(run_ids))} if run_ids else {}
    items = [job_view(r, runs.get(r.job_id)) for r in rows]
    return JobPage(items=items, total=total, page=page, limit=limit)


@router.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    responses=responses(
        "unauthenticated", "invalid_argument", "failed_precondition", "permission_denied", "not_found", "unavailable"
    ),
    summary="Cancel one of my queued or running jobs",
    description=(
        "Terminates the Dagster run. Only the user who launched the job may cancel it (users who joined an "
        "identical request get 403, since the run serves them all); a finished job cannot be cancelled "
        "(400 failed_precondition). "
        "Idempotent: cancelling a job whose cancellation is under way answers 204 again; a job still starting is "
        "waited for briefly, then 400 failed_precondition (retry)."
    ),
)
def cancel_job(
    principal: CurrentPrincipal,
    ledger: LedgerDep,
    dagster: DagsterDep,
    job_id: Annotated[str, Path(max_length=255, description="Job id returned by a report endpoint.")],
) -> Response:
    row = _my_request(ledger, principal, job_id)
    if row.kind == "cache":
        raise ApiError("failed_precondition", f"Job {job_id} was served from cache and has already finished")
    if not row.launched:
        raise ApiError("permission_denied", "Only the user who launched this job can cancel it")
    run = dagster.get_run(job_id)
    if run is None or not run.active:
        raise ApiError("failed_precondition", f"Job {job_id} has already finished")
    _terminate(dagster, job_id, run)
    return Response(status_code=204)


#: Dagster terminates only QUEUED and STARTED runs; a STARTING run (its worker is
#: being launched, ~1-3 s) becomes STARTED shortly, so the cancel waits this long for it.
CANCEL_WAIT_SECONDS = 5.0
_CANCEL_POLL_SECONDS = 0.25


def _terminate(dagster: DagsterClient, job_id: str, run: RunInfo) -> None:
    """Terminate the run, idempotently: 204 once a cancellation is under way (CANCELING) or
    done by a concurrent call; 400 failed_precondition when it finished first or is still
    starting after :data:`CANCEL_WAIT_SECONDS`. A status Dagster refuses is never a 500."""
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    status = run.status
    while True:
        if status in ("CANCELING", "CANCELED"):
            return  # already being cancelled (a double DELETE, or a concurrent one): idempotent
        if status not in ACTIVE_STATUSES:
            raise ApiError("failed_precondition", f"Job {job_id} has already finished")
        try:
            dagster.terminate_run(job_id)
            return
        except RunNotTerminable as exc:
            status = exc.status
        except DagsterError:
            again = dagster.get_run(job_id)
            if again is None or not again.active:  # it finished between our check and the terminate
                raise ApiError("failed_precondition", f"Job {job_id} has already finished") from None
            raise
        if status in ("CANCELING", "CANCELED"):
            return
        if status not in ACTIVE_STATUSES:
            raise ApiError("failed_precondition", f"Job {job_id} has already finished")
        if time.monotonic() >= deadline:
            raise ApiError(
                "failed_precondition",
                f"Job {job_id} is starting and cannot be cancelled yet; try again in a few seconds",
            )
        time.sleep(_CANCEL_POLL_SECONDS)
        current = dagster.get_run(job_id)
        status = current.status if current is not None else "NOT_FOUND"
