"""The report formats and their media types, defined once for the writers,
the stored files, the download route and the API's content negotiation."""

from __future__ import annotations

from typing import Literal

Format = Literal["xlsx", "csv", "json"]
FORMATS: tuple[Format, ...] = ("xlsx", "csv", "json")

#: Bare media type of each format (what an ``Accept`` header names).
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

#: ``Content-Type`` of a stored file and of its download: csv declares its UTF-8 encoding.
CONTENT_TYPES: dict[str, str] = {
    fmt: media + ("; charset=utf-8" if fmt == "csv" else "") for fmt, media in MEDIA_TYPES.items()
}


def answer_content_type(fmt: str) -> str:
    """``Content-Type`` of a synchronous API answer: both text formats declare UTF-8."""
    return MEDIA_TYPES[fmt] + ("; charset=utf-8" if fmt in ("csv", "json") else "")


def content_type_of(filename: str) -> str:
    """Content type of a report file by its extension (``application/octet-stream`` when unknown)."""
    return CONTENT_TYPES.get(filename.rsplit(".", 1)[-1].lower(), "application/octet-stream")
