"""A minimal streaming ZIP writer whose big members are deflated in parallel.

Why not ``zipfile``: it deflates each member in one stream on the calling
thread, and deflate is what bounds xlsx throughput. Here a member is fed as
independent chunks; each chunk is compressed (ISA-L, raw deflate, level 1 by
default) on a worker thread and ended with a sync flush, which byte-aligns it
and leaves the stream open, so the concatenation of the chunks plus one empty
final block is a single valid deflate stream (the technique ``pigz`` uses).
CRC-32s are computed per chunk on the workers and combined in order.

Members are written strictly sequentially with data descriptors (general
purpose bit 3), so the output is never seeked and can be hashed as it goes.
ZIP64 records are emitted only where a size or offset needs them; a member that
may exceed 4 GiB must be opened with ``zip64=True`` because its local header has
to say so up front.

Every member carries one fixed modification time (1980-01-01 00:00, the first
the format can say), not the clock: a partition built twice from the same data
must be the same bytes. The monthly backfill rebuilds files whose links were
already sent, and a cache hit hands out a link to whatever the key holds now;
with a clock in the archive the download would no longer match the checksum
recorded with the materialization (reproducible-build tools do the same).
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from isal import isal_zlib

_U32 = 0xFFFFFFFF
_EMPTY_FINAL_BLOCK = b"\x03\x00"  # BFINAL=1, fixed Huffman, end-of-block
_FLAG_DESCRIPTOR_UTF8 = 0x0008 | 0x0800
_DEFLATE = 8


#: MS-DOS time and date fields of every member: 00:00:00 on 1980-01-01.
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1


#: A member's chunk: its bytes, or a function that makes them, called on a worker thread so that
#: making chunks (the xlsx sheet's XML) runs in parallel with making and deflating the others.
Chunk = bytes | memoryview | Callable[[], bytes | memoryview]


def _compress_chunk(chunk: Chunk, level: int) -> tuple[bytes, int, int]:
    data = chunk() if callable(chunk) else chunk
    if not data:  # as if the chunk had not been there: a sync flush of nothing still writes 5 bytes
        return b"", 0, 0
    comp = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    out = comp.compress(data) + comp.flush(isal_zlib.Z_SYNC_FLUSH)
    return out, isal_zlib.crc32(data), len(data)


@dataclass
class _Entry:
    name: bytes
    offset: int
    crc: int = 0
    csize: int = 0
    usize: int = 0
    zip64: bool = False


class HashingFile:
    """Write-only wrapper that counts bytes and keeps a running SHA-256."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes | memoryview) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.bytes += len(data)
        return len(data)


class ZipStream:
    """Writes a ZIP archive member by member to a forward-only binary sink."""

    def __init__(self, sink: HashingFile, *, level: int = 1, workers: int = 2, max_pending: int = 4):
        if not 0 <= level <= 3:
            raise ValueError("ISA-L deflate level must be 0..3")
        self._out = sink
        self._level = level
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="deflate")
        self._max_pending = max(1, max_pending)
        self._entries: list[_Entry] = []

    def write_member(self, name: str, chunks: Iterable[Chunk], *, zip64: bool = False) -> None:
        """Deflate ``chunks`` (in order) into the member ``name``.

        At most ``max_pending`` chunks are in flight, so memory stays bounded by
        the chunk size, not the member size.
        """
        entry = _Entry(name.encode("utf-8"), self._out.bytes, zip64=zip64)
        self._write_local_header(entry)
        pending: deque[Future[tuple[bytes, int, int]]] = deque()
        for chunk in chunks:
            if not chunk:
                continue
            pending.append(self._pool.submit(_compress_chunk, chunk, self._level))
            while len(pending) >= self._max_pending:
                self._collect(entry, pending.popleft().result())
        while pending:
            self._collect(entry, pending.popleft().result())
        self._out.write(_EMPTY_FINAL_BLOCK)
        entry.csize += len(_EMPTY_FINAL_BLOCK)
        if (entry.csize > _U32 or entry.usize > _U32) and not entry.zip64:
            raise OverflowError(f"{name} exceeds 4 GiB; open it with zip64=True")
        if entry.zip64:
            self._out.write(struct.pack("<IIQQ", 0x08074B50, entry.crc, entry.csize, entry.usize))
        else:
            self._out.write(struct.pack("<IIII", 0x08074B50, entry.crc, entry.csize, entry.usize))
        self._entries.append(entry)

    def _collect(self, entry: _Entry, result: tuple[bytes, int, int]) -> None:
        data, crc, size = result
        if not size:
            return
        entry.crc = isal_zlib.crc32_combine(entry.crc, crc, size) if entry.usize else crc
        entry.usize += size
        entry.csize += len(data)
        self._out.write(data)

    def _write_local_header(self, e: _Entry) -> None:
        extra = struct.pack("<HHQQ", 1, 16, 0, 0) if e.zip64 else b""
        self._out.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                45 if e.zip64 else 20,
                _FLAG_DESCRIPTOR_UTF8,
                _DEFLATE,
                _DOS_TIME,
                _DOS_DATE,
                0,
                _U32 if e.zip64 else 0,
                _U32 if e.zip64 else 0,
                len(e.name),
                len(extra),
            )
        )
        self._out.write(e.name + extra)

    def close(self) -> None:
        """Write the central directory (ZIP64 end records only when needed)."""
        self._pool.shutdown(wait=True)
        cd_start = self._out.bytes
        for e in self._entries:
            wide = [
                (e.usize, e.zip64 or e.usize >= _U32),
                (e.csize, e.zip64 or e.csize >= _U32),
                (e.offset, e.zip64 or e.offset >= _U32),
            ]
            big = [v for v, w in wide if w]
            extra = struct.pack(f"<HH{len(big)}Q", 1, 8 * len(big), *big) if big else b""
            (usize, uw), (csize, cw), (offset, ow) = wide
            version = 45 if big else 20
            self._out.write(
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    version,
                    version,
                    _FLAG_DESCRIPTOR_UTF8,
                    _DEFLATE,
                    _DOS_TIME,
                    _DOS_DATE,
                    e.crc,
                    _U32 if cw else csize,
                    _U32 if uw else usize,
                    len(e.name),
                    len(extra),
                    0,
                    0,
                    0,
                    0,
                    _U32 if ow else offset,
                )
            )
            self._out.write(e.name + extra)
        cd_size = self._out.bytes - cd_start
        count = len(self._entries)
        if cd_start >= _U32 or cd_size >= _U32 or count >= 0xFFFF:
            eocd64 = self._out.bytes
            self._out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, cd_size, cd_start))
            self._out.write(struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1))
        self._out.write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                min(count, 0xFFFF),
                min(count, 0xFFFF),
                min(cd_size, _U32),
                min(cd_start, _U32),
                0,
            )
        )

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
