"""Response models shared by the routers (they are what /docs shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class QueuedResult(BaseModel):
    id: str | None = Field(
        default=None, description="Id of the queued (or joined) report job; poll it at /institution/reports/jobs/{id}."
    )
    cached: bool | None = Field(
        default=None, description="true when a recent file was reused and the notification resent."
    )


class AsyncReportResponse(BaseModel):
    """`{"results": {"id": ...}}` for a queued job, `{"results": {"cached": true}}` for a cache hit."""

    results: QueuedResult

    model_config = {
        "json_schema_extra": {"examples": [{"results": {"id": "abc123-def456-ghi789"}}, {"results": {"cached": True}}]}
    }


JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]


class Job(BaseModel):
    id: str = Field(description="Job id (Dagster run id, or `cache:<key>:<uuid>` for a cache hit).")
    report: str = Field(description="Report slug, e.g. `storyboard-usage`.")
    status: JobStatus
    cached: bool = Field(description="true when the request was served from an existing file.")
    params: dict[str, Any] = Field(description="The request's normalized parameters.")
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    rows: int | None = Field(default=None, description="Data rows in the file (when succeeded).")
    filename: str | None = None
    url: str | None = Field(default=None, description="Fresh download link (when succeeded).")
    url_expires_at: datetime | None = None


class JobPage(BaseModel):
    items: list[Job]
    total: int
    page: int
    limit: int


class Health(BaseModel):
    status: Literal["ok"]
    components: dict[str, str]


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok"]
    components: dict[str, str] = Field(description="The readiness conditions: ledger, storage, warehouse.")
    info: dict[str, str] = Field(description="Reported, not required: dagster.")
