"""JSON report files: one array of objects keyed by ``column.key``, streamed.

Polars serializes each chunk as NDJSON (one object per line, keys in column
order, strings escaped, so a raw newline only ever separates records); the
chunks are joined with commas inside ``[ ... ]``. Memory is the frame plus one
chunk. Dates are ISO-8601 ``YYYY-MM-DD``, datetimes naive local
``YYYY-MM-DDTHH:MM:SS``; non-finite floats and nulls are ``null``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from assets.spec import Column
from assets.writers.result import WriteResult, atomic_output, check_columns, normalized

CHUNK_ROWS = 65_536


def _json_value(frame: pl.DataFrame, column: Column) -> pl.Expr:
    value = normalized(frame, column)
    if column.kind == "date":
        value = value.dt.strftime("%Y-%m-%d")
    elif column.kind == "datetime":
        value = value.dt.strftime("%Y-%m-%dT%H:%M:%S")
    elif column.kind == "float":
        value = pl.when(value.is_finite()).then(value)
    return value.alias(column.key)


#: ``":null`` preceded by these is (or may be) inside a string value: an escaped quote, or one opening a value or key.
_AMBIGUOUS_NULL = (b'\\":null', b':":null', b'{":null', b',":null')


def _null_replacer(columns: Sequence[Column], null_as: object) -> Callable[[bytes], bytes]:
    """Rewrite ``"key":null`` members to ``"key":<null_as>`` in serialized records.

    Some contracts (seed 002) show absent numbers/booleans as ``""`` while the
    frame keeps them typed. Matching only after ``{`` or ``,`` and before ``,``
    or ``}`` can never hit text inside a string value: quotes there are escaped.
    """
    keys = b"|".join(re.escape(json.dumps(c.key).encode()) for c in columns)
    pattern = re.compile(rb"(?<=[{,])(" + keys + rb"):null(?=[,}])")
    replacement = rb"\1:" + json.dumps(null_as, ensure_ascii=False).encode().replace(b"\\", b"\\\\")
    value = json.dumps(null_as, ensure_ascii=False).encode()

    def replace(records: bytes) -> bytes:
        # Fast path, same bytes as the regex: the records hold only these keys and flat values, so a
        # ``":null`` whose quote is not escaped (``\\"``) and opens no key or value (``{"``, ``,"``,
        # ``:"``) is a key's closing quote, i.e. the member ``"key":null``. Anything else -- rare text
        # inside a string value -- goes to the regex, whose scan of every position costs ~35 ns/byte
        # (2-5 ms for a small institution's file).
        if any(s in records for s in _AMBIGUOUS_NULL):
            return pattern.sub(replacement, records)
        return records.replace(b'":null,', b'":' + value + b",").replace(b'":null}', b'":' + value + b"}")

    return replace


def write_json(
    frame: pl.DataFrame, columns: Sequence[Column], path: str | Path, *, null_as: object = None
) -> WriteResult:
    """Write ``frame`` as a JSON array of objects (keys in column order);
    nulls are ``null`` unless ``null_as`` names another JSON value (e.g. ``""``)."""
    check_columns(frame, columns)
    exprs = [_json_value(frame, c) for c in columns]
    replace = _null_replacer(columns, null_as) if null_as is not None else (lambda records: records)
    with atomic_output(path) as out:
        out.write(b"[")
        for start in range(0, frame.height, CHUNK_ROWS):
            buf = io.BytesIO()
            frame.slice(start, CHUNK_ROWS).select(exprs).write_ndjson(buf)
            records = replace(buf.getvalue().rstrip(b"\n")).replace(b"\n", b",\n")
            out.write((b"\n" if start == 0 else b",\n") + records)
        out.write(b"\n]\n" if frame.height else b"]\n")
    return WriteResult(Path(path), frame.height, out.bytes, out.sha256.hexdigest(), 1)
