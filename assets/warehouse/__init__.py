"""The warehouse contract, declared once: ``schema.sql`` (+ ``indexes.sql``) and what is derived from it.

Why under ``assets/``: report modules may import neither orchestration nor api,
but they must read the same column types the loaders create and the extraction
returns. So the DDL lives here as package data, and ``assets.warehouse.tables``
derives everything else from it: the DDL text for DuckDB and PostgreSQL, the
table names and load order, the Polars dtypes of every column (report inputs,
test fixtures, generated frames) and the one ``conform`` helper.
"""
