"""Compute one report and store its file — shared by the partitioned assets,
the ad-hoc jobs and (for the compute half) the API's synchronous reports.
Rendering a file is the writers' business (``assets.writers.render``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from assets.contract import ProducedFile
from assets.spec import ReportRequest, ReportSpec
from assets.writers.formats import CONTENT_TYPES
from assets.writers.render import Computed, render_file
from orchestration.delivery.storage import ReportStorage
from orchestration.warehouse.client import Warehouse


def compute(spec: ReportSpec, request: ReportRequest, warehouse: Warehouse) -> Computed:
    """Extract (institution + period pushed down); building happens in Polars on use."""
    return Computed(spec=spec, request=request, frames=warehouse.query_many(spec.queries, request.query_params()))


#: Tests only: while the file this names exists (at most 120 s), a run waits before writing its file,
#: so a fault test can kill the run worker of a run it knows is in progress.
HOLD_FILE_ENV = "LXP_TEST_HOLD_FILE"


def _hold_for_tests() -> None:
    hold = os.environ.get(HOLD_FILE_ENV)
    if not hold:
        return
    deadline = time.monotonic() + 120
    while os.path.exists(hold) and time.monotonic() < deadline:
        time.sleep(0.2)


def write_and_store(
    spec: ReportSpec,
    computed: Computed,
    request: ReportRequest,
    fmt: str,
    storage: ReportStorage,
    storage_key: str,
    filename: str,
) -> ProducedFile:
    """Write the file in the storage's staging directory, then hand it over (atomic on its side):
    for local storage that is a rename with the digest the writer computed, not a copy and a
    second hash of the file (``ReportStorage.staging_dir``)."""
    _hold_for_tests()
    with storage.staging_dir(storage_key) as tmp:
        path = Path(tmp) / filename
        rendered = render_file(spec, computed, request, fmt, path)
        stored = storage.put_file(path, storage_key, CONTENT_TYPES[fmt], sha256=rendered.sha256, move=True)
    return ProducedFile(
        storage_key=stored.key,
        filename=filename,
        rows=rendered.rows,
        bytes=stored.bytes,
        sha256=stored.sha256,
        preview_md=rendered.preview_md,
    )
