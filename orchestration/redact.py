"""Keep working credentials out of logs.

A download link is its own credential (whoever has it downloads the file, for
up to 7 days), and so is an S3 presigned URL. Uvicorn's access log wrote every
``/downloads/...&sig=...`` request whole; an error message could quote a link a
webhook receiver echoed back. Everything that writes such text to a log goes
through :func:`redact_credentials`; :func:`install_log_redaction` puts the
filter on the loggers of the API process (uvicorn's access and error logs and
our own).
"""

from __future__ import annotations

import logging
import re

REDACTED = "REDACTED"

#: Query parameters whose value is (part of) a credential: our link signature and
#: the SigV4 presign parameters. Matched case-insensitively after ``?``, ``&`` or ``;``.
CREDENTIAL_PARAMS = ("sig", "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Signature")

_PATTERN = re.compile(
    r"(?i)([?&;](?:" + "|".join(re.escape(p) for p in CREDENTIAL_PARAMS) + r")=)[^&\s\"'#;]*",
)

#: Loggers of the API process that can see request URLs or error text.
API_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "api", "orchestration")


def redact_credentials(text: str) -> str:
    """``text`` with the value of every credential query parameter replaced by ``REDACTED``."""
    return _PATTERN.sub(rf"\g<1>{REDACTED}", text)


class RedactCredentialsFilter(logging.Filter):
    """Rewrites a record's message and string arguments before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_credentials(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_credentials(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_credentials(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install_log_redaction(names: tuple[str, ...] = API_LOGGERS) -> None:
    """Add the filter to each named logger once (idempotent: the app may be built more than once)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentialsFilter) for f in logger.filters):
            logger.addFilter(RedactCredentialsFilter())
