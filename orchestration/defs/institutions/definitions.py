"""The institutions domain: the partition sync sensor."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.institutions.sync_sensor import institution_sync
from orchestration.settings import Settings


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(sensors=[institution_sync])
