"""``Accept`` header negotiation for the synchronous reports (seed 002)."""

from __future__ import annotations

from collections.abc import Sequence

from api.errors import ApiError
from assets.writers.formats import MEDIA_TYPES

_BY_MEDIA = {v: k for k, v in MEDIA_TYPES.items()}


def _parse(header: str) -> list[tuple[str, float, int]]:
    out = []
    for index, part in enumerate(header.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        q = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        out.append((media, q, index))
    return out


def negotiate(accept: str | None, offered: Sequence[str], default: str = "json") -> str:
    """The format (``json``/``csv``/``xlsx``) to answer with, or 406.

    No header, ``*/*`` or ``application/*`` mean the default (json); the
    client's q-values and then its order decide between offered types.
    """
    if accept is None or not accept.strip():
        return default
    candidates = sorted(_parse(accept), key=lambda item: (-item[1], item[2]))
    for media, q, _ in candidates:
        if q <= 0:
            continue
        if media in ("*/*", "*"):
            return default
        fmt = _BY_MEDIA.get(media) or (media if media in MEDIA_TYPES else None)
        if fmt is None and media.endswith("/*"):
            family = media[:-2]
            fmt = next((f for f in [default, *offered] if MEDIA_TYPES[f].startswith(family + "/")), None)
        if fmt is not None and fmt in offered:
            return fmt
    supported = ", ".join(MEDIA_TYPES[f] for f in offered)
    raise ApiError("invalid_argument", f"Unsupported Accept header. Supported values: {supported}", status=406)
