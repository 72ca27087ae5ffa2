"""Restore a backup into an empty database and, when asked, its vectors into a given vector store."""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.store import ChromaVectorStore
from backend.config import Settings
from backend.db import connect, drop_database, ensure_database, migrate, migration_files
from backups import repository
from backups.catalog import Catalog, fetch_plaintext, open_key
from backups.database import database_facts, database_is_empty, restore_database
from backups.manifest import DATABASE_OBJECT, VECTORS_OBJECT
from backups.vectors import restore_vectors
from backups.verify import compare_with_manifest


class RestoreRefused(Exception):
    """The restore would overwrite data or cross schema levels it cannot; nothing was changed."""


@dataclass(frozen=True)
class RestoreTarget:
    """Where a restore writes: a database, and optionally a vector store named explicitly."""

    database_url: str
    data_dir: Path | None = None
    chroma_url: str | None = None
    force: bool = False

    def vector_store(self, collection: str) -> ChromaVectorStore | None:
        """The target vector store, only when one was named (never the running service's by default)."""
        if self.data_dir is not None and self.chroma_url:
            raise RestoreRefused("give either --data-dir or --chroma-url, not both")
        if self.data_dir is not None:
            return ChromaVectorStore.persistent(str(self.data_dir / "chroma"), collection)
        if self.chroma_url:
            return ChromaVectorStore.http(self.chroma_url, collection)
        return None


def code_schema_level() -> int:
    """The highest migration this release knows."""
    return max(version for version, _, _ in migration_files())


async def restore_backup(
    settings: Settings, catalog: Catalog, backup_id: str, target: RestoreTarget, *, work_dir: Path
) -> dict[str, Any]:
    """Restore `backup_id` ("latest" for the newest); every check runs before the target is touched."""
    manifest = await asyncio.to_thread(catalog.resolve, backup_id)
    key = await asyncio.to_thread(open_key, manifest, settings.backup_encryption_key)
    known = code_schema_level()
    if manifest.schema_level > known:
        raise RestoreRefused(
            f"backup {manifest.backup_id} has schema level {manifest.schema_level}, newer than "
            f"this release's {known}: restore it with the release that made it (or newer)"
        )
    store = target.vector_store(settings.chroma_collection)
    if store is not None and not target.force and await asyncio.to_thread(store.count) > 0:
        raise RestoreRefused("the target vector store is not empty; pass --force to replace its vectors")
    if not await database_is_empty(target.database_url) and not target.force:
        raise RestoreRefused(
            "the target database is not empty; restore into a new database, or pass --force to drop and replace it"
        )
    with tempfile.TemporaryDirectory(prefix="prs-restore-", dir=work_dir) as tmp:
        files = await fetch_plaintext(catalog, manifest, key, Path(tmp))
        if target.force:
            await drop_database(target.database_url)
        started = time.perf_counter()
        await ensure_database(target.database_url)
        await restore_database(target.database_url, files[DATABASE_OBJECT], bin_dir=settings.backup_pg_bin_dir)
        migrated = await migrate(target.database_url) if manifest.schema_level < known else []
        database_s = time.perf_counter() - started
        vectors = await _restore_vectors(target, store, files.get(VECTORS_OBJECT))
        vectors["seconds"] = round(time.perf_counter() - started - database_s, 2)
    facts = await database_facts(target.database_url)
    ignore = frozenset({"schema_migrations"}) if migrated else frozenset()
    problems = compare_with_manifest(manifest, facts, ignore_tables=ignore)
    return {
        "backup_id": manifest.backup_id,
        "tier": manifest.tier,
        "ok": not problems,
        "problems": problems,
        "schema_level": {"backup": manifest.schema_level, "restored": facts.schema_level},
        "migrated": migrated,
        "audit_head": facts.audit_head,
        "tables": len(facts.row_counts),
        "database_seconds": round(database_s, 2),
        "vectors": vectors,
    }


async def _restore_vectors(
    target: RestoreTarget, store: ChromaVectorStore | None, vectors_file: Path | None
) -> dict[str, Any]:
    """Vectors into the named store; entries without a restored vector are left for the vector sync to embed."""
    conn = await connect(target.database_url)
    try:
        vector_ids = set(await repository.entry_vector_ids(conn))
        restored: list[str] = []
        if store is not None:
            if target.force:
                await asyncio.to_thread(store.reset)
            if vectors_file is not None:
                restored = await asyncio.to_thread(restore_vectors, store, vectors_file, keep=vector_ids)
        await repository.mark_vectors_present(conn, restored)
    finally:
        await conn.close()
    pending = len(vector_ids) - len(restored)
    where = "none named: pass --data-dir or --chroma-url" if store is None else "restored into the named store"
    return {"restored": len(restored), "pending_rebuild": pending, "store": where}
