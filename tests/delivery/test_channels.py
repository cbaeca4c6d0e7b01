"""Webhook and e-mail channels against real local servers."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from orchestration.delivery.channels import Link, PermanentError, RetryableError
from orchestration.delivery.channels.email import EmailChannel, compose, local_time, parse_smtp_url
from orchestration.delivery.channels.webhook import WebhookChannel, signature, verify_signature
from orchestration.ledger import Ledger, Notification
from tests.delivery.conftest import T0, enqueue_row
from tests.ledger_rows import routed
from tests.services.http_receiver import HttpReceiver
from tests.services.s3 import free_port
from tests.services.smtp import SmtpRecorder, TlsSmtp

SECRET = "notify-secret-for-tests"
LINK = Link(
    url="https://api.test/downloads/k?exp=1&fn=f.xlsx&sig=abc", expires_at=datetime(2026, 7, 8, 6, 0, tzinfo=UTC)
)


def claimed(outbox: Ledger, **overrides: object) -> Notification:
    assert enqueue_row(outbox, **overrides)
    (n,) = routed(outbox, T0).claim_due(T0, 1, 60)
    return n


# -- webhook ------------------------------------------------------------------


def test_webhook_posts_signed_json(sqlite_outbox: Ledger, http_receiver: HttpReceiver) -> None:
    n = claimed(sqlite_outbox, cached=True)
    WebhookChannel(http_receiver.url, SECRET, 2.0).send(n, LINK)
    (request,) = http_receiver.requests
    assert request.method == "POST" and request.path == "/notifications"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == n.idempotency_key
    assert request.headers["x-signature"] == signature(request.body, SECRET)
    assert verify_signature(request.body, request.headers["x-signature"], SECRET)
    assert not verify_signature(request.body + b" ", request.headers["x-signature"], SECRET)
    assert not verify_signature(request.body, request.headers["x-signature"], "wrong")
    assert request.json() == {
        "userId": 42,
        "institutionId": 1,
        "subdomain": "acme",
        "typeReport": "storyboard-usage",
        "status": "succeeded",
        "url": LINK.url,
        "expiresAt": "2026-07-08T06:00:00Z",
        "jobId": "run-1",
        "cached": True,
    }


def test_webhook_failure_payload_has_no_link(sqlite_outbox: Ledger, http_receiver: HttpReceiver) -> None:
    n = claimed(sqlite_outbox, status_of_job="failed", storage_key=None, filename=None, report="catalog")
    WebhookChannel(http_receiver.url, SECRET).send(n, None)
    body = http_receiver.requests[0].json()
    assert (body["status"], body["url"], body["expiresAt"], body["typeReport"]) == ("failed", None, None, "catalog")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, RetryableError),
        (503, RetryableError),
        (429, RetryableError),
        (400, PermanentError),
        (404, PermanentError),
        (410, PermanentError),
    ],
)
def test_webhook_status_classification(
    sqlite_outbox: Ledger, http_receiver: HttpReceiver, status: int, error: type[Exception]
) -> None:
    n = claimed(sqlite_outbox)
    http_receiver.always(status)
    with pytest.raises(error, match=f"HTTP {status}"):
        WebhookChannel(http_receiver.url, SECRET).send(n, LINK)


def test_webhook_retry_after_is_reported(sqlite_outbox: Ledger, http_receiver: HttpReceiver) -> None:
    n = claimed(sqlite_outbox)
    http_receiver.fail_next(1, 503, headers={"Retry-After": "90"})
    with pytest.raises(RetryableError) as caught:
        WebhookChannel(http_receiver.url, SECRET).send(n, LINK)
    assert caught.value.retry_after == 90


def test_webhook_timeout_and_refused_connection_are_retryable(
    sqlite_outbox: Ledger, http_receiver: HttpReceiver
) -> None:
    n = claimed(sqlite_outbox)
    http_receiver.hang_next(1, seconds=5)
    started = time.monotonic()
    with pytest.raises(RetryableError, match="timeout"):
        WebhookChannel(http_receiver.url, SECRET, timeout=0.5).send(n, LINK)
    assert time.monotonic() - started < 3
    with pytest.raises(RetryableError, match="connection"):
        WebhookChannel(f"http://127.0.0.1:{free_port()}/x", SECRET, timeout=1).send(n, LINK)


# -- e-mail -------------------------------------------------------------------


def test_parse_smtp_url() -> None:
    plain = parse_smtp_url("smtp://127.0.0.1:2525")
    assert (plain.scheme, plain.host, plain.port, plain.username) == ("smtp", "127.0.0.1", 2525, None)
    tls = parse_smtp_url("smtp+starttls://user%40x:p%3Ass@mail.example.com")
    assert (tls.port, tls.username, tls.password) == (587, "user@x", "p:ss")
    assert parse_smtp_url("smtps://mail.example.com").port == 465
    with pytest.raises(ValueError):
        parse_smtp_url("http://mail.example.com")
    for bad in ("smtp+ssl://user:pw-in-url@mail.example.com", "smtp://user:pw-in-url@"):
        with pytest.raises(ValueError) as error:  # the message can reach a sensor tick in the UI
            parse_smtp_url(bad)
        assert "pw-in-url" not in str(error.value)


def test_expiry_is_shown_in_the_institution_timezone() -> None:
    moment = datetime(2026, 7, 8, 2, 30, tzinfo=UTC)
    assert local_time(moment, "America/Sao_Paulo") == ("07/07/2026 23:30", "America/Sao_Paulo")
    assert local_time(moment, None) == ("08/07/2026 02:30", "UTC")
    assert local_time(moment, "Not/AZone") == ("08/07/2026 02:30", "UTC")


def test_email_arrives_in_portuguese_with_the_link(sqlite_outbox: Ledger, smtp_server: SmtpRecorder) -> None:
    n = claimed(sqlite_outbox)
    channel = EmailChannel(
        smtp_server.url, "Relatórios LXP <relatorios@lxp.test>", titles={"storyboard-usage": "Uso de Storyboards"}
    )
    channel.send(n, LINK)
    (mail,) = smtp_server.messages
    assert mail.rcpt_tos == ["ana@acme.test"]
    message = mail.message
    assert message["Subject"] == "Seu relatório Uso de Storyboards está pronto"
    assert message["To"] == "ana@acme.test"
    assert message["Message-ID"].strip() == f"<{n.idempotency_key}@lxp.test>"
    text = message.get_body(("plain",)).get_content()
    assert LINK.url in text
    assert "06/2026" in text
    assert "O link expira em 08/07/2026 03:00 (horário de America/Sao_Paulo)." in text
    assert LINK.url.replace("&", "&amp;") in message.get_body(("html",)).get_content()


def test_failure_email(sqlite_outbox: Ledger, smtp_server: SmtpRecorder) -> None:
    n = claimed(sqlite_outbox, status_of_job="failed", storage_key=None, filename=None, job_id="run-x")
    EmailChannel(smtp_server.url, "relatorios@lxp.test").send(n, None)
    message = smtp_server.messages[0].message
    assert message["Subject"] == "Seu relatório storyboard-usage não pôde ser gerado"
    text = message.get_body(("plain",)).get_content()
    assert "não pôde ser gerado" in text and "run-x" in text and "http" not in text


def test_email_errors_are_classified(sqlite_outbox: Ledger, smtp_server: SmtpRecorder) -> None:
    n = claimed(sqlite_outbox)
    channel = EmailChannel(smtp_server.url, "relatorios@lxp.test")
    smtp_server.refuse_next("550 5.1.1 mailbox unavailable")
    with pytest.raises(PermanentError, match="550"):
        channel.send(n, LINK)
    smtp_server.refuse_next("451 4.3.0 try again later")
    with pytest.raises(RetryableError, match="451"):
        channel.send(n, LINK)
    assert smtp_server.messages == []
    with pytest.raises(RetryableError):
        EmailChannel(f"smtp://127.0.0.1:{free_port()}", "relatorios@lxp.test", timeout=2).send(n, LINK)
    channel.send(n, LINK)
    assert len(smtp_server.messages) == 1


def test_email_channel_skips_rows_without_address(sqlite_outbox: Ledger, smtp_server: SmtpRecorder) -> None:
    n = claimed(sqlite_outbox, email=None)
    assert not EmailChannel(smtp_server.url, "relatorios@lxp.test").applies_to(n)
    with pytest.raises(ValueError):
        compose(n, LINK, "relatorios@lxp.test", "x")


def test_email_over_starttls_with_login(sqlite_outbox: Ledger, smtp_tls_server: TlsSmtp) -> None:
    n = claimed(sqlite_outbox)
    smtp_tls_server.recorder.clear()
    EmailChannel(smtp_tls_server.url, "relatorios@lxp.test", ssl_context=smtp_tls_server.client_context).send(n, LINK)
    (mail,) = smtp_tls_server.recorder.messages
    assert mail.rcpt_tos == ["ana@acme.test"] and LINK.url in mail.message.get_body(("plain",)).get_content()
    # Wrong password and an untrusted certificate are retryable (configuration), nothing is sent.
    bad_password = smtp_tls_server.url.replace("p%40ss", "nope")
    with pytest.raises(RetryableError, match="535|Authentication"):
        EmailChannel(bad_password, "relatorios@lxp.test", ssl_context=smtp_tls_server.client_context).send(n, LINK)
    with pytest.raises(RetryableError, match="CERTIFICATE_VERIFY_FAILED"):
        EmailChannel(smtp_tls_server.url, "relatorios@lxp.test").send(n, LINK)
    assert len(smtp_tls_server.recorder.messages) == 1


def test_an_infinite_retry_after_is_ignored() -> None:
    import httpx

    from orchestration.delivery.channels.webhook import _retry_after

    assert _retry_after(httpx.Response(503, headers={"Retry-After": "inf"})) is None
    assert _retry_after(httpx.Response(503, headers={"Retry-After": "120"})) == 120.0
