"""The object store adapter on a real S3 API: multipart uploads of large files, and Object Lock that holds."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone

import pytest

from backups.storage import ObjectStore, StorageError
from tests.fixtures.backups import S3Server


def _store(server: S3Server) -> ObjectStore:
    return ObjectStore(
        endpoint=server.endpoint,
        access_key="testing",
        secret_key="testing",
        secure=False,
        region="us-east-1",
        timeout_s=10,
        part_bytes=5 * 1024 * 1024,
    )


def test_a_file_larger_than_a_part_goes_up_in_parts_and_comes_back_identical(s3_server, tmp_path):
    s3_server.reset()
    store = _store(s3_server)
    assert store.ensure_bucket("prs-backups") is True
    assert store.ensure_bucket("prs-backups") is False
    data = os.urandom(12 * 1024 * 1024 + 7)
    (tmp_path / "big").write_bytes(data)

    etag = store.upload_file("prs-backups", "site/big.enc", tmp_path / "big")
    store.download_file("prs-backups", "site/big.enc", tmp_path / "back")

    assert etag.endswith("-3")  # S3's ETag of a three-part upload
    assert hashlib.sha256((tmp_path / "back").read_bytes()).digest() == hashlib.sha256(data).digest()


def test_a_locked_object_version_cannot_be_deleted_before_its_retention_ends(s3_server):
    s3_server.reset()
    store = _store(s3_server)
    store.ensure_bucket("prs-anchors", object_lock=True)
    store.upload_locked(
        "prs-anchors",
        "anchors/a.json",
        b'{"seq": 1}',
        until=datetime.now(timezone.utc) + timedelta(days=1),
        compliance=True,
    )
    [version] = store.list_versions("prs-anchors", "anchors/")

    with pytest.raises(StorageError, match="AccessDenied"):
        store.remove_version("prs-anchors", version.name, version.version_id)
    store.remove("prs-anchors", ["anchors/a.json"])  # only a delete marker

    assert [v.version_id for v in store.list_versions("prs-anchors", "anchors/")] == [version.version_id]
    assert store.read_bytes("prs-anchors", version.name, version_id=version.version_id) == b'{"seq": 1}'
