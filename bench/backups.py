"""`prs bench backup`: backup and restore time and throughput for a database of N resolved incidents.

Runs in a throwaway database on the configured server and a throwaway prefix of the configured bucket; incidents,
audit rows and knowledge entries are inserted directly and the vectors are random unit vectors (the embedding model
is not what is measured here)."""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.store import ChromaVectorStore
from backend.clock import SystemClock
from backend.config import Settings
from backend.db import create_pool, drop_database, ensure_database, migrate, with_database
from backups import repository
from backups.restore import RestoreTarget, restore_backup
from backups.wiring import build_backup_service

SEED_BATCH = 2000
VECTOR_DIMENSIONS = 384


async def _seed(dsn: str, incidents: int) -> list[int]:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    ids: list[int] = []
    try:
        for start in range(0, incidents, SEED_BATCH):
            async with pool.acquire() as conn:
                async with conn.transaction():
                    ids += await repository.seed_resolved_incidents(
                        conn, count=min(SEED_BATCH, incidents - start), at=SystemClock().now()
                    )
    finally:
        await pool.close()
    return ids


def _index_random_vectors(store: ChromaVectorStore, ids: list[int]) -> None:
    rng = np.random.default_rng(7)
    for start in range(0, len(ids), 1000):
        part = ids[start : start + 1000]
        vectors = rng.normal(size=(len(part), VECTOR_DIMENSIONS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.upsert([f"inc:{i}" for i in part], vectors, [{"kind": "incident", "area": "production"}] * len(part))


async def run_backup_bench(settings: Settings, *, incidents: int, with_vectors: bool) -> dict[str, Any]:
    """Seed, back up, restore into another database and store, and report times and MB/s."""
    tag = secrets.token_hex(4)
    source = with_database(settings.database_url, f"prs_bench_backup_{tag}")
    restored = with_database(settings.database_url, f"prs_bench_restored_{tag}")
    with tempfile.TemporaryDirectory(prefix="prs-bench-backup-") as tmp:
        folder = Path(tmp)
        bench = settings.model_copy(
            update={
                "database_url": source,
                "data_dir": folder,
                "backup_anchor_bucket": "",
                "backup_source_database_url": "",
                "backup_prefix": f"bench-{tag}",
            }
        )
        await ensure_database(source)
        try:
            await migrate(source)
            started = time.perf_counter()
            ids = await _seed(source, incidents)
            store = ChromaVectorStore.persistent(str(folder / "source-chroma"), bench.chroma_collection)
            if with_vectors:
                await asyncio.to_thread(_index_random_vectors, store, ids)
            seed_s = time.perf_counter() - started
            pool = await create_pool(source, min_size=1, max_size=3)
            try:
                service = build_backup_service(bench, pool=pool, clock=SystemClock(), vector_store=store, metrics=None)
                started = time.perf_counter()
                manifest = await service.create(tier="daily", trigger="cli")
                backup_s = time.perf_counter() - started
                started = time.perf_counter()
                verified = await service.verify(manifest.backup_id)
                verify_s = time.perf_counter() - started
                started = time.perf_counter()
                report = await restore_backup(
                    bench,
                    service.catalog,
                    manifest.backup_id,
                    RestoreTarget(database_url=restored, data_dir=folder / "restored"),
                    work_dir=service.work_dir(),
                )
                restore_s = time.perf_counter() - started
                grouped = await asyncio.to_thread(service.catalog.objects_by_backup)
                await asyncio.to_thread(
                    service.catalog.delete_backup, [name for name, _ in grouped.get(manifest.backup_id, [])]
                )
            finally:
                await pool.close()
        finally:
            await drop_database(source)
            await drop_database(restored)
    plain = sum(entry.plaintext_size for entry in manifest.objects)
    return {
        "incidents": incidents,
        "audit_rows": manifest.row_counts.get("audit_log"),
        "vectors": manifest.vectors.get("count", 0),
        "seed_s": round(seed_s, 2),
        "dump_and_vectors_bytes": plain,
        "stored_bytes": manifest.size_bytes,
        "backup_s": round(backup_s, 2),
        "backup_mb_per_s": round(plain / 1e6 / backup_s, 2),
        "verify_s": round(verify_s, 2),
        "verify_ok": verified["ok"],
        "restore_s": round(restore_s, 2),
        "restore_mb_per_s": round(plain / 1e6 / restore_s, 2),
        "restore_database_s": report["database_seconds"],
        "restore_vectors_s": report["vectors"]["seconds"],
        "restore_ok": report["ok"],
        "restore_problems": report["problems"],
        "vectors_restored": report["vectors"]["restored"],
    }
