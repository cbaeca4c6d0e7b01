"""The thin FastAPI shim: auth, validation, Encore errors, rate limit, cache/dedup
lookup, run launch through Dagster's GraphQL, job status, sync reports, library
listing and signed downloads. Entry point: ``api.app:create_app`` / ``api.app:app``.

Layout: ``app`` (factory), ``dependencies`` (JWT auth), ``errors`` (Encore bodies,
request ids), ``ratelimit``, ``dagster_client`` (GraphQL), ``launch/`` (cache ->
dedup/join -> launch), ``services`` (backends per app, each a FastAPI dependency),
``institutions`` (the caller's institution, cached), ``negotiation`` (Accept),
``models`` (response models), ``routers/<domain>``.
"""
