"""Local report storage: atomic writes, checksums, safe keys, signed links."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assets.request import download_filename
from orchestration.delivery import links
from orchestration.delivery.storage import (
    LocalReportStorage,
    S3ReportStorage,
    content_disposition,
    report_key,
    storage_from_settings,
)
from tests.delivery.conftest import settings_for


def test_report_key_and_filename_are_operator_readable() -> None:
    assert report_key("storyboard-usage", 1, "2026-06", "xlsx") == (
        "storyboard-usage/institution=1/2026-06/storyboard-usage_1_2026-06.xlsx"
    )
    cache_key = hashlib.sha256(b"catalog|1|params").hexdigest()
    assert report_key("catalog", 7, "2026-01-01_2026-03-31", "csv", cache_key=cache_key) == (
        f"catalog/institution=7/adhoc/{cache_key[:16]}/catalog_7_2026-01-01_2026-03-31.csv"
    )
    assert download_filename("storyboard-usage", 1, "2026-06", "xlsx") == "storyboard-usage_1_2026-06.xlsx"


@pytest.mark.parametrize(
    "args",
    [("../etc", 1, "2026-06", "xlsx"), ("r", 1, "2026/../..", "xlsx"), ("r", 1, "2026-06", "x/y"), ("r", 1, "", "csv")],
)
def test_report_key_rejects_unsafe_parts(args: tuple[str, int, str, str]) -> None:
    with pytest.raises(ValueError):
        report_key(*args)


def test_put_file_is_atomic_and_checksummed(local_storage: LocalReportStorage, tmp_path: Path) -> None:
    source = tmp_path / "out.xlsx"
    data = os.urandom(3 * 1024 * 1024 + 17)
    source.write_bytes(data)
    key = report_key("storyboard-usage", 1, "2026-06", "xlsx")
    stored = local_storage.put_file(source, key, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert stored.key == key
    assert stored.bytes == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.uri == (tmp_path / "reports" / key).as_uri()
    assert local_storage.exists(key) and local_storage.size(key) == len(data)
    with local_storage.open(key) as fh:
        assert fh.read() == data
    # Overwrite: the new content replaces the old one, and no temp file is left behind.
    source.write_bytes(b"v2")
    local_storage.put_file(source, key, "text/plain")
    with local_storage.open(key) as fh:
        assert fh.read() == b"v2"
    assert sorted(p.name for p in (tmp_path / "reports" / key).parent.iterdir()) == ["storyboard-usage_1_2026-06.xlsx"]


def test_failed_copy_leaves_no_partial_file(local_storage: LocalReportStorage, tmp_path: Path) -> None:
    key = report_key("catalog", 1, "2026-06", "csv")
    with pytest.raises(FileNotFoundError):
        local_storage.put_file(tmp_path / "does-not-exist.csv", key, "text/csv")
    assert not local_storage.exists(key)
    assert [p for p in (tmp_path / "reports").rglob("*") if p.is_file()] == []


def test_missing_objects_and_delete(local_storage: LocalReportStorage, tmp_path: Path) -> None:
    key = report_key("catalog", 1, "2026-06", "csv")
    assert not local_storage.exists(key)
    with pytest.raises(FileNotFoundError):
        local_storage.size(key)
    with pytest.raises(FileNotFoundError):
        local_storage.open(key)
    source = tmp_path / "c.csv"
    source.write_text("a,b\n")
    local_storage.put_file(source, key, "text/csv")
    local_storage.delete(key)
    assert not local_storage.exists(key)
    local_storage.delete(key)  # idempotent


@pytest.mark.parametrize("key", ["../outside.xlsx", "/etc/passwd", "a/../../b.xlsx", "a//b.xlsx", "a/b/"])
def test_keys_cannot_escape_the_root(local_storage: LocalReportStorage, key: str) -> None:
    with pytest.raises(ValueError):
        local_storage.exists(key)


def test_download_url_is_a_signed_expiring_link(local_storage: LocalReportStorage) -> None:
    key = report_key("storyboard-usage", 1, "2026-06", "xlsx")
    now = datetime(2026, 7, 1, tzinfo=UTC)
    url = local_storage.download_url(key, "storyboard-usage_1_2026-06.xlsx", 3600, now=now)
    assert url.startswith("http://api.test/downloads/")
    verified = links.verify_url(url, "link-secret-for-tests", now.timestamp() + 3599)
    assert (verified.key, verified.filename, verified.expires_at) == (
        key,
        "storyboard-usage_1_2026-06.xlsx",
        int(now.timestamp()) + 3600,
    )
    with pytest.raises(links.LinkExpired):
        links.verify_url(url, "link-secret-for-tests", now.timestamp() + 3600)


def test_content_disposition_has_ascii_fallback_and_utf8_name() -> None:
    assert content_disposition("relatório 1.xlsx") == (
        "attachment; filename=\"relat_rio 1.xlsx\"; filename*=UTF-8''relat%C3%B3rio%201.xlsx"
    )


def test_storage_from_settings_picks_the_backend(tmp_path: Path) -> None:
    local = storage_from_settings(settings_for(tmp_path))
    assert isinstance(local, LocalReportStorage)
    assert local.root == (tmp_path / "reports").resolve()
    remote = storage_from_settings(
        settings_for(tmp_path, storage="s3://my-bucket/lxp/reports/", s3_endpoint_url="http://127.0.0.1:9")
    )
    assert isinstance(remote, S3ReportStorage)
    assert (remote.bucket, remote.prefix, remote.endpoint_url) == ("my-bucket", "lxp/reports", "http://127.0.0.1:9")
    assert remote.object_key("r/x.csv") == "lxp/reports/r/x.csv"
