"""Request size limits, enforced before any route reads the request.

Why: an outside probe had a 10 MB JSON body (one huge unknown field) parsed and
answered 200 and a correctly signed 100 KB JWT accepted everywhere: input of
any size was read into memory and handed to the JSON and JWT parsers. This pure
ASGI middleware (no ``BaseHTTPMiddleware``: it must not buffer the body itself)
refuses oversized input with the Encore error body:

* request headers over :data:`MAX_HEADER_BYTES` in total -> 431;
* an ``Authorization`` header over :data:`MAX_TOKEN_BYTES` -> 400 ``invalid_argument``
  (no token the platform issues comes near it);
* a ``Content-Length`` over ``LXP_MAX_BODY_BYTES`` -> 413 before a byte of the body
  is read; a body without one (chunked) is counted while the app reads it and cut
  off with 413 as soon as it passes the limit, so unbounded input is never read.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

MAX_TOKEN_BYTES = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit.

    A FastAPI ``HTTPException`` so the body parser re-raises it unchanged and the
    Encore handler answers 413; the middleware also answers it if it escapes.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=body_too_large_message(limit))


def body_too_large_message(limit: int) -> str:
    return f"Request body too large. Must be at most {limit} bytes"


class RequestLimitsMiddleware:
    """Caps header, token and body sizes of every HTTP request (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_token_bytes: int = MAX_TOKEN_BYTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_token_bytes = max_token_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        content_length: bytes | None = None
        for name, value in headers:
            if name == b"authorization" and len(value) > self.max_token_bytes:
                message = f"Authorization header too large. Must be at most {self.max_token_bytes} bytes"
                await error_response("invalid_argument", message)(scope, receive, send)
                return
            if name == b"content-length":
                content_length = value
        if sum(len(k) + len(v) + 4 for k, v in headers) > self.max_header_bytes:
            message = f"Request headers too large. Must be at most {self.max_header_bytes} bytes in total"
            await error_response("invalid_argument", message, 431)(scope, receive, send)
            return
        if content_length is not None:
            text = content_length.strip()
            if not (text.isdigit() and len(text) <= 18):
                await error_response("invalid_argument", "Invalid Content-Length header")(scope, receive, send)
                return
            if int(text) > self.max_body_bytes:
                await error_response("invalid_argument", body_too_large_message(self.max_body_bytes), 413)(
                    scope, receive, send
                )
                return

        received = 0
        limit = self.max_body_bytes

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await error_response("invalid_argument", body_too_large_message(limit), 413)(scope, receive, send)
