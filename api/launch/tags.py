"""A finished run's file, read back from the ``lxp/*`` tags it carries.

The tag names themselves live in :mod:`assets.contract` (written by the run,
read here and by the delivery sensor).
"""

from __future__ import annotations

from datetime import UTC, datetime

from api.dagster_client import RunInfo
from assets.contract import DAGSTER_PARTITION_TAG, TAG_CACHE_KEY, ProducedFile
from orchestration.ledger import KnownFile


def file_of_run(run: RunInfo) -> KnownFile | None:
    """The file a successful single-request run produced, from its tags (None otherwise)."""
    tags = run.tags
    produced = ProducedFile.from_run_tags(tags)
    if run.status != "SUCCESS" or not tags.get(TAG_CACHE_KEY) or produced is None:
        return None
    return KnownFile(
        cache_key=tags[TAG_CACHE_KEY],
        storage_key=produced.storage_key,
        filename=produced.filename,
        rows=produced.rows,
        # A partition's materialization is stamped before its run ends: take the
        # run's start there, so a file learned from tags never outlives the TTL.
        produced_at=(run.started_at if DAGSTER_PARTITION_TAG in tags else None)
        or run.ended_at
        or run.created_at
        or datetime.now(UTC),
        run_id=run.run_id,
    )
