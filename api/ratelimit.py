"""Per-institution rate limit on the report endpoints (60/minute by default).

It sits in front of routing, as the customer's API gateway does, so *every*
request to a report path counts — valid or not, authenticated or not, even a
malformed body. Counting key:

* a request with a verifiable token counts against ``inst:<institutionId>``;
* a request without one (missing, garbled, expired, forged token) has no
  institution we can trust, so it counts against ``anon:<client ip>``. Keying
  it on the token's unverified ``institutionId`` would let anybody exhaust a
  victim institution's budget with forged tokens.

Job status polling (``/institution/reports/jobs...``), the library listing,
downloads and health are outside the report budget.

Storage: in memory (one process) by default; ``redis://host:port`` shares the
counters between API replicas. A moving window is used, so a client cannot
burst 2x the limit across a window edge. If Redis is unreachable the limiter
fails open: losing rate limiting briefly beats refusing every report. Each such
request counts in ``lxp_api_rate_limit_fail_open_total`` (``/metrics``); the
WARNING is logged at most once per :data:`FAIL_OPEN_LOG_SECONDS` with the number
of requests let through since the previous one (not one line per request), and
an INFO line says when the storage answers again.

What a client reads (the OpenAPI description and the limited routes' descriptions,
:data:`COUNTING`) says the same as this docstring; tests/api/test_ratelimit.py checks it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import anyio.to_thread
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from api.dependencies import resolve_principal
from api.errors import ApiError, error_response
from api.metrics import RATE_LIMIT_FAIL_OPEN
from orchestration.settings import Settings

log = logging.getLogger("api.ratelimit")

LIMITED_PREFIXES = ("/reports/", "/institution/reports/")
EXEMPT_PREFIXES = ("/institution/reports/jobs",)
FAIL_OPEN_LOG_SECONDS = 60.0

#: What counts toward the limit, in the client's words (OpenAPI: the API description and every limited route).
COUNTING = (
    "Every request to a report endpoint counts toward the per-institution rate limit, "
    "whether it succeeds or not: invalid parameters (400), a malformed body and failed "
    "authentication all count (without a valid token the request counts against the caller's IP "
    "address, not an institution). Polling `/institution/reports/jobs` does not count, nor do the "
    "library, downloads and health endpoints. Over the limit: 429 `resource_exhausted` with `Retry-After`."
)


def is_limited(path: str) -> bool:
    return path.startswith(LIMITED_PREFIXES) and not path.startswith(EXEMPT_PREFIXES)


class RateLimiter:
    """``limits`` moving window over memory or Redis.

    The synchronous storage is used (in a worker thread for Redis) rather than
    ``limits.aio``: an async Redis pool is bound to one event loop, and a
    limiter that silently fails open when the loop changes is worse than a
    thread hop.
    """

    def __init__(self, limit: str, storage_uri: str) -> None:
        self.item = parse(limit)
        self.storage = (
            storage_from_string(storage_uri, socket_timeout=1.0)
            if "redis" in storage_uri.split("://")[0]
            else storage_from_string(storage_uri)
        )
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.in_memory = storage_uri.startswith("memory://")

    def hit_sync(self, key: str) -> tuple[bool, int]:
        """Count one request; returns (allowed, retry_after_seconds)."""
        if self.limiter.hit(self.item, "reports", key):
            return True, 0
        stats = self.limiter.get_window_stats(self.item, "reports", key)
        return False, max(1, math.ceil(stats.reset_time - time.time()))

    async def hit(self, key: str) -> tuple[bool, int]:
        if self.in_memory:
            return self.hit_sync(key)
        return await anyio.to_thread.run_sync(self.hit_sync, key)

    def reset(self) -> None:
        self.storage.reset()


class FailOpenLog:
    """Counts fail-opens and logs a WARNING for the first, then at most one per ``interval``
    seconds carrying the number of fail-opens since the previous line."""

    def __init__(self, interval: float = FAIL_OPEN_LOG_SECONDS, clock: Any = time.monotonic) -> None:
        self.interval, self.clock = interval, clock
        self.lock = threading.Lock()
        self.last_logged: float | None = None
        self.unlogged = 0  # fail-opens not yet reported in a WARNING line
        self.since_recovery = 0  # fail-opens since the storage last answered

    def failed(self, exc: BaseException) -> None:
        RATE_LIMIT_FAIL_OPEN.inc()
        with self.lock:
            self.unlogged += 1
            self.since_recovery += 1
            now = self.clock()
            if self.last_logged is not None and now - self.last_logged < self.interval:
                return
            count, self.unlogged, self.last_logged = self.unlogged, 0, now
        log.warning(
            "rate limit storage unavailable, failing open: %s: %s (%d request(s) let through unlimited since "
            "the last warning; next warning in %.0f s at most; total in lxp_api_rate_limit_fail_open_total)",
            type(exc).__name__,
            exc,
            count,
            self.interval,
        )

    def answered(self) -> None:
        if not self.since_recovery:  # the usual case: no lock taken
            return
        with self.lock:
            count, self.since_recovery, self.unlogged, self.last_logged = self.since_recovery, 0, 0, None
        if count:
            log.info("rate limit storage answers again; %d request(s) failed open while it did not", count)


def rate_limit_key(
    headers: dict[bytes, bytes], client: tuple[str, int] | None, settings: Settings, state: dict[str, Any] | None = None
) -> str:
    """``inst:<id>`` for a verified caller, else ``anon:<ip>``. The verification outcome is kept
    in ``state`` (the scope's ``request.state``) so the auth dependency does not decode again."""
    raw = headers.get(b"authorization")
    try:
        principal = resolve_principal(
            {} if state is None else state, None if raw is None else raw.decode("latin-1"), settings
        )
        return f"inst:{principal.institution_id}"
    except ApiError:
        return f"anon:{client[0] if client else 'unknown'}"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, settings: Settings) -> None:
        self.app = app
        self.limiter = limiter
        self.settings = settings
        self.fail_open = FailOpenLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_limited(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        key = rate_limit_key(dict(scope.get("headers") or []), scope.get("client"), self.settings, state)
        try:
            allowed, retry_after = await self.limiter.hit(key)
            self.fail_open.answered()
        except Exception as exc:
            self.fail_open.failed(exc)
            allowed, retry_after = True, 0
        if allowed:
            await self.app(scope, receive, send)
            return
        response = error_response(
            "resource_exhausted",
            f"Rate limit exceeded: {self.settings.rate_limit} per institution on report endpoints. "
            f"Retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)
