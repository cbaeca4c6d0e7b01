"""Parsing of id parameters that never raises anything but a 400."""

from __future__ import annotations

from collections.abc import Iterable

from api.errors import ApiError

MAX_ID_DIGITS = 18  # fits a BIGINT; longer input is refused before int() sees it


def positive_int(value: object) -> int | None:
    """A positive integer from an int or a string of ASCII digits; None for anything else.

    ``str.isdigit`` alone accepts "²" and other Unicode digits that ``int`` rejects,
    and ``int`` refuses strings past 4,300 digits: both were 500s from input alone.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 10**MAX_ID_DIGITS else None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_ID_DIGITS:
        return None
    number = int(text)
    return number if number > 0 else None


def positive_ids(values: Iterable[object], message: str) -> list[int]:
    """Sorted unique positive ids, or 400 ``invalid_argument`` with ``message``."""
    ids: set[int] = set()
    for value in values:
        number = positive_int(value)
        if number is None:
            raise ApiError("invalid_argument", message)
        ids.add(number)
    return sorted(ids)
