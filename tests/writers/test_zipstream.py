"""The streaming ZIP writer's chunks: bytes, or functions that make them on a worker thread."""

from __future__ import annotations

import io
import zipfile

import pytest

from assets.writers.zipstream import HashingFile, ZipStream


def _archive(chunks: list, workers: int = 2) -> bytes:
    raw = io.BytesIO()
    stream = ZipStream(HashingFile(raw), workers=workers, max_pending=3)
    stream.write_member("a.xml", chunks)
    stream.close()
    return raw.getvalue()


def test_chunk_functions_give_the_bytes_their_results_would() -> None:
    parts = [b"<row>%d</row>" % i * 50 for i in range(40)]
    as_bytes = _archive(parts)
    as_functions = _archive([lambda p=p: p for p in parts])
    assert as_functions == as_bytes
    assert zipfile.ZipFile(io.BytesIO(as_bytes)).read("a.xml") == b"".join(parts)


def test_empty_chunks_leave_no_trace_whichever_their_form() -> None:
    """A sync flush of nothing would still add 5 bytes: empty chunks are skipped, made or given."""
    parts = [b"abc", b"", b"def"]
    assert _archive([b"abc", b"def"]) == _archive(parts) == _archive([lambda p=p: p for p in parts])
    assert _archive([lambda: memoryview(b"")]) == _archive([])


def test_a_failing_chunk_function_fails_the_member() -> None:
    def broken() -> bytes:
        raise RuntimeError("no XML")

    stream = ZipStream(HashingFile(io.BytesIO()), workers=2, max_pending=3)
    with pytest.raises(RuntimeError, match="no XML"):
        stream.write_member("a.xml", [b"x", broken, b"y"])
    stream.abort()
