"""The API as uvicorn really serves it (one `uvicorn api.app:app` process on a free
loopback port): what reaches its logs and how it reads request bodies.

Issue 10 #5: working download links (``/downloads/...&sig=...``) were written whole
to the access log; a link is the credential. Issue 10 #6: bodies of any size were
read; a chunked body must be cut off at the cap, not read to its end.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from orchestration.delivery import links
from orchestration.redact import REDACTED
from tests.api.conftest import SECRET, auth
from tests.e2e.stack import free_port, wait_until
from tests.reliability.report import summary
from tests.services.api_process import ApiProcess, api_process

LINK_SECRET = "uvicorn-process-link-secret-0123456789"
KEY = "storyboard-usage/institution=1/2026-03/storyboard-usage_1_2026-03.xlsx"
FILENAME = "storyboard-usage_1_2026-03.xlsx"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, warehouse_url: str) -> Iterator[ApiProcess]:
    home = tmp_path_factory.mktemp("uvicorn_api")
    port = free_port()
    settings = {
        "LXP_HOME": str(home),
        "LXP_WAREHOUSE_URL": warehouse_url,
        "LXP_JWT_SECRET": SECRET,
        "LXP_LINK_SECRET": LINK_SECRET,
        "LXP_DAGSTER_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: not needed here
        "LXP_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LXP_MAX_BODY_BYTES": str(MAX_BODY),
    }
    with api_process(settings, home / "uvicorn.log", port) as server:
        yield server


def test_download_links_are_redacted_in_the_access_log(api: ApiProcess) -> None:
    path = Path(api.settings["LXP_HOME"]) / "reports" / KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK report")
    url = links.sign(KEY, FILENAME, int(time.time()) + 600, LINK_SECRET, api.base)
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    assert httpx.get(url, timeout=10).content == b"PK report"
    assert httpx.get(url + "0", timeout=10).status_code == 403  # a refused one is not logged whole either
    wait_until(lambda: api.log_text().count("/downloads/") >= 2, 10, "the access log lines", interval=0.1)
    text = api.log_text()
    lines = [line for line in text.splitlines() if "/downloads/" in line]
    assert len(lines) == 2 and all(f"sig={REDACTED}" in line for line in lines), lines
    assert sig not in text and sig[:16] not in text, "a working signature reached the log"
    assert " 200" in lines[0] and " 403" in lines[1]  # still useful: path, status
    assert links.verify_url(url, LINK_SECRET, datetime.now(UTC)).key == KEY  # the link itself still works
    summary("access-log", download_requests=2, credentials_in_log=0)


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response: head and body may arrive in separate segments (one recv is not enough)."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            return data
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return head + b"\r\n\r\n" + body


def test_declared_oversized_body_is_refused_before_it_is_sent(api: ApiProcess) -> None:
    """Content-Length over the cap: 413 at once, without waiting for (or reading) the body."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        head = (
            f"POST /reports/questions HTTP/1.1\r\nHost: 127.0.0.1\r\n{_auth_line()}"
            f"Content-Type: application/json\r\nContent-Length: {10 * 1024 * 1024}\r\n\r\n"
        )
        sock.sendall(head.encode())
        response = _read_response(sock).decode(errors="replace")
    assert response.startswith("HTTP/1.1 413"), response[:200]
    assert '"code":"invalid_argument"' in response and f"at most {MAX_BODY} bytes" in response


def test_chunked_body_is_cut_off_near_the_cap(api: ApiProcess) -> None:
    """No Content-Length: the server reads at most about the cap, answers 413, and never the rest."""
    chunk = b"x" * 16384
    sent = 0
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        head = (
            f"POST /reports/questions HTTP/1.1\r\nHost: 127.0.0.1\r\n{_auth_line()}"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        sock.setblocking(False)
        response = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sent < 50 * 1024 * 1024:
            try:
                response += sock.recv(65536)
                if response:
                    break
            except BlockingIOError:
                pass
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
        sock.setblocking(True)
        sock.settimeout(5)
        try:
            while b"\r\n\r\n" not in response:
                response += sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            pass
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    # Socket buffers hold a few MB at most; the 50 MB the client was ready to send were never all taken.
    assert sent < 20 * 1024 * 1024, sent
    summary("body-cap", chunked_bytes_taken_before_413=sent, cap=MAX_BODY, declared_10MB="413 before sending")


def _auth_line() -> str:
    return f"Authorization: {auth()['Authorization']}\r\n"
