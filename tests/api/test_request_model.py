"""The one request model: each name derived from a request, pinned to the
values the routes, the asset and the ad-hoc job produced before it existed."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from assets.cache_key import cache_key
from assets.contract import ADHOC_OP
from assets.periods import DEFAULT_FIRST_MONTH, parse_month
from assets.registry import by_slug
from assets.request import RequestedReport
from assets.spec import Institution

SP = Institution(1, "Demo", "demo", "America/Sao_Paulo")
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
FIRST = parse_month(DEFAULT_FIRST_MONTH)


def test_a_month_is_labelled_keyed_and_partitioned_by_the_month() -> None:
    request = RequestedReport.for_month(by_slug("storyboard-usage"), SP, date(2026, 10, 1), "xlsx")
    assert request.start == datetime(2026, 10, 1, 3, tzinfo=UTC)
    assert request.end == datetime(2026, 11, 1, 3, tzinfo=UTC)
    assert request.period_label(NOW) == "2026-10"
    assert request.period_text(NOW) == "10/2026"
    assert request.file_name(NOW) == "storyboard-usage_1_2026-10.xlsx"
    assert request.cache_params == {"month": "2026-10"}
    assert request.cache_key == cache_key("storyboard-usage", 1, {"month": "2026-10"})
    assert request.partition_key(FIRST) == "1|2026-10-01"


def test_inclusive_dates_are_local_days_and_key_as_the_client_sent_them() -> None:
    spec = by_slug("catalog")
    request = RequestedReport.for_dates(spec, SP, date(2026, 1, 1), date(2026, 3, 31), "xlsx", {"school_ids": [2, 1]})
    assert request.end == datetime(2026, 4, 1, 3, tzinfo=UTC)
    assert request.period_label(NOW) == "2026-01-01_2026-03-31"
    assert request.period_text(NOW) == "01/01/2026 a 31/03/2026"
    assert request.file_name(NOW) == "catalog_1_2026-01-01_2026-03-31.xlsx"
    # the catalog route's former hand-built parameters, with and without its filter
    old = {"start_date": "2026-01-01", "end_date": "2026-03-31", "school_ids": [2, 1]}
    assert request.cache_key == cache_key("catalog", 1, old)
    unfiltered = RequestedReport.for_dates(spec, SP, date(2026, 6, 1), date(2026, 6, 30), "xlsx")
    assert unfiltered.cache_key == cache_key(
        "catalog", 1, {"start_date": "2026-06-01", "end_date": "2026-06-30", "school_ids": None}
    )
    assert request.partition_key(FIRST) is None  # filtered
    assert unfiltered.partition_key(FIRST) == "1|2026-06-01"  # a whole month without filters is the partition
    assert unfiltered.period_label(NOW) == "2026-06-01_2026-06-30"  # ...but is still named as asked


def test_ranges_in_milliseconds_name_local_first_and_last_day() -> None:
    spec = by_slug("questions")
    start = datetime(2025, 10, 1, 3, tzinfo=UTC)
    end = datetime(2025, 11, 1, 2, 59, 59, 999000, tzinfo=UTC) + timedelta(milliseconds=1)
    request = RequestedReport.for_range(spec, SP, start, end, "csv")
    assert request.answer_file_name(NOW) == "questions_1_2025-10-01_2025-10-31.csv"
    assert request.partition_key(FIRST) == "1|2025-10-01"
    assert RequestedReport.for_range(spec, SP, start, end - timedelta(hours=1), "csv").partition_key(FIRST) is None


def test_snapshots_are_named_by_date() -> None:
    spec = by_slug("bookings-workload")
    request = RequestedReport.snapshot(spec, SP, "csv")
    late = datetime(2026, 12, 2, 1, tzinfo=UTC)  # still Dec 1st in São Paulo
    assert request.answer_file_name(late) == "bookings-workload_1_2026-12-01.csv"
    assert request.file_name(late) == "bookings-workload_1_snapshot-2026-12-02.csv"
    assert request.partition_key(FIRST) is None and request.open_period(late)


def test_partitions_exist_only_from_the_first_month_to_the_current_one() -> None:
    spec = by_slug("storyboard-usage")
    assert RequestedReport.for_month(spec, SP, date(2023, 12, 1)).partition_month(FIRST, NOW) is None
    assert RequestedReport.for_month(spec, SP, date(2027, 1, 1)).partition_month(FIRST, NOW) is None
    assert RequestedReport.for_month(spec, SP, date(2026, 12, 1)).partition_month(FIRST, NOW) == date(2026, 12, 1)
    # a later first month (LXP_FIRST_MONTH) drops the months before it
    assert RequestedReport.for_month(spec, SP, date(2025, 11, 1)).partition_month(date(2025, 12, 1), NOW) is None
    assert RequestedReport.for_month(spec, SP, date(2025, 12, 1)).partition_month(date(2025, 12, 1), NOW) == date(
        2025, 12, 1
    )


def test_adhoc_params_round_trip() -> None:
    spec = by_slug("catalog")
    request = RequestedReport.for_dates(spec, SP, date(2026, 1, 1), date(2026, 6, 2), "xlsx", {"school_ids": [1, 2]})
    params = request.adhoc_params()
    assert params.run_config() == {
        "ops": {
            ADHOC_OP: {
                "config": {
                    "institution_id": 1,
                    "start": "2026-01-01T00:00:00-03:00",
                    "end": "2026-06-03T00:00:00-03:00",
                    "filters_json": json.dumps({"school_ids": [1, 2]}),
                    "fmt": "xlsx",
                }
            }
        }
    }
    back = RequestedReport.from_adhoc(spec, SP, params)
    assert (back.start, back.end, dict(back.filters), back.fmt) == (
        request.start,
        request.end,
        dict(request.filters),
        "xlsx",
    )
    assert back.period_label(NOW) == request.period_label(NOW)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"fmt": "pdf"}, "not offered"), ({"filters_json": '{"group_ids": [1]}'}, "unknown filters")],
)
def test_adhoc_params_are_checked_against_the_spec(changes: dict[str, str], message: str) -> None:
    params = RequestedReport.for_month(by_slug("catalog"), SP, date(2026, 6, 1)).adhoc_params()
    with pytest.raises(ValueError, match=message):
        RequestedReport.from_adhoc(by_slug("catalog"), SP, params.model_copy(update=changes))


def test_the_request_is_frozen() -> None:
    request = RequestedReport.for_dates(by_slug("catalog"), SP, date(2026, 1, 1), date(2026, 1, 2), filters={"a": 1})
    with pytest.raises(AttributeError):
        request.fmt = "csv"  # type: ignore[misc]
    with pytest.raises(TypeError):
        request.filters["a"] = 2  # type: ignore[index]
