"""Verification of one backup: every checksum, decryption, and a restore into a scratch database compared with
the manifest (row counts, audit head, the audit chain itself, the vector count)."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

from backend.audit.service import verify_chain
from backend.config import Settings
from backend.db import create_pool, drop_database, ensure_database, with_database
from backups.catalog import BackupNotFound, Catalog, fetch_plaintext, open_key
from backups.crypto import CorruptObject, EncryptionKeyMissing, WrongEncryptionKey
from backups.database import DatabaseToolError, SnapshotFacts, database_facts, restore_database
from backups.manifest import DATABASE_OBJECT, VECTORS_OBJECT, Manifest, ManifestInvalid
from backups.vectors import load_vectors


def compare_with_manifest(
    manifest: Manifest, facts: SnapshotFacts, *, ignore_tables: frozenset[str] = frozenset()
) -> list[str]:
    """Differences between a restored database and what the manifest recorded."""
    problems = []
    for table, expected in sorted(manifest.row_counts.items()):
        if table in ignore_tables:
            continue
        actual = facts.row_counts.get(table)
        if actual != expected:
            problems.append(f"table {table}: {actual} rows restored, manifest says {expected}")
    extra = sorted(set(facts.row_counts) - set(manifest.row_counts) - ignore_tables)
    if extra and not ignore_tables:
        problems.append(f"tables not in the manifest: {', '.join(extra)}")
    if facts.audit_head != manifest.audit_head:
        problems.append(f"audit head {facts.audit_head} differs from the manifest's {manifest.audit_head}")
    return problems


async def verify_backup(settings: Settings, catalog: Catalog, backup_id: str, *, work_dir: Path) -> dict[str, Any]:
    """A report {backup_id, ok, problems, ...}; `problems` names the object or table at fault."""
    # "conclusive": False when the outcome says nothing about the backup itself (unknown id, wrong key).
    report: dict[str, Any] = {"backup_id": backup_id, "ok": False, "problems": [], "conclusive": True}
    try:
        manifest = catalog.manifest(backup_id)
    except (BackupNotFound, ManifestInvalid) as exc:
        report.update(problems=[str(exc)], conclusive=isinstance(exc, ManifestInvalid))
        return report
    scratch = with_database(settings.database_url, f"prs_verify_{secrets.token_hex(6)}")
    try:
        key = open_key(manifest, settings.backup_encryption_key)
        with tempfile.TemporaryDirectory(prefix="prs-verify-", dir=work_dir) as tmp:
            files = await fetch_plaintext(catalog, manifest, key, Path(tmp))
            report["objects_checked"] = [entry.name for entry in manifest.objects]
            await ensure_database(scratch)
            await restore_database(scratch, files[DATABASE_OBJECT], bin_dir=settings.backup_pg_bin_dir)
            problems = compare_with_manifest(manifest, await database_facts(scratch))
            pool = await create_pool(scratch, min_size=1, max_size=2)
            try:
                chain = await verify_chain(pool)
            finally:
                await pool.close()
            if not chain["ok"]:
                problems.append(f"audit chain of the restored database is broken: {chain['first_broken']}")
            if VECTORS_OBJECT in files:
                ids, _, _ = load_vectors(files[VECTORS_OBJECT])
                if len(ids) != manifest.vectors.get("count"):
                    problems.append(f"{VECTORS_OBJECT}: {len(ids)} vectors, manifest says {manifest.vectors['count']}")
            report.update(
                problems=problems,
                ok=not problems,
                audit_head=manifest.audit_head,
                tables=len(manifest.row_counts),
                schema_level=manifest.schema_level,
            )
    except (WrongEncryptionKey, EncryptionKeyMissing) as exc:
        report.update(conclusive=False)
        report["problems"].append(str(exc))
    except (CorruptObject, DatabaseToolError, ValueError) as exc:
        report["problems"].append(str(exc))
    finally:
        await drop_database(scratch)
    return report
