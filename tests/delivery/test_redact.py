"""Credentials in URLs never reach a log whole (issue 10 #5): our link signature and S3 presign parameters."""

from __future__ import annotations

import logging

import pytest

from orchestration.redact import REDACTED, RedactCredentialsFilter, install_log_redaction, redact_credentials


@pytest.mark.parametrize(
    "text, kept, secret",
    [
        ("GET /downloads/a/b.xlsx?exp=1&fn=b.xlsx&sig=abcDEF_-123 HTTP/1.1", "exp=1&fn=b.xlsx&sig=", "abcDEF_-123"),
        ("https://h/k?fn=x&rcp=7&sig=S3CRET#frag", "rcp=7&sig=", "S3CRET"),
        (
            "https://b.s3/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=deadbeef&X-Amz-Expires=9",
            "X-Amz-Algorithm=AWS4&X-Amz-Credential=",
            "deadbeef",
        ),
        ('webhook answered HTTP 500: {"url": "http://x/downloads/k?exp=1&sig=zzz"}', "&sig=", "zzz"),
    ],
)
def test_credential_parameters_are_replaced(text: str, kept: str, secret: str) -> None:
    out = redact_credentials(text)
    assert secret not in out and REDACTED in out and kept in out


def test_text_without_credentials_is_unchanged() -> None:
    text = "GET /institution/reports/jobs?page=1&limit=20&signal=1 HTTP/1.1"
    assert redact_credentials(text) == text


def test_filter_rewrites_message_and_args_of_the_access_logger(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction(("test.access",))
    install_log_redaction(("test.access",))  # idempotent
    logger = logging.getLogger("test.access")
    assert sum(isinstance(f, RedactCredentialsFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="test.access"):
        logger.info('%s - "%s %s" %d', "127.0.0.1", "GET", "/downloads/k?exp=1&sig=SECRETSIG", 200)
        logger.info("direct /downloads/k?sig=OTHER")
    assert "SECRETSIG" not in caplog.text and "OTHER" not in caplog.text and caplog.text.count(REDACTED) == 2
