"""Where finished report files live: a local directory or an S3 bucket.

Both backends share one small interface so report runs, the API and the
notification sender never care which one is configured. Keys are readable by
an operator browsing the bucket (``<report>/institution=<id>/<period>/<file>``)
and always contain the institution, which is what keeps one tenant's link from
ever naming another tenant's file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
import time
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from assets.request import download_filename
from orchestration.delivery import links

if TYPE_CHECKING:
    from orchestration.settings import Settings

_CHUNK = 1024 * 1024
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=/-]*$")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# SigV4 presigned URLs cannot live longer than seven days.
S3_MAX_EXPIRES_IN = 7 * 24 * 3600


@dataclass(frozen=True)
class S3Timeouts:
    """Bounds of one S3 call: seconds to connect, seconds a socket may wait for its next bytes
    (per read or write, not for the whole transfer), and attempts in all (botocore's standard
    retry mode, which retries timeouts and connection errors)."""

    connect: float
    read: float
    attempts: int


#: Report runs upload files in 16 MiB parts: a part must make progress within 30 s (botocore's
#: default is 60 s), and transient failures are retried; the run itself is retried on top
#: (``orchestration.transient``). Six attempts, as before (botocore's ``max_attempts: 5`` = 5 retries).
S3_RUN_TIMEOUTS = S3Timeouts(connect=5, read=30, attempts=6)
#: The API on a request path only asks small questions: a HEAD of a cached file, the GET of a
#: sync report's cached month (a few MB at most). Downloads never go through the API: they are
#: presigned links served by S3 itself. 2 s per socket operation and one retry: a frozen store
#: answers a request with 503 within ~5 s instead of holding it for minutes (5 x 60 s).
S3_REQUEST_TIMEOUTS = S3Timeouts(connect=2, read=2, attempts=2)
#: The readiness probe's ``head_bucket``: no retry, done well within the probe's deadline.
S3_PROBE_TIMEOUTS = S3Timeouts(connect=1, read=1, attempts=1)


def _storage_errors() -> tuple[type[BaseException], ...]:
    """What a storage backend raises when the store (not the caller) failed:
    file-system errors, bad keys, and botocore's errors, which subclass neither."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (OSError, ValueError, BotoCoreError, ClientError)


STORAGE_ERRORS = _storage_errors()


@dataclass(frozen=True)
class StoredObject:
    key: str
    uri: str
    bytes: int
    sha256: str


def _part(value: object, what: str) -> str:
    text = str(value)
    if not _SAFE_PART.match(text) or ".." in text:
        raise ValueError(f"invalid {what} for a storage key: {text!r}")
    return text


def check_key(key: str) -> str:
    """Reject keys that could escape the storage root or confuse an operator."""
    if not _SAFE_KEY.match(key) or ".." in key or "//" in key or key.endswith("/"):
        raise ValueError(f"invalid storage key: {key!r}")
    return key


def report_key(report_slug: str, institution_id: int, period: str, fmt: str, *, cache_key: str | None = None) -> str:
    """Object key of a report file.

    A partition (whole month, no filter) lives at
    ``storyboard-usage/institution=1/2026-06/storyboard-usage_1_2026-06.xlsx``;
    an ad-hoc run adds ``adhoc/<cache_key[:16]>/`` so different parameters for
    the same period never overwrite each other.
    """
    filename = download_filename(report_slug, institution_id, period, fmt)
    base = f"{report_slug}/institution={int(institution_id)}"
    if cache_key is None:
        return check_key(f"{base}/{period}/{filename}")
    return check_key(f"{base}/adhoc/{_part(cache_key[:16], 'cache key')}/{filename}")


def content_disposition(filename: str) -> str:
    """``attachment`` header value with an ASCII fallback and an RFC 5987 UTF-8 name."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _sync(path: Path) -> int:
    """Make ``path`` readable by all (the writers create 0600 files) and durable before it is
    renamed into the store, as a copied file would be; returns its size."""
    os.chmod(path, 0o644)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _sha256_of(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class ReportStorage(ABC):
    """Interface shared by local and S3 storage."""

    #: Longest link lifetime the backend can issue (None = unlimited).
    max_expires_in: int | None = None

    @abstractmethod
    def put_file(
        self, local_path: Path, key: str, content_type: str, *, sha256: str | None = None, move: bool = False
    ) -> StoredObject:
        """Store the file at ``local_path`` as ``key``; readers see the old object or the whole new one.

        ``sha256``: the file's digest when its writer computed it on the way out
        (``WriteResult.sha256``), so the store does not read 100 MB again to hash it; it is
        recorded as given. ``move``: the caller is done with ``local_path`` and it may be moved
        into the store instead of copied (a file written in :meth:`staging_dir` is then a
        rename); it is gone or left as it was afterwards, whichever the backend did."""

    def staging_dir(self, key: str) -> AbstractContextManager[str]:
        """A temporary directory (removed on exit, with what is left in it) to write the file
        that will become ``key``; ``put_file(..., move=True)`` stores a file from there as
        cheaply as the backend can. Here: the system's temp directory."""
        return tempfile.TemporaryDirectory(prefix="lxp-report-")

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; raises FileNotFoundError when absent."""

    @abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """Binary stream of the object; raises FileNotFoundError when absent. Caller closes it."""

    @abstractmethod
    def download_url(self, key: str, filename: str, expires_in: int, *, now: datetime | None = None) -> str:
        """A URL that downloads ``key`` as ``filename`` for ``expires_in`` seconds from ``now``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; absent objects are not an error."""

    @abstractmethod
    def ping(self) -> None:
        """Cheap reachability check (readiness): raises when the store cannot be used."""

    def link_expires_in(self, wanted: int) -> int:
        return wanted if self.max_expires_in is None else min(wanted, self.max_expires_in)


class LocalReportStorage(ReportStorage):
    """Files under ``root``; links are HMAC-signed ``/downloads/...`` URLs served by the API."""

    def __init__(self, root: Path, base_url: str, link_secret: str) -> None:
        self.root = Path(root).resolve()
        self.base_url = base_url
        self.link_secret = link_secret

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return path

    def staging_dir(self, key: str) -> AbstractContextManager[str]:
        """A hidden directory next to ``key``'s file: on the same file system, so that
        ``put_file(..., move=True)`` is a rename, not a copy of the file (the big institution's
        108 MB month: 0.15 s of copying and hashing again what the writer had just written)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")

    def put_file(
        self, local_path: Path, key: str, content_type: str, *, sha256: str | None = None, move: bool = False
    ) -> StoredObject:
        # The file is complete and fsynced under a temporary name before one rename makes it
        # ``key``: readers see the old file or the complete new one, never a partial write.
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                size = _sync(Path(local_path))
                os.replace(local_path, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
            else:
                return StoredObject(key, target.as_uri(), size, sha256 or _sha256_of(target)[1])
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with open(local_path, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    if sha256 is None:
                        digest.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return StoredObject(key=key, uri=target.as_uri(), bytes=size, sha256=sha256 or digest.hexdigest())

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def open(self, key: str) -> IO[bytes]:
        return open(self.path(key), "rb")

    def download_url(self, key: str, filename: str, expires_in: int, *, now: datetime | None = None) -> str:
        check_key(key)
        start = now.timestamp() if now is not None else time.time()
        return links.sign(key, filename, int(start + expires_in), self.link_secret, self.base_url)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"{self.root} is not writable")


class S3ReportStorage(ReportStorage):
    """Objects in ``s3://bucket/prefix``; links are SigV4 presigned GETs.

    Presigned URLs are computed from the client's credentials and the real
    clock (``now`` is ignored); with temporary credentials (an IAM role) a URL
    stops working when the session expires, even before ``expires_in``.
    """

    max_expires_in = S3_MAX_EXPIRES_IN

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        client: Any | None = None,
        *,
        timeouts: S3Timeouts = S3_RUN_TIMEOUTS,
        multipart_threshold: int = 16 * 1024 * 1024,
        multipart_chunksize: int = 16 * 1024 * 1024,
        max_concurrency: int = 4,
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.client = client if client is not None else self._make_client(self.endpoint_url, timeouts)
        # The readiness probe's own client (no retry, 1 s bounds); an injected client is used as is.
        self._probe_client = client
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
        )

    @staticmethod
    def _make_client(endpoint_url: str | None, timeouts: S3Timeouts = S3_RUN_TIMEOUTS) -> Any:
        """The one boto3 client factory (runs, API and probe differ only in ``timeouts``)."""
        import boto3
        from botocore.config import Config

        # Path-style addressing for S3-compatible endpoints (moto, MinIO):
        # ``bucket.127.0.0.1`` does not resolve.
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
            # ``total_max_attempts`` counts the first attempt; botocore's ``max_attempts`` counts retries only.
            retries={"total_max_attempts": timeouts.attempts, "mode": "standard"},
        )
        return boto3.client("s3", endpoint_url=endpoint_url, config=config)

    def ping(self) -> None:
        if self._probe_client is None:
            self._probe_client = self._make_client(self.endpoint_url, S3_PROBE_TIMEOUTS)
        self._probe_client.head_bucket(Bucket=self.bucket)

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
            return head
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    def put_file(
        self, local_path: Path, key: str, content_type: str, *, sha256: str | None = None, move: bool = False
    ) -> StoredObject:
        """Upload ``local_path`` (multipart above ``multipart_threshold``) with its sha256 as metadata.

        ``sha256``: the file's digest when the caller already has it (the report writers compute
        it while writing, ``WriteResult.sha256``); otherwise the file is read once more to hash it
        before the upload, because the metadata must be sent with the upload's first request. For the
        big institution's 108 MB xlsx that second read is ≈ 0.1 s of CPU (benchmarks/big_month_pg.py).
        An upload is a copy whatever ``move`` says; S3 shows an object only once it is complete.
        """
        object_key = self.object_key(key)
        if sha256 is None:
            size, sha256 = _sha256_of(Path(local_path))
        elif not _SHA256_HEX.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        else:
            size = Path(local_path).stat().st_size
        self.client.upload_file(
            str(local_path),
            self.bucket,
            object_key,
            ExtraArgs={"ContentType": content_type, "Metadata": {"sha256": sha256}},
            Config=self.transfer,
        )
        return StoredObject(key=key, uri=f"s3://{self.bucket}/{object_key}", bytes=size, sha256=sha256)

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(key)
        return int(head["ContentLength"])

    def open(self, key: str) -> IO[bytes]:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise FileNotFoundError(key) from exc
            raise
        body: IO[bytes] = response["Body"]  # botocore StreamingBody (file-like, read() -> bytes)
        return body

    def download_url(self, key: str, filename: str, expires_in: int, *, now: datetime | None = None) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(key),
                "ResponseContentDisposition": content_disposition(filename),
            },
            ExpiresIn=self.link_expires_in(int(expires_in)),
        )
        return url

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))


def parse_s3_location(location: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (``bucket``, ``some/prefix``)."""
    rest = location.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"no bucket in storage location {location!r}")
    return bucket, prefix.strip("/")


def storage_from_settings(settings: Settings, *, s3_timeouts: S3Timeouts = S3_RUN_TIMEOUTS) -> ReportStorage:
    """S3 when ``settings.storage_location`` is ``s3://...``, else a local directory.

    ``s3_timeouts``: the API passes :data:`S3_REQUEST_TIMEOUTS` (request paths must fail fast)."""
    location = settings.storage_location
    if location.startswith("s3://"):
        bucket, prefix = parse_s3_location(location)
        return S3ReportStorage(bucket, prefix, endpoint_url=settings.s3_endpoint_url or None, timeouts=s3_timeouts)
    return LocalReportStorage(Path(location), base_url=settings.public_base_url, link_secret=settings.link_secret)
