"""S3 report storage against a real S3 server (moto in server mode)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestration.delivery.storage import S3_MAX_EXPIRES_IN, S3ReportStorage, report_key, storage_from_settings
from tests.delivery.conftest import settings_for

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def s3_storage(s3_bucket: str, s3_client: Any) -> S3ReportStorage:
    return S3ReportStorage(s3_bucket, "lxp/reports", client=s3_client)


def test_put_exists_size_open_delete(s3_storage: S3ReportStorage, s3_client: Any, tmp_path: Path) -> None:
    data = os.urandom(256 * 1024) + "relatório".encode()
    source = tmp_path / "r.xlsx"
    source.write_bytes(data)
    key = report_key("storyboard-usage", 1, "2026-06", "xlsx")
    assert not s3_storage.exists(key)
    stored = s3_storage.put_file(source, key, XLSX)
    assert stored.uri == f"s3://{s3_storage.bucket}/lxp/reports/{key}"
    assert (stored.bytes, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert s3_storage.exists(key)
    assert s3_storage.size(key) == len(data)
    with s3_storage.open(key) as body:
        assert body.read() == data
    head = s3_client.head_object(Bucket=s3_storage.bucket, Key=f"lxp/reports/{key}")
    assert head["ContentType"] == XLSX
    assert head["Metadata"]["sha256"] == stored.sha256
    s3_storage.delete(key)
    assert not s3_storage.exists(key)
    with pytest.raises(FileNotFoundError):
        s3_storage.size(key)
    with pytest.raises(FileNotFoundError):
        s3_storage.open(key)


def test_presigned_url_downloads_the_file_as_an_attachment(s3_storage: S3ReportStorage, tmp_path: Path) -> None:
    data = b"ID;T\xc3\xadtulo\n1;Curso\n"
    source = tmp_path / "c.csv"
    source.write_bytes(data)
    key = report_key("catalog", 3, "2026-06", "csv")
    s3_storage.put_file(source, key, "text/csv")
    url = s3_storage.download_url(key, "catalog_3_2026-06.csv", 3600)
    assert "X-Amz-Expires=3600" in url and "X-Amz-Signature=" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"catalog_3_2026-06.csv\"; filename*=UTF-8''catalog_3_2026-06.csv"
    )
    # A signed URL for one key does not open another one.
    other = url.replace("catalog_3_2026-06.csv?", "catalog_4_2026-06.csv?", 1)
    assert httpx.get(other).status_code in (403, 404)


def test_presigned_links_are_capped_at_seven_days(s3_storage: S3ReportStorage) -> None:
    url = s3_storage.download_url(report_key("catalog", 3, "2026-06", "csv"), "c.csv", 30 * 24 * 3600)
    assert f"X-Amz-Expires={S3_MAX_EXPIRES_IN}" in url
    assert s3_storage.link_expires_in(30 * 24 * 3600) == S3_MAX_EXPIRES_IN


def test_storage_from_settings_talks_to_the_endpoint(s3_endpoint: str, s3_bucket: str, tmp_path: Path) -> None:
    storage = storage_from_settings(settings_for(tmp_path, storage=f"s3://{s3_bucket}/p", s3_endpoint_url=s3_endpoint))
    source = tmp_path / "x.json"
    source.write_bytes(b"[]")
    storage.put_file(source, "catalog/institution=1/2026-06/catalog_1_2026-06.json", "application/json")
    assert storage.size("catalog/institution=1/2026-06/catalog_1_2026-06.json") == 2


def test_multipart_upload_of_a_large_file(s3_storage: S3ReportStorage, tmp_path: Path) -> None:
    # 100 MiB + a ragged tail: several 16 MiB parts plus a short last one.
    source = tmp_path / "big.csv"
    block = os.urandom(1024 * 1024)
    expected = hashlib.sha256()
    with open(source, "wb") as fh:
        for i in range(100):
            chunk = bytes([i]) + block[1:]
            fh.write(chunk)
            expected.update(chunk)
        fh.write(b"tail" * 1000)
        expected.update(b"tail" * 1000)
    size = 100 * 1024 * 1024 + 4000
    key = report_key("storyboard-usage", 9, "2026-06", "csv")
    stored = s3_storage.put_file(source, key, "text/csv")
    assert (stored.bytes, stored.sha256) == (size, expected.hexdigest())
    head = s3_storage.client.head_object(Bucket=s3_storage.bucket, Key=s3_storage.object_key(key))
    # A multipart ETag is "<md5 of part md5s>-<part count>".
    assert head["ETag"].strip('"').endswith("-7")
    assert s3_storage.size(key) == size
    source.unlink()
    downloaded = hashlib.sha256()
    total = 0
    with httpx.stream("GET", s3_storage.download_url(key, "big.csv", 600)) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes(1024 * 1024):
            downloaded.update(chunk)
            total += len(chunk)
    assert (total, downloaded.hexdigest()) == (size, expected.hexdigest())


def test_a_known_digest_is_stored_without_reading_the_file_again(
    s3_storage: S3ReportStorage, s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer already hashed the file: its digest goes into the metadata as given (the extra read
    of a 108 MB file is what is saved), and the object is still the file's bytes."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "r.xlsx"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    def must_not_hash(path: Path) -> tuple[int, str]:
        raise AssertionError(f"{path} was read again to hash it")

    monkeypatch.setattr("orchestration.delivery.storage._sha256_of", must_not_hash)
    key = report_key("storyboard-usage", 2, "2026-06", "xlsx")
    stored = s3_storage.put_file(source, key, XLSX, sha256=digest)
    assert (stored.bytes, stored.sha256) == (len(data), digest)
    head = s3_client.head_object(Bucket=s3_storage.bucket, Key=s3_storage.object_key(key))
    assert head["Metadata"]["sha256"] == digest
    with s3_storage.open(key) as body:
        assert hashlib.sha256(body.read()).hexdigest() == digest


@pytest.mark.parametrize("digest", ["", "A" * 64, "0" * 63, "g" * 64, "0" * 64 + "\n"])
def test_a_malformed_digest_is_refused_before_anything_is_uploaded(
    s3_storage: S3ReportStorage, tmp_path: Path, digest: str
) -> None:
    source = tmp_path / "r.csv"
    source.write_bytes(b"a;b\n")
    key = report_key("catalog", 2, "2026-06", "csv")
    with pytest.raises(ValueError, match="sha256"):
        s3_storage.put_file(source, key, "text/csv", sha256=digest)
    assert not s3_storage.exists(key)
