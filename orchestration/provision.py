"""``lxp-reports init``: create the PostgreSQL databases and S3 buckets the settings name, when missing.

Idempotent (an existing database or bucket is left as it is), so it can run before every
start of a fresh machine or a staging stack. It creates *containers* only: the request
ledger migrates itself, Dagster creates its tables on first start, and
``lxp-reports generate --out postgresql://...`` fills a test warehouse. Managed
databases and buckets (Kubernetes, a cloud account) are usually created by their
operator; there the command is not needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestration.settings import Settings

DAGSTER_PG_URL_ENV = "DAGSTER_PG_URL"


def postgres_urls(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """What each PostgreSQL database holds -> its URL (only the settings that name PostgreSQL)."""
    urls = {
        "Dagster storage (DAGSTER_PG_URL)": environ.get(DAGSTER_PG_URL_ENV, ""),
        "request ledger and outbox (LXP_LEDGER_URL)": settings.ledger_url,
        "warehouse (LXP_WAREHOUSE_URL)": settings.warehouse_url,
    }
    return {what: url for what, url in urls.items() if url.startswith(("postgresql", "postgres:"))}


def s3_buckets(settings: Settings) -> dict[str, str]:
    """What each bucket holds -> its name (only the settings that name S3)."""
    from orchestration.delivery.storage import parse_s3_location

    locations = {"reports (LXP_STORAGE)": settings.storage, "compute logs (LXP_COMPUTE_LOGS)": settings.compute_logs}
    return {what: parse_s3_location(loc)[0] for what, loc in locations.items() if loc.startswith("s3://")}


def ensure_database(url: str) -> tuple[str, bool]:
    """Create the database of ``url`` unless it exists (connecting to the server's ``postgres``
    database with the same credentials). Returns (database name, created)."""
    import sqlalchemy as sa

    from orchestration.ledger.engine import engine_url

    target = sa.engine.make_url(engine_url(url))  # plain postgresql:// = psycopg2, as everywhere else
    name = target.database
    if not name:
        raise ValueError(f"no database name in {target.render_as_string(hide_password=True)}")
    engine = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists:
                return name, False
            quoted = conn.dialect.identifier_preparer.quote_identifier(name)
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
            return name, True
    finally:
        engine.dispose()


def ensure_bucket(client: Any, bucket: str) -> bool:
    """Create ``bucket`` unless it exists; True when created. A bucket owned by another
    account (403 on HEAD) is an error, not something to create."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = client.meta.region_name
    if region and region != "us-east-1":
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    else:
        client.create_bucket(Bucket=bucket)
    return True


def init(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Create what is missing; one line per database and bucket saying what was done."""
    lines = []
    for what, url in postgres_urls(settings, environ).items():
        name, created = ensure_database(url)
        lines.append(f"database {name!r} ({what}): {'created' if created else 'exists'}")
    buckets = s3_buckets(settings)
    if buckets:
        from orchestration.delivery.storage import S3ReportStorage

        client = S3ReportStorage._make_client(settings.s3_endpoint_url or None)
        for what, bucket in buckets.items():
            created = ensure_bucket(client, bucket)
            lines.append(f"bucket {bucket!r} ({what}): {'created' if created else 'exists'}")
    if not lines:
        lines.append("nothing to create: no PostgreSQL URL or s3:// location is configured")
    return lines
