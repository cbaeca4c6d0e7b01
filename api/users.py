"""Who a token's user is in the warehouse: linked to its institution or not, and
their email address (the email channel of the notification outbox needs it).

Looked up on every report request and library page, so answers are cached per
process for a short while, like institutions in :class:`api.services.Services`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from cachetools import TTLCache

from orchestration.warehouse.client import Warehouse

log = logging.getLogger("api.users")

USER_SQL = "SELECT email FROM users WHERE id = :user_id AND institution_id = :institution_id AND deleted_at IS NULL"


@dataclass(frozen=True)
class UserInfo:
    """An undeleted user of the institution (``email`` may be empty in the warehouse)."""

    email: str | None


class UserDirectory:
    """Cached ``(user, institution) -> UserInfo | None`` (None: not an undeleted user of it)."""

    MAX_ENTRIES = 50_000  # bound memory under many distinct users

    def __init__(self, warehouse: Warehouse, ttl_seconds: float = 60.0) -> None:
        self.warehouse = warehouse
        self._lock = threading.Lock()
        self.ttl_seconds = ttl_seconds

    @property
    def ttl_seconds(self) -> float:
        return self._ttl_seconds

    @ttl_seconds.setter
    def ttl_seconds(self, value: float) -> None:
        """A new lifetime starts a new cache (``cachetools.TTLCache`` fixes its TTL)."""
        with self._lock:
            self._ttl_seconds = value
            self._cache: TTLCache[tuple[int, int], UserInfo | None] = TTLCache(self.MAX_ENTRIES, value)

    def lookup(self, user_id: int, institution_id: int) -> UserInfo | None:
        """Raises the warehouse's exception when it cannot be queried (callers decide: 503 or carry on)."""
        key = (int(user_id), int(institution_id))
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        found = self.warehouse.query(USER_SQL, {"user_id": key[0], "institution_id": key[1]})
        info = None if found.height == 0 else UserInfo(email=(found["email"][0] or None))
        with self._lock:
            self._cache[key] = info
        return info

    def email(self, user_id: int, institution_id: int) -> str | None:
        """The address to notify, or None (unknown user, no address, or warehouse down: the webhook still goes)."""
        try:
            info = self.lookup(user_id, institution_id)
        except Exception as exc:  # a notification without email beats a failed request
            log.warning("email lookup for user %s failed: %s: %s", user_id, type(exc).__name__, exc)
            return None
        return None if info is None else info.email
