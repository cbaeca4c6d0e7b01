"""A real SMTP server for tests: aiosmtpd on a free loopback port, collecting messages.

It can be told to answer the next RCPT TO commands with an error (``451``
transient, ``550`` permanent) to exercise the e-mail channel's error handling.
Import the fixture into a conftest: ``from tests.services.smtp import smtp_server``.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

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


@pytest.fixture(scope="session")
def _smtp_controller() -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{port}"
    try:
        yield recorder
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(_smtp_controller: SmtpRecorder) -> Iterator[SmtpRecorder]:
    """The session's SMTP server, emptied for this test (``.url``, ``.messages``, ``.refuse_next``)."""
    _smtp_controller.clear()
    yield _smtp_controller
    _smtp_controller.clear()
