"""One settings object for every process (API, Dagster code location, CLI).

Everything is read from the environment with the ``LXP_`` prefix so the same
image runs the embedded demo and production by configuration alone. Only the
process entry points build ``Settings()`` from the environment (``api.app:app``,
``orchestration.definitions:defs``, ``orchestration.cli.main``); everything else
is handed the one object (``create_app(settings)``, ``build_definitions(settings)``)
and no module reads settings at import.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from assets.periods import DEFAULT_FIRST_MONTH, parse_month

#: Shortest secret accepted in production: HS256 keys below the hash size (32 bytes) are brute-forceable
#: (RFC 7518 3.2); `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'` gives 64 characters.
MIN_SECRET_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LXP_", extra="ignore")

    env: Literal["development", "production"] = Field(
        default="development",
        description="production: every entry point (API, Dagster code location, `lxp-reports up`) refuses to "
        "start while a required secret is unset, a built-in development default or shorter than 32 bytes "
        "(`production_problems`). `up --profile production` sets it for its children.",
    )
    home: Path = Field(default=Path("./var"), description="Root for all local state.")
    warehouse_url: str = Field(
        default="",
        description="duckdb:///path/file.duckdb or postgresql://user:pw@host/db; empty = $LXP_HOME/warehouse.duckdb.",
    )
    storage: str = Field(
        default="", description="Report storage: a directory or s3://bucket/prefix; empty = $LXP_HOME/reports."
    )
    s3_endpoint_url: str = Field(default="", description="Endpoint for S3-compatible stores (moto, MinIO).")
    compute_logs: str = Field(
        default="",
        description="Dagster compute logs: s3://bucket/prefix (production profile, S3ComputeLogManager "
        "using LXP_S3_ENDPOINT_URL); empty = local files under DAGSTER_HOME.",
    )
    dagster_url: str = Field(
        default="http://127.0.0.1:3000", description="Dagster webserver the API launches runs through."
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL of the API, used in download links."
    )
    jwt_algorithms: str = Field(default="HS256", description="Comma-separated allow-list: HS256 and/or RS256.")
    jwt_secret: str = Field(default="dev-secret-change-me-in-production-0123456789", description="HS256 secret.")
    jwt_public_key: str = Field(default="", description="RS256 public key (PEM).")
    jwt_private_key: str = Field(default="", description="RS256 private key (PEM), only for `lxp-reports token`.")
    student_url_template: str = Field(
        default="https://{subdomain}.toolzz.com.br/course/{course_id}",
        description="Student view URL of a course in the catalog report.",
    )
    admin_url_template: str = Field(
        default="https://{subdomain}.toolzz.com.br/admin/courses/{course_id}/edit",
        description="Admin edit URL of a course in the catalog report.",
    )
    question_url_template: str = Field(
        default="https://portal.stift.com.br/#/questions/{question_id}/",
        description="Link of a question in the questions report.",
    )
    min_cancel_notice_hours: float = Field(
        default=24.0, description="Minimum notice for a student cancellation without losing credits."
    )
    service_hours: dict[int, tuple[str, str]] = Field(
        default_factory=lambda: {weekday: ("08:00", "22:00") for weekday in range(5)},
        description='Groups usage: local service hours as JSON {weekday (0=Monday): ["HH:MM", "HH:MM"]}; '
        "adjusted response time counts only these minutes. Default Monday-Friday 08:00-22:00.",
    )
    schedule_hour: int = Field(
        default=3, description="Local hour (institution timezone) of the monthly schedule on day 1."
    )
    monthly_sensor: bool = Field(
        default=True,
        description="Start the monthly_reports sensor on a fresh Dagster instance. false leaves it stopped until "
        "an operator starts it in the UI (a staging stack, or a test stack that must not rebuild last month "
        "behind a test's back); the UI's start/stop, once used, wins over this default.",
    )
    delivery_interval_seconds: int = Field(
        default=10,
        ge=5,
        description="How often the delivery sensor releases finished runs' notifications and sends due ones: "
        "the most a requester waits after the run ends (5 is the Dagster sensor daemon's own loop).",
    )
    transient_retry_delay_seconds: float = Field(
        default=10.0,
        gt=0,
        description="First wait before a report step retries a transient warehouse/storage error; doubles per "
        "attempt (3 retries, ±jitter), so an outage of about 7x this is ridden out before the run fails.",
    )
    run_monitoring_seconds: int = Field(
        default=30,
        ge=1,
        description="How often Dagster's run monitoring checks runs on a single-host instance: a run whose worker "
        "process died is marked failed (its requesters are told) within about this long.",
    )
    first_month: str = Field(
        default=DEFAULT_FIRST_MONTH,
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="First monthly partition (retention), YYYY-MM: partitions, the API's exact-month cache and the "
        "monthly sensor start here; bounds the months the UI lists and a backfill can target.",
    )
    max_concurrent_runs: int = Field(default=4, description="Global limit of concurrent report runs.")
    max_runs_per_institution: int = Field(default=1, description="Concurrent runs per institution.")
    backfill_batch_size: int = Field(
        default=250,
        ge=1,
        description="Max partitions per backfill run (per asset: a run builds every monthly report for up to this many "
        "institutions). 250 rather than 50 since runs batch their work: Dagster's per-run cost is paid 5x less often "
        '(docs/benchmarks.md, "Third step"); memory stays bounded by `LXP_BATCH_MEMORY_MB` chunks.',
    )
    batch_memory_mb: int = Field(
        default=512,
        ge=1,
        description="A multi-partition run extracts a report's inputs once for a chunk of institutions with the same "
        "period bounds (`orchestration.batch`); chunks are cut so their estimated inputs stay under this many MB "
        "(one institution always fits, as in a one-partition run).",
    )
    run_executor: Literal["in_process", "multiprocess"] = Field(
        default="in_process",
        description="How a run executes its steps: in the run worker (saves a Python process start per step; "
        "steps wait for the `reports` pool anyway) or one subprocess per step.",
    )
    cache_ttl_seconds: int = Field(default=24 * 3600, description="Cache TTL of a finished report.")
    open_month_cache_ttl_seconds: int = Field(
        default=15 * 60, description="Cache TTL for the still-open current month."
    )
    rate_limit: str = Field(default="60/minute", description="Per-institution limit on report endpoints.")
    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest request body the API reads; larger bodies get 413."
    )
    rate_limit_storage: str = Field(default="memory://", description="memory:// or redis://host:port.")
    link_ttl_seconds: int = Field(default=7 * 24 * 3600, description="Download links expire after this.")
    link_secret: str = Field(default="dev-link-secret-change-me", description="HMAC key of local download links.")
    ledger_url: str = Field(
        default="",
        # LXP_OUTBOX_URL: the name before the ledger held more than the notification outbox (still read).
        validation_alias=AliasChoices("LXP_LEDGER_URL", "LXP_OUTBOX_URL", "ledger_url"),
        description="SQLAlchemy URL of the request ledger (requests, recipients, deliveries, in-flight claims, "
        "known files); empty = sqlite under $LXP_HOME. LXP_OUTBOX_URL, its former name, is still read as an alias.",
    )
    notify_url: str = Field(default="", description="Platform notification webhook; empty disables the channel.")
    notify_secret: str = Field(default="dev-notify-secret", description="HMAC-SHA256 key for X-Signature.")
    notify_timeout_seconds: float = Field(default=5.0, description="Webhook timeout.")
    smtp_url: str = Field(
        default="", description="smtp://host:port or smtp+starttls://user:pw@host:port; empty disables email."
    )
    smtp_from: str = Field(default="relatorios@lxp.local", description="Sender address of report emails.")
    outbox_max_attempts: int = Field(default=8, description="Delivery attempts before a notification is dead.")
    outbox_backoff_seconds: float = Field(default=5.0, description="First retry delay; doubles per attempt.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text for local development; json (one object per line, with request_id, run_id, "
        "institution) for log collectors.",
    )
    metrics_token: str = Field(
        default="", description="Bearer token required on /metrics; empty = open (keep /metrics off the ingress)."
    )

    def report_options(self) -> dict[str, Any]:
        """What report builders take as configuration (``ReportRequest.options``):
        one source for the Dagster resources and the API's synchronous reports."""
        return {
            "student_url_template": self.student_url_template,
            "admin_url_template": self.admin_url_template,
            "question_url_template": self.question_url_template,
            "min_cancel_notice_hours": self.min_cancel_notice_hours,
            "service_hours": {weekday: list(hours) for weekday, hours in self.service_hours.items()},
        }

    def secret_problems(self) -> list[str]:
        """Every required secret that is unset, still a published development default, or shorter than
        :data:`MIN_SECRET_BYTES` (one line each, naming the variable). Required: ``LXP_JWT_SECRET`` when
        ``LXP_JWT_ALGORITHMS`` allows HS256 (anyone holding it mints tokens for any institution);
        ``LXP_LINK_SECRET`` always (it signs local download links; unused with S3 storage, whose links are
        presigned, but required so a switch to local storage never serves links signed with a published
        key); ``LXP_NOTIFY_SECRET`` when the webhook channel is on (``LXP_NOTIFY_URL``)."""
        required = ["link_secret"]
        if "HS256" in [a.strip().upper() for a in self.jwt_algorithms.split(",")]:
            required.insert(0, "jwt_secret")
        if self.notify_url:
            required.append("notify_secret")
        problems = []
        for name in required:
            value: str = getattr(self, name)
            variable = f"LXP_{name.upper()}"
            if not value:
                problems.append(f"{variable} is unset")
            elif value == type(self).model_fields[name].default:
                problems.append(f"{variable} is the built-in development default (published in the source)")
            elif len(value.encode()) < MIN_SECRET_BYTES:
                problems.append(f"{variable} is {len(value.encode())} bytes; at least {MIN_SECRET_BYTES} are required")
        return problems

    def production_problems(self) -> list[str]:
        """Why this process must not start (empty outside ``LXP_ENV=production`` and when all is well)."""
        return self.secret_problems() if self.env == "production" else []

    @property
    def warehouse(self) -> str:
        return self.warehouse_url or f"duckdb:///{(self.home / 'warehouse.duckdb').resolve()}"

    @property
    def first_partition_month(self) -> date:
        """``first_month`` as a date: the first monthly partition (retention, ``LXP_FIRST_MONTH``).

        Every monthly partition from here to the current month exists, so this bounds what the
        UI, the partition-status queries, the API's exact-month detection and the monthly sensor
        walk (the rule itself: ``assets.periods.is_partition_month``)."""
        return parse_month(self.first_month)

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or (self.home / "dagster")).resolve()

    @property
    def storage_location(self) -> str:
        return self.storage or str((self.home / "reports").resolve())

    @property
    def ledger(self) -> str:
        """The ledger's URL; the default file keeps its historical name (``outbox.sqlite``)."""
        return self.ledger_url or f"sqlite:///{(self.home / 'outbox.sqlite').resolve()}"


def exit_if_unsafe(settings: Settings, process: str) -> None:
    """The refusal every production entry point shares: print what is wrong (one line per problem, no
    traceback) and exit 2, as ``lxp-reports up --profile production`` does for per-process state."""
    if problems := settings.production_problems():
        lines = "\n  ".join(
            [*problems, "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"]
        )
        print(f"{process}: refusing to start with LXP_ENV=production:\n  {lines}", file=sys.stderr, flush=True)
        raise SystemExit(2)
