"""Our own loggers inside runs carry run id and institution as structured fields, and the
JSON formatter (LXP_LOG_FORMAT=json in run pods) writes them as one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import dagster as dg
import pytest

from assets.periods import previous_month
from assets.registry import REPORTS
from orchestration import logs
from orchestration.defs.reports.asset import report_asset
from orchestration.settings import Settings

LAST_MONTH = previous_month(datetime.now(UTC).date())


def test_partition_build_logs_run_id_and_institution(
    instance: dg.DagsterInstance, resources: dict, caplog: pytest.LogCaptureFixture
) -> None:
    spec = REPORTS["storyboard_usage"]
    pk = f"1|{LAST_MONTH:%Y-%m-%d}"
    with caplog.at_level(logging.INFO, logger="orchestration.reports"):
        result = dg.materialize(
            [report_asset(spec, Settings())], instance=instance, resources=resources, partition_key=pk
        )
    assert result.success
    built = [r for r in caplog.records if r.name == "orchestration.reports" and r.getMessage() == "report built"]
    assert len(built) == 1
    record = built[0]
    assert record.run_id == result.run_id  # type: ignore[attr-defined]
    assert record.institution == 1 and record.partition == pk  # type: ignore[attr-defined]
    assert record.report == spec.slug and record.rows > 0  # type: ignore[attr-defined]

    stream = io.StringIO()
    logs.make_handler("json", stream).handle(record)
    line = json.loads(stream.getvalue())
    assert line["run_id"] == result.run_id and line["institution"] == 1 and line["message"] == "report built"
    assert line["logger"] == "orchestration.reports" and line["level"] == "INFO"


def test_context_fields_reach_every_logger_and_do_not_leak() -> None:
    stream = io.StringIO()
    handler = logs.make_handler("json", stream)
    logger = logging.getLogger("orchestration.test_run_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with logs.log_context(run_id="r-1", institution=7):
            logs.bind(request_id="q-1")
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["run_id"], inside["institution"], inside["request_id"]) == ("r-1", 7, "q-1")
    assert not {"run_id", "institution", "request_id"} & set(outside)
