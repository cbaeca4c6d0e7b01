"""Signed, expiring download links for files kept in local report storage.

The API serves ``/downloads/<key>?exp=<unix>&fn=<filename>[&rcp=<recipient>]&sig=<mac>``
without a bearer token (the link is opened from an e-mail or a push
notification), so the link itself is the credential: an HMAC-SHA256 with
``link_secret`` over the key, the expiry, the download file name and, when
given, the recipient it was issued to. Changing any of them — or pointing a
link for file A at file B — invalidates the signature. S3 storage does not use
this module: it hands out presigned URLs instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, quote, unquote, urlsplit

DOWNLOAD_PREFIX = "/downloads/"
_VERSION = "v1"


class LinkError(Exception):
    """A download link was refused."""


class LinkInvalid(LinkError):
    """Malformed or tampered link (bad signature, missing parameter)."""


class LinkExpired(LinkError):
    """Correctly signed, but past its expiry."""


@dataclass(frozen=True)
class VerifiedLink:
    key: str
    filename: str
    expires_at: int
    recipient: str | None


def _mac(key: str, exp: int, filename: str, recipient: str | None, secret: str) -> str:
    # JSON encoding keeps the fields unambiguous (no separator can be smuggled
    # from one field into the next).
    message = json.dumps([_VERSION, key, exp, filename, recipient], ensure_ascii=False, separators=(",", ":"))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _unix(now: datetime | float | int) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)


def sign(
    key: str,
    filename: str,
    expires_at: datetime | int,
    secret: str,
    base_url: str,
    *,
    recipient: str | None = None,
) -> str:
    """Absolute download URL for ``key`` valid until ``expires_at`` (aware datetime or unix seconds)."""
    if not secret:
        raise ValueError("link secret must not be empty")
    exp = int(_unix(expires_at))
    sig = _mac(key, exp, filename, recipient, secret)
    query = f"exp={exp}&fn={quote(filename, safe='')}"
    if recipient is not None:
        query += f"&rcp={quote(recipient, safe='')}"
    return f"{base_url.rstrip('/')}{DOWNLOAD_PREFIX}{quote(key, safe='/')}?{query}&sig={sig}"


def verify(
    key: str,
    exp: str | int | None,
    filename: str | None,
    sig: str | None,
    secret: str,
    now: datetime | float,
    *,
    recipient: str | None = None,
) -> None:
    """Raise :class:`LinkInvalid` or :class:`LinkExpired` unless the link may be served now.

    The signature is checked first (constant time), so a tampered ``exp`` is
    reported as invalid rather than expired.
    """
    if exp is None or filename is None or not sig:
        raise LinkInvalid("missing link parameter")
    try:
        exp_int = int(exp)
    except (TypeError, ValueError):
        raise LinkInvalid("malformed expiry") from None
    if str(exp_int) != str(exp):
        raise LinkInvalid("malformed expiry")
    expected = _mac(key, exp_int, filename, recipient, secret)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise LinkInvalid("bad signature")
    if _unix(now) >= exp_int:
        raise LinkExpired("link expired")


def verify_url(url: str, secret: str, now: datetime | float) -> VerifiedLink:
    """Parse and verify a full link produced by :func:`sign` (for the API route and tests)."""
    parts = urlsplit(url)
    if not parts.path.startswith(DOWNLOAD_PREFIX):
        raise LinkInvalid("not a download link")
    key = unquote(parts.path[len(DOWNLOAD_PREFIX) :])
    query = parse_qs(parts.query, keep_blank_values=True)

    def one(name: str) -> str | None:
        values = query.get(name)
        if values is None:
            return None
        if len(values) != 1:
            raise LinkInvalid(f"repeated parameter {name}")
        return values[0]

    exp, filename, sig, recipient = one("exp"), one("fn"), one("sig"), one("rcp")
    verify(key, exp, filename, sig, secret, now, recipient=recipient)
    assert exp is not None and filename is not None
    return VerifiedLink(key=key, filename=filename, expires_at=int(exp), recipient=recipient)
