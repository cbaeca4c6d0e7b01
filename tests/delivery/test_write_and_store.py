"""A report file written straight into the store (``orchestration.produce.write_and_store``).

Local storage writes in a staging directory next to the key and renames the file into place
with the digest the writer computed; these check that the stored bytes are the writer's, the
recorded digest is theirs, and a failure leaves neither a partial file nor a staging directory.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from assets.reports.storyboard_usage import SPEC
from assets.spec import Institution
from assets.writers import render
from assets.writers.render import Computed, render_file
from orchestration.delivery.storage import LocalReportStorage, S3ReportStorage, report_key
from orchestration.produce import write_and_store
from tests.reports.fixtures import month_request
from tests.reports.test_storyboard_usage import alfa_frames

ALFA = Institution(1, "Escola Alfa", "alfa")


def _computed() -> Computed:
    request = month_request(ALFA, 2026, 6)
    return Computed(spec=SPEC, request=request, frames=alfa_frames())


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "json"])
def test_stored_file_is_the_written_one_with_its_digest(
    local_storage: LocalReportStorage, tmp_path: Path, fmt: str
) -> None:
    computed = _computed()
    reference = tmp_path / f"reference.{fmt}"
    render_file(SPEC, computed, computed.request, fmt, reference)
    key = report_key(SPEC.slug, 1, "2026-06", fmt)

    produced = write_and_store(SPEC, computed, computed.request, fmt, local_storage, key, key.rsplit("/", 1)[1])

    stored = local_storage.path(key)
    data = stored.read_bytes()
    assert data == reference.read_bytes()
    assert (produced.bytes, produced.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert produced.rows == 7 and produced.storage_key == key
    assert stored.stat().st_mode & 0o777 == 0o644  # readable by the API's user, as a copied file was
    assert _files(local_storage.root) == sorted([key, *(str(Path(key).parents[i]) for i in range(3))])


def test_the_local_store_renames_the_staged_file(local_storage: LocalReportStorage) -> None:
    """No copy: the stored file is the inode the writer wrote (and the given digest is recorded)."""
    key = report_key(SPEC.slug, 1, "2026-06", "csv")
    with local_storage.staging_dir(key) as tmp:
        staged = Path(tmp) / "f.csv"
        staged.write_bytes(b"a;b\n1;2\n")
        inode = staged.stat().st_ino
        assert Path(tmp).parent == local_storage.path(key).parent  # same file system: rename works
        stored = local_storage.put_file(staged, key, "text/csv", sha256="0" * 64, move=True)
        assert not staged.exists()
    assert local_storage.path(key).stat().st_ino == inode
    assert (stored.bytes, stored.sha256) == (8, "0" * 64)
    assert _files(local_storage.path(key).parent) == [local_storage.path(key).name]


def test_a_reader_keeps_the_old_file_while_the_new_one_replaces_it(local_storage: LocalReportStorage) -> None:
    key = report_key(SPEC.slug, 1, "2026-06", "csv")
    for content in (b"old\n", b"new\n"):
        with local_storage.staging_dir(key) as tmp:
            (Path(tmp) / "f.csv").write_bytes(content)
            if content == b"new\n":
                reader = local_storage.open(key)
            local_storage.put_file(Path(tmp) / "f.csv", key, "text/csv", move=True)
    with reader, local_storage.open(key) as now:
        assert (reader.read(), now.read()) == (b"old\n", b"new\n")


def test_without_a_digest_the_store_hashes_the_file(local_storage: LocalReportStorage) -> None:
    """Nested documents (json/xlsx of a summary report) come without the writer's digest."""
    key = report_key(SPEC.slug, 1, "2026-06", "json")
    with local_storage.staging_dir(key) as tmp:
        (Path(tmp) / "f.json").write_bytes(b"{}")
        stored = local_storage.put_file(Path(tmp) / "f.json", key, "application/json", move=True)
    assert stored.sha256 == hashlib.sha256(b"{}").hexdigest()


def test_across_file_systems_the_move_becomes_a_copy(
    local_storage: LocalReportStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "elsewhere.csv"
    source.write_bytes(b"x;y\n")
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(src) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    key = report_key(SPEC.slug, 1, "2026-06", "csv")
    stored = local_storage.put_file(source, key, "text/csv", move=True)
    assert local_storage.path(key).read_bytes() == b"x;y\n"
    assert stored.sha256 == hashlib.sha256(b"x;y\n").hexdigest()
    assert _files(local_storage.path(key).parent) == [local_storage.path(key).name]


def test_a_failed_write_leaves_the_old_file_and_nothing_else(
    local_storage: LocalReportStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = _computed()
    key = report_key(SPEC.slug, 1, "2026-06", "xlsx")
    name = key.rsplit("/", 1)[1]
    before = write_and_store(SPEC, computed, computed.request, "xlsx", local_storage, key, name)

    def broken(frame: Any, columns: Any, path: Path, fmt: str, **kwargs: Any) -> Any:
        path.write_bytes(b"PK half a workbook")
        raise RuntimeError("disk full")

    monkeypatch.setattr(render, "write_report", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_and_store(SPEC, computed, computed.request, "xlsx", local_storage, key, name)
    data = local_storage.path(key).read_bytes()
    assert hashlib.sha256(data).hexdigest() == before.sha256
    assert _files(local_storage.path(key).parent) == [name]


def test_s3_uploads_the_written_file_with_its_digest(s3_bucket: str, s3_client: Any) -> None:
    storage = S3ReportStorage(s3_bucket, "lxp/reports", client=s3_client)
    computed = _computed()
    key = report_key(SPEC.slug, 1, "2026-06", "xlsx")
    produced = write_and_store(SPEC, computed, computed.request, "xlsx", storage, key, key.rsplit("/", 1)[1])
    with storage.open(key) as body:
        data = body.read()
    assert (produced.bytes, produced.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    head = s3_client.head_object(Bucket=s3_bucket, Key=f"lxp/reports/{key}")
    assert head["Metadata"]["sha256"] == produced.sha256
