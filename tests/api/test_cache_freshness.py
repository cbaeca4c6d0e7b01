"""A file built while its month was still open is partial once the month closes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from api.launch import ReportLauncher
from assets.registry import by_slug
from assets.request import RequestedReport
from assets.spec import Institution
from orchestration.settings import Settings

SP = Institution(1, "Demo", "demo", "America/Sao_Paulo")


def _launcher() -> ReportLauncher:
    return ReportLauncher(Settings(cache_ttl_seconds=24 * 3600, open_month_cache_ttl_seconds=900), None, None, None)  # type: ignore[arg-type]


def _october() -> RequestedReport:
    return RequestedReport.for_month(by_slug("storyboard-usage"), SP, date(2026, 10, 1))


def test_file_built_before_the_month_closed_is_not_served_after_it() -> None:
    plan, launcher = _october(), _launcher()
    closed = plan.end  # 2026-11-01 00:00 local
    built_before = closed - timedelta(hours=20)
    assert not launcher.is_fresh(plan, built_before, closed + timedelta(hours=1))
    built_after = closed + timedelta(hours=3)  # the monthly run
    assert launcher.is_fresh(plan, built_after, closed + timedelta(hours=4))
    assert not launcher.is_fresh(plan, built_after, built_after + timedelta(hours=25))


def test_open_month_uses_the_short_ttl() -> None:
    plan, launcher = _october(), _launcher()
    now = plan.end - timedelta(days=2)
    assert launcher.is_fresh(plan, now - timedelta(minutes=10), now)
    assert not launcher.is_fresh(plan, now - timedelta(minutes=20), now)
    assert now.tzinfo is not None and plan.end.astimezone(UTC) == datetime(2026, 11, 1, 3, tzinfo=UTC)
