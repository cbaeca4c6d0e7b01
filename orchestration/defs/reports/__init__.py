"""Reports as Dagster assets: one partitioned asset, a partition job and an ad-hoc job per report spec."""
