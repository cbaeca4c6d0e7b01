"""The run/file contract between the Dagster side and the API, written once.

Both sides talk through strings Dagster stores: run tags, job names, the code
location and partition dimension names, the ad-hoc job's run config and the
materialization metadata of a report file. Written as literals on each side
they drift silently (a renamed tag is a cache that never hits); here each is a
constant or a small typed record with its own to/from conversions, imported by
every reader and writer. Dagster-free, so the API (which never loads Dagster)
and the request model in ``assets`` can use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

# -- code location and partitions ------------------------------------------------

#: Name of the one code location (``workspace.yaml`` and ``[tool.dagster]`` say the same).
LOCATION = "lxp_reports"
#: Dagster's name for the repository of a ``Definitions`` object.
REPOSITORY = "__repository__"
#: Multi-partition dimensions of monthly reports (Dagster orders them by name: institution|month).
INSTITUTION_DIMENSION = "institution"
MONTH_DIMENSION = "month"

# -- run tags ------------------------------------------------------------------

TAG_REPORT = "lxp/report"  # report slug: every report run carries it
TAG_INSTITUTION = "lxp/institution"  # institution id of an API-launched run
TAG_INSTITUTION_NAME = "lxp/institution_name"  # readable name next to the id, for operators
TAG_REQUESTER = "lxp/requester"  # user id of the first requester
TAG_CACHE_KEY = "lxp/cache_key"  # identity of the request (assets.cache_key)
TAG_STORAGE_KEY = "lxp/storage_key"  # the produced file (single-request runs)
TAG_FILENAME = "lxp/filename"
TAG_ROWS = "lxp/rows"
TAG_BYTES = "lxp/bytes"
TAG_TRIGGER = "lxp/trigger"  # "monthly" for the monthly backfill
TAG_MONTH = "lxp/month"  # YYYY-MM of the monthly backfill
#: The launcher's claim (one identical request in flight): a run launched under a claim
#: carries its id, so a claim orphaned by a dead launcher is bound to its run later.
TAG_CLAIM = "lxp/claim"

#: Dagster's own partition tags (written by Dagster for partitioned runs, and by the API when it launches one).
DAGSTER_PARTITION_TAG = "dagster/partition"
DAGSTER_PRIORITY_TAG = "dagster/priority"


def dagster_dimension_tag(dimension: str) -> str:
    """``dagster/partition/<dimension>``: the per-dimension tag of a multi-partition run."""
    return f"{DAGSTER_PARTITION_TAG}/{dimension}"


# -- jobs ----------------------------------------------------------------------

#: The op of every ad-hoc job (its run config lives under ``ops.<ADHOC_OP>.config``).
ADHOC_OP = "build_report"


def partition_job_name(asset_name: str) -> str:
    """The asset job the API launches for exactly one partition."""
    return f"{asset_name}_job"


def adhoc_job_name(asset_name: str) -> str:
    """The job taking the request parameters as run config (custom ranges, filters)."""
    return f"{asset_name}_adhoc"


class AdhocParams(BaseModel):
    """Run config of an ad-hoc job: what the launcher sends and what the op's
    Dagster config schema declares (``orchestration`` subclasses this model with
    ``dg.Config``, so the two cannot disagree; a test compares them anyway).

    Plain strings because the Dagster launchpad edits them by hand: ``start``/``end``
    are ISO-8601 (without an offset they mean the institution's local time),
    empty for snapshot reports; ``filters_json`` is a JSON object; an empty
    ``fmt`` means the report's default format."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    institution_id: int
    start: str = ""
    end: str = ""
    filters_json: str = "{}"
    fmt: str = ""

    def run_config(self) -> dict[str, Any]:
        """The ``runConfigData`` of a launch of the ad-hoc job."""
        return {"ops": {ADHOC_OP: {"config": self.model_dump()}}}


# -- the produced file -----------------------------------------------------------

# Materialization metadata keys of a report file (read back by the API's cache).
META_STORAGE_KEY = "storage_key"
META_FILENAME = "filename"
META_FORMAT = "format"
META_ROWS = "rows"
META_BYTES = "bytes"
META_SHA256 = "sha256"
META_PARTITION = "partition"
META_PREVIEW = "preview"
META_INSTITUTION_NAME = "institution_name"

_DIGITS = re.compile(r"^[0-9]+$")


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if _DIGITS.match(text) else None


@dataclass(frozen=True)
class ProducedFile:
    """One stored report file: what a run writes and what the API and the
    delivery sensor read back (from run tags or materialization metadata).

    Read back from tags, ``sha256`` is unknown (tags stay small) and ``rows``/
    ``bytes`` may be; ``fmt`` is always the file name's extension."""

    storage_key: str
    filename: str
    rows: int | None = None
    bytes: int | None = None
    sha256: str | None = None
    preview_md: str = ""

    @property
    def fmt(self) -> str:
        return self.filename.rsplit(".", 1)[-1].lower()

    def metadata(self) -> dict[str, Any]:
        """Plain materialization / op-output metadata (the asset adds preview and partition)."""
        return {
            META_STORAGE_KEY: self.storage_key,
            META_FILENAME: self.filename,
            META_FORMAT: self.fmt,
            META_ROWS: self.rows,
            META_BYTES: self.bytes,
            META_SHA256: self.sha256,
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ProducedFile | None:
        """The file a materialization recorded; None when it recorded none."""
        key, filename = metadata.get(META_STORAGE_KEY), metadata.get(META_FILENAME)
        if not key or not filename:
            return None
        sha = metadata.get(META_SHA256)
        return cls(
            storage_key=str(key),
            filename=str(filename),
            rows=_int_or_none(metadata.get(META_ROWS)),
            bytes=_int_or_none(metadata.get(META_BYTES)),
            sha256=str(sha) if sha else None,
        )

    def run_tags(self) -> dict[str, str]:
        """Tags a single-request run adds, so the API and the delivery sensor find the file from the run alone."""
        tags = {TAG_STORAGE_KEY: self.storage_key, TAG_FILENAME: self.filename}
        if self.rows is not None:
            tags[TAG_ROWS] = str(self.rows)
        if self.bytes is not None:
            tags[TAG_BYTES] = str(self.bytes)
        return tags

    @classmethod
    def from_run_tags(cls, tags: Mapping[str, str]) -> ProducedFile | None:
        """The file a run recorded in its tags; None when it recorded none."""
        key, filename = tags.get(TAG_STORAGE_KEY), tags.get(TAG_FILENAME)
        if not key or not filename:
            return None
        return cls(
            storage_key=key,
            filename=filename,
            rows=_int_or_none(tags.get(TAG_ROWS)),
            bytes=_int_or_none(tags.get(TAG_BYTES)),
        )
