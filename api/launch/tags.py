"""The ``lxp/*`` run tags the API writes on launch and reads back from finished runs."""

from __future__ import annotations

from datetime import UTC, datetime

from api.dagster_client import RunInfo
from orchestration.ledger.schema import CLAIM_TAG
from orchestration.requests_store import KnownFile

TAG_REPORT = "lxp/report"
TAG_INSTITUTION = "lxp/institution"
TAG_REQUESTER = "lxp/requester"
TAG_CACHE_KEY = "lxp/cache_key"
TAG_STORAGE_KEY = "lxp/storage_key"
TAG_FILENAME = "lxp/filename"
TAG_ROWS = "lxp/rows"
TAG_CLAIM = CLAIM_TAG


def file_of_run(run: RunInfo) -> KnownFile | None:
    """The file a successful single-request run produced, from its tags (None otherwise)."""
    tags = run.tags
    if run.status != "SUCCESS" or not (
        tags.get(TAG_CACHE_KEY) and tags.get(TAG_STORAGE_KEY) and tags.get(TAG_FILENAME)
    ):
        return None
    rows = tags.get(TAG_ROWS)
    return KnownFile(
        cache_key=tags[TAG_CACHE_KEY],
        storage_key=tags[TAG_STORAGE_KEY],
        filename=tags[TAG_FILENAME],
        rows=int(rows) if rows and rows.isdigit() else None,
        # A partition's materialization is stamped before its run ends: take the
        # run's start there, so a file learned from tags never outlives the TTL.
        produced_at=(run.started_at if "dagster/partition" in tags else None)
        or run.ended_at
        or run.created_at
        or datetime.now(UTC),
        run_id=run.run_id,
    )
