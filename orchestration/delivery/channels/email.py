"""E-mail channel: a pt-BR message with the download link, over SMTP.

``smtp_url`` forms: ``smtp://host:port`` (plain), ``smtp+starttls://user:pw@host:port``
(STARTTLS, then login) and ``smtps://user:pw@host:port`` (implicit TLS). The
``Message-ID`` is derived from the outbox idempotency key, so a re-send after a
crash is the same message to mail clients that de-duplicate on it.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestration.delivery.channels import ChannelContext, Link, PermanentError, RetryableError, register
from orchestration.ledger.deliveries import Notification, Recipient

_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        # Never quote the URL: it may carry the password (and this message can reach the Dagster UI).
        raise ValueError(
            f"unsupported smtp url (scheme {parts.scheme!r}, host {parts.hostname!r}); "
            "use smtp://, smtp+starttls:// or smtps://"
        )
    return SmtpTarget(
        scheme=parts.scheme,
        host=parts.hostname,
        port=parts.port or _DEFAULT_PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def local_time(moment: datetime, timezone: str | None) -> tuple[str, str]:
    """``DD/MM/YYYY HH:mm`` in the institution's zone (UTC when unknown) and the zone's label."""
    zone_name = timezone or "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone_name, zone = "UTC", ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M"), zone_name


def compose(notification: Notification, link: Link | None, sender: str, title: str) -> EmailMessage:
    """Build the pt-BR message (plain text plus an HTML alternative)."""
    if not notification.email:
        raise ValueError("notification has no e-mail address")
    period = notification.period  # already the text to show (RequestedReport.period_text)
    what = f"“{title}”" + (f" ({period})" if period else "")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notification.email
    domain = parseaddr(sender)[1].rpartition("@")[2] or "lxp.local"
    message["Message-ID"] = f"<{notification.idempotency_key}@{domain}>"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Auto-Submitted"] = "auto-generated"

    if notification.status_of_job == "succeeded" and link is not None:
        message["Subject"] = f"Seu relatório {title} está pronto"
        when, zone = local_time(link.expires_at, notification.timezone)
        lines = [
            "Olá,",
            "",
            f"Seu relatório {what} está pronto.",
        ]
        if notification.cached:
            lines.append("Ele já havia sido gerado recentemente; este é um novo link para o mesmo arquivo.")
        lines += [
            "",
            f"Baixe o arquivo {notification.filename or 'do relatório'} pelo link abaixo:",
            link.url,
            "",
            f"O link expira em {when} (horário de {zone}).",
        ]
        html_body = (
            f"<p>Olá,</p><p>Seu relatório {html.escape(what)} está pronto.</p>"
            f'<p><a href="{html.escape(link.url, quote=True)}">'
            f"Baixar {html.escape(notification.filename or 'arquivo')}</a></p>"
            f"<p>O link expira em {html.escape(when)} (horário de {html.escape(zone)}).</p>"
        )
    else:
        message["Subject"] = f"Seu relatório {title} não pôde ser gerado"
        lines = [
            "Olá,",
            "",
            f"Infelizmente seu relatório {what} não pôde ser gerado.",
            "Tente solicitá-lo novamente em alguns minutos. Se o problema persistir, "
            f"contate o suporte informando o código {notification.job_id}.",
        ]
        html_body = (
            f"<p>Olá,</p><p>Infelizmente seu relatório {html.escape(what)} não pôde ser gerado.</p>"
            "<p>Tente solicitá-lo novamente em alguns minutos. Se o problema persistir, contate o suporte "
            f"informando o código <code>{html.escape(notification.job_id)}</code>.</p>"
        )
    lines += ["", "Esta é uma mensagem automática; não é necessário respondê-la."]
    message.set_content("\n".join(lines) + "\n")
    message.add_alternative(f"<html><body>{html_body}</body></html>", subtype="html")
    return message


class EmailChannel:
    name = "email"

    def __init__(
        self,
        smtp_url: str,
        sender: str,
        *,
        timeout: float = 10.0,
        titles: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.target = parse_smtp_url(smtp_url)
        self.sender = sender
        self.timeout = timeout
        self.titles = dict(titles or {})
        self.ssl_context = ssl_context

    def applies_to(self, recipient: Recipient) -> bool:
        return bool(recipient.email)

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        context = self.ssl_context or ssl.create_default_context()
        if t.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
        try:
            if t.scheme == "smtp+starttls":
                client.starttls(context=context)
            if t.username:
                client.login(t.username, t.password or "")
        except BaseException:
            client.close()  # a failed handshake must not leak the socket
            raise
        return client

    def send(self, notification: Notification, link: Link | None) -> None:
        title = self.titles.get(notification.report, notification.report)
        message = compose(notification, link, self.sender, title)
        try:
            client = self._connect()
            try:
                client.send_message(message)
            finally:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = f"smtp refused recipient: {exc.recipients!r}"
            if codes and all(code >= 500 for code in codes):
                raise PermanentError(detail) from exc
            raise RetryableError(detail) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            detail = f"smtp {type(exc).__name__} {exc.smtp_code}: {exc.smtp_error!r}"
            if exc.smtp_code >= 500:
                raise PermanentError(detail) from exc
            raise RetryableError(detail) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused/reset, timeouts, auth or TLS trouble: a
            # configuration or availability problem, not this message's fault.
            raise RetryableError(f"smtp error: {exc!r}") from exc

    def close(self) -> None:
        """Nothing held between sends: one SMTP session per message keeps failures isolated."""


#: How long one SMTP conversation may take.
SMTP_TIMEOUT_SECONDS = 10.0


@register("email")
def from_settings(context: ChannelContext) -> EmailChannel | None:
    """On when ``LXP_SMTP_URL`` is set (sender ``LXP_SMTP_FROM``)."""
    s = context.settings
    if not s.smtp_url:
        return None
    return EmailChannel(s.smtp_url, s.smtp_from, timeout=SMTP_TIMEOUT_SECONDS, titles=context.titles)
