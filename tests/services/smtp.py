"""A real SMTP server for tests: aiosmtpd on a free loopback port, collecting messages.

It can be told to answer the next RCPT TO commands with an error (``451``
transient, ``550`` permanent) to exercise the e-mail channel's error handling.
A second server, ``smtp_tls_server``, requires STARTTLS (self-signed loopback
certificate) and AUTH, like a production relay.
Import the fixtures into a conftest: ``from tests.services.smtp import smtp_server, smtp_tls_server``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.services.s3 import free_port


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: records every accepted message, optionally refuses recipients."""

    messages: list[ReceivedMail] = field(default_factory=list)
    _refusals: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def refuse_next(self, reply: str, times: int = 1) -> None:
        """Answer the next ``times`` RCPT commands with ``reply`` (e.g. ``"550 5.1.1 no such user"``)."""
        with self._lock:
            self._refusals.extend([reply] * times)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self._refusals.clear()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        with self._lock:
            if self._refusals:
                return self._refusals.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@contextmanager
def running_smtp(login: tuple[str, str] | None = None) -> Iterator[SmtpRecorder]:
    """A plain SMTP server on a free loopback port for as long as the block runs.

    With ``login`` (user, password) it requires AUTH (over plain SMTP: loopback only)
    and ``url`` carries the credentials, as a relay's URL would."""
    recorder = SmtpRecorder()
    port = free_port()
    auth: dict[str, Any] = {}
    userinfo = ""
    if login is not None:
        user, password = login

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
                user.encode(),
                password.encode(),
            )
            return AuthResult(success=ok, handled=False)

        auth = {"auth_required": True, "auth_require_tls": False, "authenticator": authenticator}
        userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **auth)
    controller.start()
    recorder.url = f"smtp://{userinfo}127.0.0.1:{port}"
    try:
        yield recorder
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def _smtp_controller() -> Iterator[SmtpRecorder]:
    with running_smtp() as recorder:
        yield recorder


@pytest.fixture
def smtp_server(_smtp_controller: SmtpRecorder) -> Iterator[SmtpRecorder]:
    """The session's SMTP server, emptied for this test (``.url``, ``.messages``, ``.refuse_next``)."""
    _smtp_controller.clear()
    yield _smtp_controller
    _smtp_controller.clear()


USERNAME, PASSWORD = "reports", "p@ss:word"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (cryptography comes with pyjwt[crypto])."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USERNAME
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class TlsSmtp:
    recorder: SmtpRecorder
    url: str
    client_context: ssl.SSLContext


@pytest.fixture(scope="session")
def smtp_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSmtp]:
    """STARTTLS + AUTH server; ``url`` carries the credentials, ``client_context`` trusts its certificate."""
    cert, key = _self_signed(tmp_path_factory.mktemp("smtp-tls"))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticator,
    )
    controller.start()
    client_context = ssl.create_default_context(cafile=str(cert))
    try:
        yield TlsSmtp(recorder, f"smtp+starttls://{USERNAME}:p%40ss%3Aword@127.0.0.1:{port}", client_context)
    finally:
        controller.stop()
