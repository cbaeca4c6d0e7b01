"""The request ledger: who asked for which report job, and their notifications.

One database (``settings.ledger``: SQLite under ``$LXP_HOME`` or PostgreSQL)
shared by every API replica and the Dagster delivery sensor. ``schema`` holds
the tables, ``engine`` the one engine factory, ``migrate`` the Alembic runner,
``records`` the writes every side shares. The request side
(:mod:`orchestration.requests_store`) and the delivery side
(:mod:`orchestration.delivery.outbox`) are two views of these same rows.
"""
