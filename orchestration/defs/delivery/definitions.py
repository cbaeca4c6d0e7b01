"""The delivery domain: the delivery sensor and its notifier resource."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.delivery.notifier import NotifierResource
from orchestration.defs.delivery.sensor import build_delivery_sensor
from orchestration.settings import Settings


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        sensors=[build_delivery_sensor(settings.delivery_interval_seconds)],
        resources={"notifier": NotifierResource.from_settings(settings)},
    )
