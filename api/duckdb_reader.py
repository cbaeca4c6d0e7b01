"""One read-only DuckDB database per API process, one cursor per thread.

Opening the warehouse file costs milliseconds per request (tens under load),
more than a library page's queries. So the process keeps the file attached
once and every worker thread queries through its own cursor (DuckDB
connections must not be shared by threads; cursors of one connection may).

The warehouse is rewritten by building a new file aside and renaming it over
the old one (``orchestration.warehouse.load``). A cheap ``stat`` per query
notices the new file and attaches it; the old database is closed when its
last in-flight query returns. The file is attached to a private in-memory
database rather than opened with ``duckdb.connect(path)``, whose per-process
instance cache would hand back the old, still-open file.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_ALIAS = "warehouse"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _Generation:
    """The database attached from one version (inode, mtime, size) of the file."""

    _ids = itertools.count()

    def __init__(self, path: str, signature: tuple[int, int, int]) -> None:
        import duckdb

        self.id = next(self._ids)
        self.signature = signature
        self.con = duckdb.connect(":memory:")
        self.con.execute(f"ATTACH {_quote(path)} AS {_ALIAS} (READ_ONLY)")
        self.users = 0
        self.retired = False
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.con.close()


class SharedDuckDB:
    """``with reader() as con: con.sql(...)`` — a per-thread cursor on the current file.

    Pass it as ``Warehouse(url, duckdb_connect=reader)``.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._lock = threading.Lock()
        self._current: _Generation | None = None
        self._local = threading.local()

    def _signature(self) -> tuple[int, int, int]:
        st = os.stat(self.path)  # FileNotFoundError -> the caller's "warehouse unavailable"
        return st.st_ino, st.st_mtime_ns, st.st_size

    def version(self) -> tuple[str, int, int, int]:
        """Identity of the file now on disk: results computed from it stay exact until this changes."""
        return (self.path, *self._signature())

    def _acquire(self) -> _Generation:
        signature = self._signature()
        with self._lock:
            current = self._current
            if current is None or current.signature != signature:
                fresh = _Generation(self.path, signature)
                if current is not None:
                    current.retired = True
                    if current.users == 0:
                        current.close()
                self._current = current = fresh
            current.users += 1
            return current

    def _release(self, generation: _Generation) -> None:
        with self._lock:
            generation.users -= 1
            if generation.retired and generation.users == 0:
                generation.close()

    def _cursor(self, generation: _Generation) -> Any:
        cursors: dict[int, Any] = getattr(self._local, "cursors", None) or {}
        self._local.cursors = cursors
        cursor = cursors.get(generation.id)
        if cursor is None:
            for old in [k for k in cursors if k != generation.id]:
                del cursors[old]  # cursors of a retired file (closed with it)
            cursor = cursors[generation.id] = generation.con.cursor()
            cursor.execute(f"USE {_ALIAS}")
        return cursor

    @contextmanager
    def __call__(self) -> Iterator[Any]:
        generation = self._acquire()
        try:
            yield self._cursor(generation)
        finally:
            self._release(generation)

    def close(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.retired = True
                if self._current.users == 0:
                    self._current.close()
                self._current = None
