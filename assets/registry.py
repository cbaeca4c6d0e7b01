"""Every report type, discovered from the modules under ``assets/reports``.

Adding a report = adding one module that exports ``SPEC``; the orchestration
layer builds its asset and ad-hoc job from this registry, so no wiring changes.
"""

from __future__ import annotations

import importlib
import pkgutil

from assets import reports as _reports_pkg
from assets.spec import ReportSpec


def _discover() -> dict[str, ReportSpec]:
    found: dict[str, ReportSpec] = {}
    for info in sorted(pkgutil.iter_modules(_reports_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_reports_pkg.__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, ReportSpec):
            if spec.name in found:
                raise ValueError(f"duplicate report name {spec.name!r} in {info.name}")
            found[spec.name] = spec
    return found


REPORTS: dict[str, ReportSpec] = _discover()
_BY_SLUG: dict[str, ReportSpec] = {s.slug: s for s in REPORTS.values()}


def by_slug(slug: str) -> ReportSpec:
    """Look a report up by its URL/file slug (e.g. ``storyboard-usage``)."""
    return _BY_SLUG[slug]
