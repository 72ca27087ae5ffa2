"""The S3-compatible object store behind backups (MinIO in production, any S3 API in tests)."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.error import MinioException, S3Error
from minio.retention import Retention

from backend.config import Settings

T = TypeVar("T")
MIN_PART_BYTES = 5 * 1024 * 1024  # the S3 minimum for every part but the last


class StorageError(Exception):
    """The object store could not be reached, refused the credentials or failed a request."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.code = code  # the S3 error code when the server answered


class BackupsNotConfigured(Exception):
    """PRS_BACKUP_S3_ENDPOINT is empty."""


@dataclass(frozen=True)
class StoredObject:
    """One object's name, size and time."""

    name: str
    size: int
    last_modified: datetime | None
    version_id: str | None = None


class ObjectStore:
    """Buckets and objects on one S3 endpoint; every failure becomes a StorageError naming the endpoint."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        secure: bool,
        region: str | None,
        timeout_s: float,
        part_bytes: int,
    ):
        self.endpoint = endpoint
        self.part_bytes = max(part_bytes, MIN_PART_BYTES)
        http = urllib3.PoolManager(
            maxsize=8,
            timeout=urllib3.Timeout(connect=min(timeout_s, 5.0), read=timeout_s),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region or None,
            http_client=http,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> "ObjectStore":
        """The store configured by PRS_BACKUP_S3_*; BackupsNotConfigured without an endpoint."""
        if not settings.backup_s3_endpoint:
            raise BackupsNotConfigured(
                "backups are not configured: set PRS_BACKUP_S3_ENDPOINT (host:port) and the other PRS_BACKUP_* settings"
            )
        return cls(
            endpoint=settings.backup_s3_endpoint,
            access_key=settings.backup_s3_access_key,
            secret_key=settings.backup_s3_secret_key,
            secure=settings.backup_s3_secure,
            region=settings.backup_s3_region,
            timeout_s=settings.backup_s3_timeout_s,
            part_bytes=settings.backup_part_size_mb * 1024 * 1024,
        )

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except S3Error as exc:
            raise StorageError(
                f"backup storage {self.endpoint}: {what} failed: {exc.code}: {exc.message}", code=exc.code
            ) from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise StorageError(
                f"backup storage {self.endpoint} unreachable or refused: {what}: {type(exc).__name__}: {exc}"
            ) from exc

    def ensure_bucket(self, bucket: str, *, object_lock: bool = False) -> bool:
        """Create the bucket when missing (with Object Lock enabled if asked); True when created."""

        def run() -> bool:
            if self._client.bucket_exists(bucket):
                return False
            try:
                self._client.make_bucket(bucket, object_lock=object_lock)
            except S3Error as exc:
                if exc.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    return False
                raise
            return True

        return self._call(f"create bucket {bucket}", run)

    def upload_file(self, bucket: str, name: str, path: Path) -> str:
        """Upload a file, as a multipart upload when it is larger than one part; returns the ETag."""
        result = self._call(
            f"upload {name}",
            lambda: self._client.fput_object(
                bucket, name, str(path), content_type="application/octet-stream", part_size=self.part_bytes
            ),
        )
        return str(result.etag)

    def upload_bytes(self, bucket: str, name: str, data: bytes, *, content_type: str = "application/json") -> None:
        """Upload a small object in one request."""
        self._call(
            f"upload {name}",
            lambda: self._client.put_object(bucket, name, io.BytesIO(data), len(data), content_type=content_type),
        )

    def upload_locked(self, bucket: str, name: str, data: bytes, *, until: datetime, compliance: bool) -> None:
        """Upload a small object under Object Lock retention until `until` (compliance or governance mode)."""
        retention = Retention(COMPLIANCE if compliance else GOVERNANCE, until)
        # A locked upload must carry a Content-MD5 or checksum header (S3 and moto refuse it otherwise); minio
        # keeps x-amz-* entries of `metadata` as plain headers.
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        self._call(
            f"upload {name} under Object Lock",
            lambda: self._client.put_object(
                bucket,
                name,
                io.BytesIO(data),
                len(data),
                content_type="application/json",
                metadata={"x-amz-sdk-checksum-algorithm": "SHA256", "x-amz-checksum-sha256": checksum},
                retention=retention,
            ),
        )

    def download_file(self, bucket: str, name: str, path: Path) -> None:
        """Download an object into a file."""
        self._call(f"download {name}", lambda: self._client.fget_object(bucket, name, str(path)))

    def read_bytes(self, bucket: str, name: str, *, version_id: str | None = None) -> bytes:
        """A small object's content (of one version, when given)."""

        def run() -> bytes:
            response = self._client.get_object(bucket, name, version_id=version_id)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return self._call(f"read {name}", run)

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        """Every object under a prefix (recursively); an empty list when the bucket does not exist."""

        def run() -> list[StoredObject]:
            if not self._client.bucket_exists(bucket):
                return []
            return [
                StoredObject(str(o.object_name), int(o.size or 0), o.last_modified)
                for o in self._client.list_objects(bucket, prefix=prefix, recursive=True)
            ]

        return self._call(f"list {bucket}/{prefix}", run)

    def list_versions(self, bucket: str, prefix: str) -> list[StoredObject]:
        """Every stored version under a prefix, delete markers left out (a versioned, e.g. Object Lock, bucket)."""

        def run() -> list[StoredObject]:
            if not self._client.bucket_exists(bucket):
                return []
            return [
                StoredObject(str(o.object_name), int(o.size or 0), o.last_modified, o.version_id)
                for o in self._client.list_objects(bucket, prefix=prefix, recursive=True, include_version=True)
                if not o.is_delete_marker
            ]

        return self._call(f"list versions of {bucket}/{prefix}", run)

    def remove_version(self, bucket: str, name: str, version_id: str | None) -> None:
        """Delete one version of an object (refused for a version under Object Lock retention)."""
        self._call(
            f"delete {name} version {version_id}",
            lambda: self._client.remove_object(bucket, name, version_id=version_id),
        )

    def remove(self, bucket: str, names: list[str]) -> None:
        """Delete objects one by one (small counts; keeps the requests simple for every S3 server)."""
        for name in names:
            self._call(f"delete {name}", lambda name=name: self._client.remove_object(bucket, name))  # type: ignore[misc]
