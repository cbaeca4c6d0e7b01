"""Dagster objects, one folder per domain (like dagster-io's dagster-open-platform).

``reports`` (assets, jobs, partitions, checks, the monthly backfill),
``institutions`` (the partition sync sensor) and ``delivery`` (the delivery
sensor and its notifier resource) each expose a small ``definitions.py``;
``orchestration.definitions`` merges them. Dagster-free code stays outside.
"""
