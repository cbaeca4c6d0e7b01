"""A real HTTP endpoint standing in for the platform notification API.

A threaded ``http.server`` on loopback that records every request (headers and
exact body bytes) and behaves like an idempotent receiver: the first successful
request per ``Idempotency-Key`` is *processed*, later ones are answered 200 but
only counted as duplicates. It can be scripted to fail the next N calls with a
status (500, 400, 429 …) or to hang past the client's timeout.
Import the fixture into a conftest: ``from tests.services.http_receiver import http_receiver``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class _Script:
    status: int
    times: int | None  # None = forever
    hang_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class HttpReceiver:
    def __init__(self, port: int = 0) -> None:
        """``port``: 0 for a free one; a fixed port lets a test bring the receiver back up where it was."""
        self.requests: list[RecordedRequest] = []
        self.processed: dict[str, RecordedRequest] = {}
        self.duplicates: list[RecordedRequest] = []
        self._scripts: list[_Script] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                script = receiver._next_script()
                if script is not None and script.hang_seconds:
                    receiver._stop.wait(script.hang_seconds)
                status = script.status if script is not None else 200
                receiver._record(self.command, self.path, dict(self.headers.items()), body, status)
                payload = b'{"ok":true}' if 200 <= status < 300 else b'{"error":"scripted"}'
                try:
                    self.send_response(status)
                    for name, value in (script.headers if script else {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notifications"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # -- scripting -----------------------------------------------------------

    def fail_next(self, times: int, status: int = 500, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._scripts.append(_Script(status=status, times=times, headers=dict(headers or {})))

    def always(self, status: int) -> None:
        with self._lock:
            self._scripts.append(_Script(status=status, times=None))

    def hang_next(self, times: int, seconds: float) -> None:
        """Wait ``seconds`` before answering 200 (the client should time out first)."""
        with self._lock:
            self._scripts.append(_Script(status=200, times=times, hang_seconds=seconds))

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self.processed.clear()
            self.duplicates.clear()

    def _next_script(self) -> _Script | None:
        with self._lock:
            while self._scripts:
                script = self._scripts[0]
                if script.times is None:
                    return script
                if script.times > 0:
                    script.times -= 1
                    return script
                self._scripts.pop(0)
            return None

    def _record(self, method: str, path: str, headers: dict[str, str], body: bytes, status: int) -> None:
        request = RecordedRequest(method, path, {k.lower(): v for k, v in headers.items()}, body, status)
        with self._lock:
            self.requests.append(request)
            if 200 <= status < 300:
                key = request.idempotency_key or ""
                if key in self.processed:
                    self.duplicates.append(request)
                else:
                    self.processed[key] = request

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> HttpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
