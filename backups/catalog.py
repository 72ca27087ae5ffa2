"""The backups in the bucket: object names, listing from manifests, and fetching a backup's objects back."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backups.crypto import CorruptObject, KeyParameters, confirm_key, decrypt_file, derive_key, sha256_of
from backups.manifest import Manifest, ManifestInvalid, is_backup_id
from backups.retention import BackupFacts
from backups.storage import ObjectStore

MANIFEST = "manifest.json"
VERIFY_RECORD = "verify.json"
ENCRYPTED_SUFFIX = ".enc"


class BackupNotFound(Exception):
    """No complete backup (one with a manifest) has this id."""


@dataclass(frozen=True)
class BackupInfo:
    """One complete backup as listed."""

    backup_id: str
    tier: str
    created_at: datetime
    size_bytes: int
    verified: bool | None  # None: never verified
    verified_at: str | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON line of `prs backup list` and the admin API."""
        return {
            "id": self.backup_id,
            "tier": self.tier,
            "created": self.created_at.isoformat(),
            "size": self.size_bytes,
            "verified": self.verified,
            "verified_at": self.verified_at,
        }

    def facts(self) -> BackupFacts:
        """What retention needs."""
        return BackupFacts(
            backup_id=self.backup_id, tier=self.tier, created_at=self.created_at, verified=bool(self.verified)
        )


class Catalog:
    """Names and reads the objects of backups under one bucket and prefix."""

    def __init__(self, store: ObjectStore, bucket: str, prefix: str):
        self.store = store
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def object_name(self, backup_id: str, name: str) -> str:
        """Full object name of one file of a backup."""
        return f"{self.prefix}/{backup_id}/{name}" if self.prefix else f"{backup_id}/{name}"

    def _backup_root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def objects_by_backup(self) -> dict[str, list[tuple[str, datetime | None]]]:
        """Every object under the prefix grouped by backup id (complete or not)."""
        grouped: dict[str, list[tuple[str, datetime | None]]] = {}
        root = self._backup_root()
        for stored in self.store.list_objects(self.bucket, root):
            backup_id = stored.name[len(root) :].split("/", 1)[0]
            if is_backup_id(backup_id):
                grouped.setdefault(backup_id, []).append((stored.name, stored.last_modified))
        return grouped

    def list_backups(self) -> list[BackupInfo]:
        """Complete backups, oldest first; a backup without its manifest (half-written) is never listed."""
        found = []
        for backup_id, objects in sorted(self.objects_by_backup().items()):
            names = {name for name, _ in objects}
            if self.object_name(backup_id, MANIFEST) not in names:
                continue
            try:
                manifest = self.manifest(backup_id)
            except ManifestInvalid:
                continue
            verified, verified_at = None, None
            if self.object_name(backup_id, VERIFY_RECORD) in names:
                record = json.loads(self.store.read_bytes(self.bucket, self.object_name(backup_id, VERIFY_RECORD)))
                verified, verified_at = bool(record.get("ok")), record.get("verified_at")
            found.append(
                BackupInfo(
                    backup_id=backup_id,
                    tier=manifest.tier,
                    created_at=manifest.created_at,
                    size_bytes=manifest.size_bytes,
                    verified=verified,
                    verified_at=verified_at,
                )
            )
        return found

    def manifest(self, backup_id: str) -> Manifest:
        """The manifest of a complete backup; BackupNotFound when there is none."""
        if not is_backup_id(backup_id):
            raise BackupNotFound(f"{backup_id!r} is not a backup id (see `prs backup list`)")
        names = {stored.name for stored in self.store.list_objects(self.bucket, self.object_name(backup_id, ""))}
        if self.object_name(backup_id, MANIFEST) not in names:
            raise BackupNotFound(f"no complete backup {backup_id} in bucket {self.bucket}")
        return Manifest.from_json(self.store.read_bytes(self.bucket, self.object_name(backup_id, MANIFEST)))

    def resolve(self, backup_id: str) -> Manifest:
        """The manifest of an id, or of the newest backup for "latest"."""
        if backup_id == "latest":
            backups = self.list_backups()
            if not backups:
                raise BackupNotFound(f"there is no complete backup in bucket {self.bucket}")
            backup_id = max(backups, key=lambda b: b.created_at).backup_id
        return self.manifest(backup_id)

    def write_verify_record(self, backup_id: str, record: dict[str, Any]) -> None:
        """Store the outcome of a verification beside the backup."""
        self.store.upload_bytes(
            self.bucket,
            self.object_name(backup_id, VERIFY_RECORD),
            json.dumps(record, sort_keys=True, default=str).encode(),
        )

    def delete_backup(self, names: list[str]) -> None:
        """Delete a backup's objects, the manifest first so that it stops being listed at once."""
        ordered = sorted(names, key=lambda name: not name.endswith("/" + MANIFEST))
        self.store.remove(self.bucket, ordered)


def open_key(manifest: Manifest, passphrase: str) -> bytes:
    """The backup's key from the passphrase; WrongEncryptionKey before anything is downloaded."""
    key = derive_key(passphrase, KeyParameters.from_dict(manifest.encryption))
    confirm_key(key, str(manifest.encryption["key_check"]))
    return key


async def fetch_plaintext(catalog: Catalog, manifest: Manifest, key: bytes, folder: Path) -> dict[str, Path]:
    """Download, check and decrypt every object of a backup; CorruptObject naming the first bad one."""
    files = {}
    for entry in manifest.objects:
        sealed = folder / (entry.name + ENCRYPTED_SUFFIX)
        plain = folder / entry.name
        await asyncio.to_thread(
            catalog.store.download_file,
            catalog.bucket,
            catalog.object_name(manifest.backup_id, entry.name + ENCRYPTED_SUFFIX),
            sealed,
        )
        size = sealed.stat().st_size
        if size != entry.size:
            raise CorruptObject(f"{entry.name}: stored size {size} bytes, manifest says {entry.size} (truncated?)")
        if await asyncio.to_thread(sha256_of, sealed) != entry.sha256:
            raise CorruptObject(f"{entry.name}: SHA-256 does not match the manifest (the object was changed)")
        await asyncio.to_thread(decrypt_file, key, entry.name, sealed, plain)
        sealed.unlink()
        if await asyncio.to_thread(sha256_of, plain) != entry.plaintext_sha256:
            raise CorruptObject(f"{entry.name}: decrypted content does not match its SHA-256")
        files[entry.name] = plain
    return files
