"""The asset checks every report asset carries (evaluated by the asset itself)."""

from __future__ import annotations

import dagster as dg

ALL_PARTITIONS_BUILT = "all_partitions_built"
FILE_STORED = "file_stored"


def check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            ALL_PARTITIONS_BUILT,
            asset=key,
            description="Every partition of the run was extracted, built with exactly the spec's columns in order "
            "(enforced by produce.compute) and written; the metadata lists the failures.",
        ),
        dg.AssetCheckSpec(
            FILE_STORED, asset=key, description="Every written file is in storage with the size that was written."
        ),
    ]
